import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { PostgresLegacyStore } from "../../src/legacy/legacy-store.js";
import { call, type TestService } from "../service/harness.js";
import { recordingLogger } from "../support/fixtures.js";
import { useTestServers } from "../support/servers.js";
import { openPhaseService, sessionUrl as url, waitUntil } from "./phase-support.js";

// Migration phase gradual through HTTP: coexistence, plus every sampled context read compared
// with the legacy row off the request path; a divergence the test injects is counted and logged.

describe.skipIf(!inject("postgresAvailable"))("migration phase gradual", () => {
  const servers = useTestServers();
  const logger = recordingLogger();
  let service: TestService;
  let legacy: PostgresLegacyStore;

  beforeAll(async () => {
    // Every read sampled, so that the test knows which read is checked.
    ({ service, store: legacy } = await openPhaseService(
      servers.database,
      { phase: "gradual", sampleRate: 1 },
      { logger },
    ));
  });
  afterAll(async () => {
    await service?.close();
  });

  const divergences = () => Object.fromEntries(service.memory.migrationDivergences() ?? []);
  const diverged = (session: string, kind: string) =>
    logger.lines.some((line) => line.details.session_id === session && line.details.kind === kind);

  async function chat(session: string): Promise<void> {
    await call(service.app, "POST", url(session, "/messages"), {
      body: {
        messages: [
          { role: "user", content: "Ich suche einen Laptop" },
          { role: "assistant", content: "Gern. Welches Budget?" },
        ],
      },
    });
    await call(service.app, "PUT", url(session, "/swisper-context"), {
      body: { current_state: "search", contract_template: "laptop_purchase" },
    });
  }

  it("counts nothing while both stores agree", async () => {
    await chat("grad-same");
    const read = await call(service.app, "GET", url("grad-same", "/context"));
    expect(read.statusCode).toBe(200);
    // The check runs after the answer: give it time, then nothing may have been counted.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(Object.values(divergences()).every((count) => count === 0)).toBe(true);
  });

  it("counts and logs a message only the legacy row has, and a context that differs", async () => {
    await chat("grad-extra");
    await legacy.appendMessage("grad-extra", { role: "user", content: "written by the old code alone" });
    await call(service.app, "GET", url("grad-extra", "/context"));
    await waitUntil("the missing message is counted", () => divergences().missing_message === 1);
    expect(diverged("grad-extra", "missing_message")).toBe(true);

    await chat("grad-context");
    await legacy.saveContractContext("grad-context", { current_state: "checkout" });
    await call(service.app, "GET", url("grad-context", "/context"));
    await waitUntil("the context difference is counted", () => divergences().context_differs === 1);
    expect(diverged("grad-context", "context_differs")).toBe(true);

    const metrics = await call(service.app, "GET", "/metrics");
    expect(metrics.body).toMatch(/^swisper_memory_migration_divergences_total\{kind="missing_message"\} 1$/m);
    expect(metrics.body).toMatch(/^swisper_memory_migration_divergences_total\{kind="context_differs"\} 1$/m);
  });
});
