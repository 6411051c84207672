import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { CircuitState } from "../../src/resilience/index.js";
import {
  capturingPino,
  DURABLE_REDIS,
  EVICTING_REDIS,
  FaultServers,
  until,
  untilClosed,
} from "./support/environment.js";
import { printFigures } from "./support/invariants.js";
import { httpClient, WriteLog } from "./support/traffic.js";

// Scenario 8 of the fault campaign: /live, /ready and /health over HTTP (the service in-process
// with servers of its own) through a PostgreSQL outage. /live: the process works (200
// throughout). /ready: this instance can acknowledge writes now, by whatever path: 200 while a
// durable Redis holds them in the outbox, 503 (and writes 503 with Retry-After) when the Redis
// may evict or has no persistence. /health: each component; PostgreSQL down, overall not "up".
// The outage and every breaker transition are logged naming the component, its host:port and the
// error's code.
//
// Before the fix both failed: /live answered 404 (there was none); with a durable Redis /ready
// answered 503 during the outage although writes were acknowledged (201, provisional, with a seq
// promised: {"seq":2,"duplicate":false,"provisional":true}); no log line named postgres with its
// host:port (not the outage, none of the 5 transitions open>half_open>open>half_open>closed).
// With an allkeys-lru Redis without persistence writes were still acknowledged provisionally
// (201) instead of 503 with Retry-After. /health reported postgres down and status "down" in both.

const ERROR_CODE = /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|57P01|57P02|57P03|08006|08001|08003/;

let servers: FaultServers | undefined;

afterEach(async () => {
  await servers?.stop();
  servers = undefined;
});

async function get(app: FastifyInstance, url: string) {
  const response = await app.inject({ method: "GET", url });
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(response.body) as Record<string, unknown>;
  } catch {
    // /live may answer text.
  }
  return { status: response.statusCode, body, headers: response.headers };
}

interface Probes {
  live: number[];
  ready: number[];
}

async function probe(app: FastifyInstance, probes: Probes) {
  const live = await get(app, "/live");
  const ready = await get(app, "/ready");
  const health = await get(app, "/health");
  probes.live.push(live.status);
  probes.ready.push(ready.status);
  const components = (health.body.components ?? {}) as Record<string, { status?: string }>;
  return {
    live: live.status,
    ready: ready.status,
    healthStatus: health.body.status as string | undefined,
    postgres: components.postgres?.status,
  };
}

/** Writes until the PostgreSQL breaker is OPEN (each write is answered, one way or another). */
async function outage(
  servers: FaultServers,
  app: FastifyInstance,
  memory: MemoryManager,
  sessions: string[],
) {
  const client = httpClient(app);
  const log = new WriteLog("health");
  for (const session of sessions) expect(await log.write(client, session)).not.toBeNull();
  await servers.postgres.stopServer();
  await until(async () => {
    await log.write(client, sessions[0]!);
    return memory.circuitBreaker.postgres.getState() === CircuitState.OPEN;
  }, "the PostgreSQL breaker opens");
  return { client, log };
}

describe("scenario 8: health endpoints through a PostgreSQL outage", () => {
  it("with a durable Redis: /live and /ready 200, writes acknowledged provisionally, /health says postgres is down", async () => {
    servers = await FaultServers.start(DURABLE_REDIS);
    const lines: string[] = [];
    const { app, memory } = await servers.openService({}, capturingPino(lines));
    const transitions: string[] = [];
    memory.circuitBreaker.postgres.onStateChange((change) => transitions.push(change.to));
    const probes: Probes = { live: [], ready: [] };
    const before = await probe(app, probes);
    const sessions = ["health-1", "health-2", "health-3"];
    const { client, log } = await outage(servers, app, memory, sessions);
    const during = await probe(app, probes);
    const write = await client.write(sessions[1]!, log.message());
    await servers.postgres.restart();
    await untilClosed(memory, ["postgres"]);
    const after = await probe(app, probes);

    const hostPort = `127.0.0.1:${servers.postgres.port}`;
    const postgresLines = lines.filter((line) => line.includes("postgres") && line.includes(hostPort));
    const outageLogged = postgresLines.some((line) => ERROR_CODE.test(line));
    // Each transition in order: a line (after the previous one's) naming its new state.
    const transitionsLogged: string[] = [];
    let from = 0;
    for (const state of transitions) {
      const at = postgresLines.findIndex(
        (line, index) => index >= from && line.toLowerCase().replace(/[-\s]/g, "_").includes(state),
      );
      if (at < 0) break;
      transitionsLogged.push(state);
      from = at + 1;
    }
    printFigures("health, durable Redis", {
      liveStatuses: [...new Set(probes.live)].join("/"),
      readyBefore: before.ready,
      readyDuring: during.ready,
      readyAfter: after.ready,
      healthDuring: during.healthStatus,
      postgresDuring: during.postgres,
      writeDuring: write.kind === "ack" ? JSON.stringify(write.ack) : write.kind,
      outageLogged,
      transitions: transitions.join(">"),
      transitionsLogged: transitionsLogged.join(">") || "none",
      logLines: lines.length,
    });
    expect({
      live: [...new Set(probes.live)],
      ready: [before.ready, during.ready, after.ready],
      postgres: [during.postgres, after.postgres],
      healthUpDuring: during.healthStatus === "up",
      write: write.kind === "ack" ? write.ack : write.kind,
      outageLogged,
      transitionsLogged,
    }).toEqual({
      live: [200],
      ready: [200, 200, 200],
      postgres: ["down", "up"],
      healthUpDuring: false,
      write: { seq: null, duplicate: false, provisional: true },
      outageLogged: true,
      transitionsLogged: transitions,
    });
  });

  it("with an evicting Redis without persistence: /ready 503, writes 503 with Retry-After, /live 200", async () => {
    servers = await FaultServers.start(["--maxmemory", "64mb", ...EVICTING_REDIS]);
    const { app, memory } = await servers.openService();
    const probes: Probes = { live: [], ready: [] };
    const before = await probe(app, probes);
    const sessions = ["evicting-1", "evicting-2"];
    const { client, log } = await outage(servers, app, memory, sessions);
    const during = await probe(app, probes);
    const write = await client.write(sessions[1]!, log.message());
    await servers.postgres.restart();
    await untilClosed(memory, ["postgres"]);
    const after = await probe(app, probes);
    printFigures("health, evicting Redis", {
      liveStatuses: [...new Set(probes.live)].join("/"),
      readyBefore: before.ready,
      readyDuring: during.ready,
      readyAfter: after.ready,
      healthDuring: during.healthStatus,
      postgresDuring: during.postgres,
      writeDuring:
        write.kind === "ack" ? `ack ${JSON.stringify(write.ack)}` : `${write.status} ${write.kind}`,
      retryAfter: write.kind === "unavailable" ? String(write.retryAfter) : "-",
      provisionalAcks: log.provisional,
    });
    expect({
      live: [...new Set(probes.live)],
      ready: [before.ready, during.ready, after.ready],
      postgres: [during.postgres, after.postgres],
      healthUpDuring: during.healthStatus === "up",
      write: write.kind === "ack" ? write.ack : write.status,
      retryAfter: write.kind === "unavailable" && /^\d+$/.test(String(write.retryAfter)),
      code:
        write.kind === "unavailable"
          ? (JSON.parse(write.error) as { error: { code: string } }).error.code
          : null,
      // Nothing was acknowledged through an outbox this Redis may lose.
      provisionalAcks: log.provisional,
    }).toEqual({
      live: [200],
      ready: [200, 503, 200],
      postgres: ["down", "up"],
      healthUpDuring: false,
      write: 503,
      retryAfter: true,
      code: "storage_unavailable",
      provisionalAcks: 0,
    });
  });
});
