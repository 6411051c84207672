import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { PostgresLegacyStore } from "../../src/legacy/legacy-store.js";
import { PostgresDatabase } from "../../src/storage/database.js";
import { cli } from "../cli/run-cli.js";
import { call, openTestService, type TestService } from "../service/harness.js";
import { PostgresClusterProcess } from "../support/processes.js";
import { useTestServers } from "../support/servers.js";
import { openPhaseService, TABLE_SQL, sessionUrl as url, waitUntil } from "./phase-support.js";

// Migration phase coexistence through HTTP: every acknowledged write also reaches the legacy
// swisper_sessions table, in order, also when the legacy database was down meanwhile.

function contents(history: unknown[] | null): unknown[] {
  return (history ?? []).map((element) => (element as Record<string, unknown>).content);
}

describe.skipIf(!inject("postgresAvailable"))("migration phase coexistence", () => {
  const servers = useTestServers();

  describe("with the legacy table in the same database", () => {
    let service: TestService;
    let legacy: PostgresLegacyStore;

    beforeAll(async () => {
      ({ service, store: legacy } = await openPhaseService(servers.database, { phase: "coexistence" }));
    });
    afterAll(async () => {
      await service?.close();
    });

    it("writes messages, the saved context and the erase to both stores", async () => {
      const session = "coex-http";
      const one = await call(service.app, "POST", url(session, "/messages"), {
        body: { role: "user", content: "Ich suche einen Laptop" },
      });
      expect(one.statusCode).toBeLessThan(300);
      await call(service.app, "POST", url(session, "/messages"), {
        body: {
          messages: [
            { role: "assistant", content: "Gern. Welches Budget?" },
            { role: "user", content: "1500 CHF", id: "m-3" },
          ],
        },
      });
      // Sent again with its id: stored once in memory, so once in the legacy row too.
      await call(service.app, "POST", url(session, "/messages"), {
        body: { role: "user", content: "1500 CHF", id: "m-3" },
      });
      expect(contents(await legacy.readHistory(session))).toEqual([
        "Ich suche einen Laptop",
        "Gern. Welches Budget?",
        "1500 CHF",
      ]);
      const context = await call(service.app, "PUT", url(session, "/swisper-context"), {
        body: { current_state: "search", contract_template: "laptop_purchase" },
      });
      expect(context.statusCode).toBeLessThan(300);
      expect(await legacy.loadContractContext(session)).toMatchObject({
        session_id: session,
        current_state: "search",
        contract_template: "laptop_purchase",
      });
      expect((await service.memory.legacyQueueDepth())?.total).toBe(0);

      const erased = await call(service.app, "DELETE", url(session));
      expect(erased.statusCode).toBeLessThan(300);
      expect(await legacy.readSession(session)).toBeNull();
      expect((await service.memory.getContext(session)).message_count).toBe(0);
    });
  });

  describe("with a legacy database of its own, stopped and restarted", () => {
    let cluster: PostgresClusterProcess;
    let service: TestService;
    let legacy: PostgresLegacyStore;

    beforeAll(async () => {
      cluster = await PostgresClusterProcess.start();
      const setup = new PostgresDatabase({ connectionString: cluster.url });
      await setup.exec(TABLE_SQL);
      await setup.close();
      legacy = new PostgresLegacyStore({ connectionString: cluster.url });
      service = await openTestService(
        servers.database,
        undefined,
        {},
        {
          legacy: { phase: "coexistence", store: legacy, writeTimeoutMs: 200, retryIntervalMs: 100 },
        },
      );
    });
    afterAll(async () => {
      // A failed test may leave the cluster stopped: the store's close needs it answering or gone.
      await cluster?.restart().catch(() => {});
      await service?.close();
      await legacy?.close();
      await cluster?.stop();
    });

    it("acknowledges promptly while it is down, queues, and catches up in order exactly once", async () => {
      const session = "coex-outage";
      const sent: string[] = [];
      const post = async (content: string) => {
        const started = performance.now();
        const response = await call(service.app, "POST", url(session, "/messages"), {
          body: { role: sent.length % 2 === 0 ? "user" : "assistant", content },
        });
        expect(response.statusCode).toBeLessThan(300);
        sent.push(content);
        return performance.now() - started;
      };
      for (let index = 0; index < 3; index++) await post(`before ${index}`);
      expect(contents(await legacy.readHistory(session))).toEqual(sent);

      await cluster.stopServer();
      const latencies: number[] = [];
      for (let index = 0; index < 20; index++) latencies.push(await post(`during ${index}`));
      // Bounded by the 200 ms legacy timeout (plus the queue INSERT), never by the outage.
      expect(Math.max(...latencies)).toBeLessThan(1500);
      const depth = await service.memory.legacyQueueDepth();
      expect(depth?.total).toBe(20);
      expect(depth?.sessions).toEqual([{ sessionId: session, entries: 20 }]);
      expect(service.memory.legacyWriteFailures()).toBeGreaterThan(0);
      const metrics = await call(service.app, "GET", "/metrics");
      expect(metrics.body).toMatch(/^swisper_memory_legacy_retry_queue_entries 20$/m);
      expect(metrics.body).toMatch(/^swisper_memory_legacy_write_failures_total [1-9]\d*$/m);

      const env = {
        DATABASE_URL: servers.database.url ?? "",
        LEGACY_DATABASE_URL: cluster.url,
        MEMORY_MIGRATION_PHASE: "coexistence",
      };
      const status = await cli(env, "legacy", "status");
      expect(status.code).toBe(0);
      expect(status.stdout).toContain("phase: coexistence");
      expect(status.stdout).toContain("retry queue: 20 writes waiting");
      expect(status.stdout).toContain(`  ${session}: 20`);
      expect(status.stdout).toContain("legacy store: NOT reachable");
      const refused = await cli(env, "legacy", "status", "--session", session);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain("status takes only --json");

      // A write after the restart queues behind the session's waiting ones, not ahead of them.
      await cluster.restart();
      await post("after");
      await waitUntil(
        "the retry queue is empty",
        async () => (await service.memory.legacyQueueDepth())?.total === 0,
      );
      expect(contents(await legacy.readHistory(session))).toEqual(sent);
      expect(sent).toHaveLength(24);

      const after = await cli(env, "legacy", "status", "--json");
      expect(after.code).toBe(0);
      expect(JSON.parse(after.stdout)).toEqual({
        phase: "coexistence",
        retry_queue: { total: 0, sessions: [] },
        legacy_reachable: true,
      });
    });
  });
});
