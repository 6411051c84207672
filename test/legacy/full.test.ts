import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { PostgresLegacyStore } from "../../src/legacy/legacy-store.js";
import { PostgresDatabase } from "../../src/storage/database.js";
import { call, openTestService, type TestService } from "../service/harness.js";
import { PostgresClusterProcess } from "../support/processes.js";
import { useTestServers } from "../support/servers.js";
import { TABLE_SQL, sessionUrl as url, waitUntil } from "./phase-support.js";

// Migration phase full: the legacy store is a backup. Writes never wait for it (paused, stopped,
// or answering), its failures never fail a write, and once it answers it holds every
// acknowledged write once, in order. Also: two service instances draining one queue apply each
// write once, in order.

function contents(history: unknown[] | null): unknown[] {
  return (history ?? []).map((element) => (element as Record<string, unknown>).content);
}

describe.skipIf(!inject("postgresAvailable"))(
  "migration phase full, with a legacy database of its own",
  () => {
    const servers = useTestServers();
    let cluster: PostgresClusterProcess;
    let legacy: PostgresLegacyStore;
    const services: TestService[] = [];

    beforeAll(async () => {
      cluster = await PostgresClusterProcess.start();
      const setup = new PostgresDatabase({ connectionString: cluster.url });
      await setup.exec(TABLE_SQL);
      await setup.close();
      legacy = new PostgresLegacyStore({ connectionString: cluster.url });
    });
    afterAll(async () => {
      // A failed test may leave the cluster paused or stopped: the store's close needs it answering.
      await cluster?.pause("SIGCONT").catch(() => {});
      await cluster?.restart().catch(() => {});
      for (const service of services) await service.close();
      await legacy?.close();
      await cluster?.stop();
    });

    async function openService(phase: "full" | "coexistence", retryIntervalMs = 100): Promise<TestService> {
      const service = await openTestService(
        servers.database,
        servers.redis,
        {},
        { legacy: { phase, store: legacy, writeTimeoutMs: 5_000, retryIntervalMs } },
      );
      services.push(service);
      return service;
    }

    async function post(service: TestService, session: string, content: string): Promise<number> {
      const started = performance.now();
      const response = await call(service.app, "POST", url(session, "/messages"), {
        body: { role: "user", content },
      });
      expect(response.statusCode, response.body).toBe(201);
      return performance.now() - started;
    }

    it("never waits for the legacy store, and it catches up once, in order, after an outage", async () => {
      const service = await openService("full");
      const session = "full-outage";
      const sent: string[] = [];
      const write = async (content: string) => {
        sent.push(content);
        return post(service, session, content);
      };
      await write("before");
      await waitUntil("the first write reaches the legacy store", async () =>
        contents(await legacy.readHistory(session)).includes("before"),
      );

      // Paused, the legacy database takes connections and never answers: coexistence would wait
      // up to its 5 s timeout here; full does not wait at all.
      await cluster.pause("SIGSTOP");
      const whilePaused: number[] = [];
      for (let index = 0; index < 5; index++) whilePaused.push(await write(`paused ${index}`));
      expect(Math.max(...whilePaused)).toBeLessThan(2_000);
      await cluster.pause("SIGCONT");

      await cluster.stopServer();
      for (let index = 0; index < 20; index++) await write(`stopped ${index}`);
      const context = await call(service.app, "GET", url(session, "/context"));
      expect(context.statusCode).toBe(200);
      expect((context.json() as { message_count: number }).message_count).toBe(sent.length);

      await cluster.restart();
      await write("after");
      await waitUntil(
        "the retry queue is empty",
        async () => (await service.memory.legacyQueueDepth())?.total === 0,
      );
      expect(contents(await legacy.readHistory(session))).toEqual(sent);
    });

    it.each([1, 5])(
      "two instances draining the queues of %i session(s) at once apply each write once, in order",
      async (count) => {
        const sessions = Array.from({ length: count }, (_, index) => `full-two-instances-${count}-${index}`);
        // Slow retry passes: the test drives both drains itself, at the same moments.
        const first = await openService("full", 60_000);
        const second = await openService("full", 60_000);
        await cluster.stopServer();
        const sent = new Map<string, string[]>(sessions.map((session) => [session, []]));
        for (let index = 0; index < 250 * count; index++) {
          const session = sessions[index % sessions.length] as string;
          const content = `queued ${index}`;
          sent.get(session)?.push(content);
          await post(index % 2 === 0 ? first : second, session, content);
        }
        await cluster.restart();
        const mirrors = [first, second].map((service) => service.memory.legacyMigration?.mirror);
        // Both instances drain every session at the same moments: leases change hands page by page.
        for (let pass = 0; pass < 3; pass++) {
          await Promise.all(mirrors.map((mirror) => mirror?.retryQueued()));
        }
        await waitUntil(
          "the retry queue is empty",
          async () => (await first.memory.legacyQueueDepth())?.total === 0,
        );
        for (const session of sessions) {
          expect(contents(await legacy.readHistory(session)), session).toEqual(sent.get(session));
        }
      },
    );
  },
);
