import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { createMemoryManager } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { CircuitState, type HealthReport } from "../../src/resilience/index.js";
import { createMemoryService } from "../../src/service/index.js";
import { cli } from "../cli/run-cli.js";
import { recordingLogger } from "../support/fixtures.js";
import { PostgresClusterProcess, RedisServerProcess } from "../support/processes.js";
import { uniqueName } from "../support/servers.js";

// Issue 13: one health model that every reader reads. Through a PostgreSQL outage (a cluster and
// a redis-server of this file's own), the library's isAvailable(), /ready, /health (its
// `available` and its status) and `inspect --url`'s "Memory available" must say the same thing:
// while writes are acknowledged through a durable Redis outbox, and while they cannot be at all.

const fast = {
  failureThreshold: 2,
  // Long: the breaker stays OPEN through the outage; the recovery probe closes it on return.
  recoveryTimeoutMs: 60_000,
  probeIntervalMs: 100,
  redisCommandTimeoutMs: 250,
};

interface Running {
  memory: MemoryManager;
  app: FastifyInstance;
  url: string;
  redis: RedisServerProcess;
}

/** What each reader says, as an operator or a load balancer would see it. */
interface Readings {
  isAvailable: boolean;
  ready: boolean;
  healthAvailable: boolean;
  /** `/health` answers 503 exactly when its status is "down". */
  healthDown: boolean;
  inspect: boolean;
  status: HealthReport["status"];
}

async function read(service: Running, session: string): Promise<Readings> {
  const isAvailable = service.memory.isAvailable();
  const ready = await fetch(`${service.url}/ready`);
  const health = await fetch(`${service.url}/health`);
  const report = (await health.json()) as HealthReport;
  const inspect = await cli({ MEMORY_URL: service.url }, "inspect", session);
  const line = /^Memory available: +(yes|NO)$/m.exec(inspect.stdout);
  expect(line, `inspect printed no availability:\n${inspect.stdout}${inspect.stderr}`).not.toBeNull();
  // While the service cannot read the session (503), inspect prints its availability, and exits 1.
  if (inspect.code !== 0) expect(inspect.stderr).toMatch(/answered 503 storage_unavailable/);
  return {
    isAvailable,
    ready: ready.status === 200,
    healthAvailable: report.available,
    healthDown: health.status === 503,
    inspect: line?.[1] === "yes",
    status: report.status,
  };
}

function agreeing(available: boolean, status: HealthReport["status"]): Readings {
  return {
    isAvailable: available,
    ready: available,
    healthAvailable: available,
    healthDown: status === "down",
    inspect: available,
    status,
  };
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe.skipIf(!inject("redisAvailable") || !inject("postgresAvailable"))(
  "isAvailable, /ready, /health and inspect agree through a PostgreSQL outage",
  () => {
    let postgres: PostgresClusterProcess;
    const running: Running[] = [];

    beforeAll(async () => {
      postgres = await PostgresClusterProcess.start();
    });
    afterEach(async () => {
      // A failed test may leave the cluster stopped: closing waits for it, and the next test needs
      // it (an error if it runs).
      await postgres.restart().catch(() => {});
      for (const service of running.splice(0)) {
        await service.app.close();
        await service.memory.close();
        await service.redis.stop();
      }
    });
    afterAll(async () => {
      await postgres.stop();
    });

    async function start(persist: boolean): Promise<Running> {
      // The outbox is used only where Redis keeps it: an append-only file, no eviction.
      const redis = await RedisServerProcess.start({ persist });
      const memory = await createMemoryManager({
        database: postgres.url,
        redis: redis.url,
        keyPrefix: uniqueName("h"),
        logger: recordingLogger(),
        resilience: fast,
        summarization: { idleFinalizeAfterMs: 0 },
        env: {},
      });
      const app = await createMemoryService({ memory, rateLimitPerMinute: 0 });
      const url = await app.listen({ port: 0, host: "127.0.0.1" });
      const service = { memory, app, url, redis };
      running.push(service);
      return service;
    }

    const post = (service: Running, session: string, content: string) =>
      service.app.inject({
        method: "POST",
        url: `/v1/sessions/${session}/messages`,
        payload: { role: "user", content },
      });

    for (const { outbox, persist, during } of [
      { outbox: "a durable outbox", persist: true, during: agreeing(true, "degraded") },
      { outbox: "no durable outbox", persist: false, during: agreeing(false, "down") },
    ]) {
      it(`with ${outbox}`, async () => {
        const service = await start(persist);
        const session = uniqueName("s");
        expect((await post(service, session, "before")).statusCode).toBe(201);
        expect(await read(service, session)).toEqual(agreeing(true, "up"));

        await postgres.stopServer();
        await until(async () => {
          expect((await post(service, session, "during")).statusCode).toBe(persist ? 201 : 503);
          return service.memory.circuitBreaker.postgres.getState() === CircuitState.OPEN;
        }, "the PostgreSQL breaker opens");
        expect(await read(service, session)).toEqual(during);

        await postgres.restart();
        await until(
          () => service.memory.circuitBreaker.postgres.getState() === CircuitState.CLOSED,
          "the PostgreSQL breaker closes",
        );
        await until(() => service.memory.outboxBacklog() === 0, "the outbox is replayed");
        expect(await read(service, session)).toEqual(agreeing(true, "up"));
      });
    }
  },
);
