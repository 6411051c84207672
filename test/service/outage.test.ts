import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { createMemoryManager, type MemoryManagerOptions } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { CircuitState, type StateChangeEvent } from "../../src/resilience/index.js";
import { createMemoryService } from "../../src/service/index.js";
import { recordingLogger } from "../support/fixtures.js";
import { PostgresClusterProcess, RedisServerProcess } from "../support/processes.js";
import { uniqueName } from "../support/servers.js";
import { call } from "./harness.js";
import { parsePrometheusText, sampleValue } from "./prometheus-text.js";

// Issue 11, item 8: /live, /ready and /health mean what Kubernetes and load balancers expect, and
// an outage is logged (component, host:port, error code) once per breaker transition. Real
// servers of the test's own, stopped and restarted.

const fast = {
  failureThreshold: 2,
  recoveryTimeoutMs: 300,
  probeIntervalMs: 100,
  redisCommandTimeoutMs: 250,
};
// Trust auth ignores the password: it is there to show that no log line carries it.
const PASSWORD = "s3cret-never-logged";

type Logged = ReturnType<typeof recordingLogger>;

interface Running {
  memory: MemoryManager;
  app: FastifyInstance;
  logger: Logged;
  /** Every /live answer that was not 200, from a loop polling it every 20 ms. */
  liveFailures: number[];
  stopLivePolling(): Promise<void>;
}

const running: Running[] = [];

async function start(options: MemoryManagerOptions): Promise<Running> {
  const logger = recordingLogger();
  const memory = await createMemoryManager({
    logger,
    resilience: fast,
    summarization: { idleFinalizeAfterMs: 0 },
    env: {},
    ...options,
  });
  const app = await createMemoryService({ memory, rateLimitPerMinute: 0 });
  const liveFailures: number[] = [];
  let polling = true;
  const loop = (async () => {
    while (polling) {
      const live = await call(app, "GET", "/live");
      if (live.statusCode !== 200) liveFailures.push(live.statusCode);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const service: Running = {
    memory,
    app,
    logger,
    liveFailures,
    async stopLivePolling() {
      polling = false;
      await loop;
    },
  };
  running.push(service);
  return service;
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function recordTransitions(memory: MemoryManager, name: "postgres" | "redis"): StateChangeEvent[] {
  const events: StateChangeEvent[] = [];
  memory.circuitBreaker[name].onStateChange((event) => events.push(event));
  return events;
}

/** The breaker lines logged for a component: each transition once, warn opening, info otherwise. */
function expectTransitionsLogged(
  logger: Logged,
  component: string,
  events: StateChangeEvent[],
  address: string,
) {
  const lines = logger.lines.filter((line) => line.details.component === component);
  expect(lines.map((line) => [line.details.from, line.details.to])).toEqual(
    events.map((event) => [event.from, event.to]),
  );
  for (const line of lines) {
    expect(line.level).toBe(line.details.to === CircuitState.OPEN ? "warn" : "info");
    expect(line.details.address).toBe(address);
    if (line.details.to === CircuitState.OPEN) {
      // A code (ECONNREFUSED, 57P01, ECONNRESET; a class name such as ClientOfflineError for the
      // Redis client's errors, which carry none), never a driver's message.
      expect(line.details.code, JSON.stringify(line)).toMatch(/^[A-Za-z0-9_]{4,}$/);
      expect(["Error", "unknown"]).not.toContain(line.details.code);
    }
  }
  expect(JSON.stringify(logger.lines)).not.toContain(PASSWORD);
}

async function expectHealth(app: FastifyInstance, code: number, status: string) {
  const health = await call(app, "GET", "/health");
  const report = health.json<{ status: string; components: Record<string, { status: string }> }>();
  expect({ code: health.statusCode, status: report.status }).toEqual({ code, status });
  return report.components;
}

async function expectReady(app: FastifyInstance, ready: boolean) {
  const answer = await call(app, "GET", "/ready");
  expect(answer.statusCode).toBe(ready ? 200 : 503);
  expect(answer.json()).toEqual(ready ? { ready: true } : { ready: false, reason: "storage_unavailable" });
}

/** One sample of the service's /metrics, as Prometheus would scrape it now (what the alerts read). */
async function scraped(app: FastifyInstance, name: string, labels: Record<string, string> = {}) {
  const metrics = await call(app, "GET", "/metrics");
  return sampleValue(parsePrometheusText(metrics.body), `swisper_memory_${name}`, labels);
}

async function post(app: FastifyInstance, session: string, content: string) {
  return call(app, "POST", `/v1/sessions/${session}/messages`, { body: { role: "user", content } });
}

describe("/live, /ready, /health and the logs through outages", () => {
  let postgres: PostgresClusterProcess;
  let databaseUrl: string;
  beforeAll(async () => {
    postgres = await PostgresClusterProcess.start();
    databaseUrl = `postgres://postgres:${PASSWORD}@127.0.0.1:${postgres.port}/postgres`;
  });
  afterEach(async () => {
    for (const service of running.splice(0)) {
      await service.stopLivePolling();
      await service.app.close();
      await service.memory.close();
    }
    // A failed test may leave the cluster stopped; the next one needs it (an error if it runs).
    await postgres.restart().catch(() => {});
  });
  afterAll(async () => {
    await postgres.stop();
  });

  it.skipIf(!inject("redisAvailable"))(
    "PostgreSQL down, Redis up: writes go to the outbox, /ready stays 200, /health is degraded",
    async () => {
      // The outbox is used only where Redis keeps it: an append-only file, no eviction.
      const redis = await RedisServerProcess.start({ persist: true });
      try {
        const service = await start({ database: databaseUrl, redis: redis.url, keyPrefix: uniqueName("o") });
        const { app, memory, logger } = service;
        const events = recordTransitions(memory, "postgres");
        const session = uniqueName("s");
        expect((await post(app, session, "before")).statusCode).toBe(201);
        await expectReady(app, true);
        await expectHealth(app, 200, "up");

        await postgres.stopServer();
        await until(async () => {
          expect((await post(app, session, "during")).statusCode).toBe(201);
          return memory.circuitBreaker.postgres.getState() === CircuitState.OPEN;
        }, "the PostgreSQL breaker opens under writes the outbox acknowledges");
        await expectReady(app, true);
        expect(memory.canAcknowledgeWrites()).toBe(true);
        expect(memory.isAvailable()).toBe(true);
        const during = await expectHealth(app, 200, "degraded");
        expect(during.postgres?.status).toBe("down");
        expect(during.redis?.status).toBe("up");
        // What SwisperMemoryOutboxBacklog and SwisperMemoryCircuitBreakerOpen read.
        expect(await scraped(app, "outbox_entries")).toBeGreaterThan(0);
        expect(await scraped(app, "outbox_entries")).toBe(memory.outboxBacklog());
        expect(await scraped(app, "circuit_breaker_state", { breaker: "postgres", state: "open" })).toBe(1);
        expect(await scraped(app, "available")).toBe(1);

        await postgres.restart();
        await until(
          () => memory.circuitBreaker.postgres.getState() === CircuitState.CLOSED,
          "the PostgreSQL breaker closes",
        );
        await expectReady(app, true);
        await until(async () => (await call(app, "GET", "/health")).json().status === "up", "/health is up");
        await until(async () => (await scraped(app, "outbox_entries")) === 0, "the outbox is replayed");

        await service.stopLivePolling();
        expect(service.liveFailures).toEqual([]);
        expect(events.map((event) => event.to)).toContain(CircuitState.OPEN);
        expect(events.at(-1)?.to).toBe(CircuitState.CLOSED);
        expectTransitionsLogged(logger, "postgres", events, `127.0.0.1:${postgres.port}`);
      } finally {
        await redis.stop();
      }
    },
  );

  it("PostgreSQL down without Redis: /ready and /health answer 503, /live stays 200", async () => {
    const service = await start({ database: databaseUrl, redis: false });
    const { app, memory, logger } = service;
    const events = recordTransitions(memory, "postgres");
    const session = uniqueName("s");
    expect((await post(app, session, "before")).statusCode).toBe(201);

    await postgres.stopServer();
    await until(async () => {
      expect((await post(app, session, "during")).statusCode).toBe(503);
      return memory.circuitBreaker.postgres.getState() === CircuitState.OPEN;
    }, "the PostgreSQL breaker opens");
    await expectReady(app, false);
    expect(memory.isAvailable()).toBe(false);
    const during = await expectHealth(app, 503, "down");
    expect(during.postgres?.status).toBe("down");
    expect(during.redis?.status).toBe("disabled");
    // What SwisperMemoryUnavailable reads; without Redis there is no outbox to count.
    expect(await scraped(app, "available")).toBe(0);
    expect(await scraped(app, "outbox_entries")).toBe(0);

    await postgres.restart();
    await until(
      () => memory.circuitBreaker.postgres.getState() === CircuitState.CLOSED,
      "the PostgreSQL breaker closes",
    );
    await expectReady(app, true);
    await expectHealth(app, 200, "up");

    await service.stopLivePolling();
    expect(service.liveFailures).toEqual([]);
    expectTransitionsLogged(logger, "postgres", events, `127.0.0.1:${postgres.port}`);
  });

  it.skipIf(!inject("redisAvailable"))(
    "Redis down, PostgreSQL up: /ready stays 200, /health is degraded, the outage is logged",
    async () => {
      const redis = await RedisServerProcess.start();
      try {
        const service = await start({ database: databaseUrl, redis: redis.url, keyPrefix: uniqueName("r") });
        const { app, memory, logger } = service;
        const events = recordTransitions(memory, "redis");
        const session = uniqueName("s");

        await redis.kill();
        await until(async () => {
          expect((await post(app, session, "during")).statusCode).toBe(201);
          return memory.circuitBreaker.redis.getState() === CircuitState.OPEN;
        }, "the Redis breaker opens under writes PostgreSQL acknowledges");
        await expectReady(app, true);
        const during = await expectHealth(app, 200, "degraded");
        expect(during.redis?.status).toBe("down");
        expect(during.postgres?.status).toBe("up");

        await redis.restart();
        await until(
          () => memory.circuitBreaker.redis.getState() === CircuitState.CLOSED,
          "the Redis breaker closes",
        );
        await service.stopLivePolling();
        expect(service.liveFailures).toEqual([]);
        expectTransitionsLogged(logger, "redis", events, `127.0.0.1:${redis.port}`);
      } finally {
        await redis.stop();
      }
    },
  );
});
