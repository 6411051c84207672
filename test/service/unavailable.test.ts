import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryManager } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { createMemoryService } from "../../src/service/index.js";
import { recordingLogger } from "../support/fixtures.js";
import { freePort } from "../support/processes.js";
import { call, expectErrorShape } from "./harness.js";

// A real outage, not a mock: the system of record is a PostgreSQL URL on a port where nothing
// listens, and there is no Redis, so no tier can store a write.
describe("nothing can store the write", () => {
  let memory: MemoryManager;
  let app: Awaited<ReturnType<typeof createMemoryService>>;

  beforeAll(async () => {
    const port = await freePort();
    memory = await createMemoryManager({
      database: `postgres://postgres@127.0.0.1:${port}/nothing`,
      redis: false,
      autoMigrate: false,
      logger: recordingLogger(),
      summarization: { idleFinalizeAfterMs: 0 },
    });
    app = await createMemoryService({ memory });
  });
  afterAll(async () => {
    await app.close();
    await memory.close();
  });

  it.each([
    ["POST", "messages", { role: "user", content: "is anyone there?" }],
    ["GET", "context", undefined],
    ["PUT", "config", { max_buffer_messages: 10 }],
    ["GET", "stats", undefined],
    ["GET", "summaries", undefined],
    ["PUT", "swisper-context", { current_state: "x" }],
    ["DELETE", "", undefined],
  ] as const)(
    "%s %s answers 503 storage_unavailable, with Retry-After and no driver detail",
    async (method, path, body) => {
      const response = await call(app, method, `/v1/sessions/s1${path ? `/${path}` : ""}`, { body });
      expect(response.statusCode).toBe(503);
      expect(response.headers["retry-after"]).toBe("1");
      const answer = response.json();
      expectErrorShape(answer);
      expect(answer).toEqual({
        error: {
          code: "storage_unavailable",
          message: "no storage tier can serve the request right now; retry later",
        },
      });
    },
  );

  it("reports the system of record down on /health (503) and /ready (503)", async () => {
    const health = await call(app, "GET", "/health");
    expect(health.statusCode).toBe(503);
    const report = health.json<{
      status: string;
      components: Record<string, { status: string; error?: string }>;
    }>();
    expect(report.status).toBe("down");
    expect(report.components.postgres).toMatchObject({ status: "down" });
    // A code (ECONNREFUSED, database_unavailable, circuit_open), never a driver's message.
    expect(report.components.postgres?.error).toMatch(/^[A-Za-z0-9_]+$/);
    expect(report.components.redis).toMatchObject({ status: "disabled" });
    const ready = await call(app, "GET", "/ready");
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ ready: false, reason: "storage_unavailable" });
  });

  it("still answers bad input with 400: validation comes before storage", async () => {
    const response = await call(app, "POST", "/v1/sessions/s1/messages", {
      body: { role: "robot", content: "x" },
    });
    expect(response.statusCode).toBe(400);
  });
});
