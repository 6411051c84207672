import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CircuitState } from "../../src/resilience/index.js";
import { DURABLE_REDIS, FaultServers, sleep, until, within } from "./support/environment.js";
import { checkTranscripts, printFigures } from "./support/invariants.js";
import { libraryClient, startTraffic, WriteLog } from "./support/traffic.js";

// Scenario 7 of the fault campaign: recovery time with the default breaker settings (a 60 s
// recovery timeout, a probe every second). Once PostgreSQL accepts connections again its breaker
// closes within a few seconds (asserted: under 10 s), and the outbox replay keeps write latency
// bounded (asserted generously: under 3 s).
//
// Before the fix: the breaker had not closed 15 s after PostgreSQL accepted connections again
// (it waits out the whole 60 s recovery timeout), with 1,390 writes acknowledged provisionally
// during the 3 s outage; write latency until then stayed low (max 379 ms before the restart,
// 159 ms after), but the replay had not begun.

const SESSIONS = 10;
const CLOSE_BOUND_MS = 10_000;
const LATENCY_BOUND_MS = 3_000;

let servers: FaultServers;

beforeAll(async () => {
  servers = await FaultServers.start(DURABLE_REDIS);
});

afterAll(async () => {
  await servers?.stop();
});

describe("scenario 7: recovery time", () => {
  it("closes the PostgreSQL breaker within seconds of PostgreSQL answering, with bounded write latency", async () => {
    // The product's default resilience settings.
    const manager = await servers.openManager({ resilience: {} });
    const breaker = manager.circuitBreaker.postgres;
    const client = libraryClient(manager);
    const log = new WriteLog("recovery");
    const sessions = Array.from({ length: SESSIONS }, (_, i) => `recovery-${i}`);
    let restartedAt = Number.POSITIVE_INFINITY;
    let maxLatencyBefore = 0;
    let maxLatencyAfterRestart = 0;
    const traffic = startTraffic(client, sessions, log, {
      writers: SESSIONS,
      words: 12,
      pauseMs: 5,
      write: {
        retries: 30,
        retryDelayMs: 100,
        onLatency(ms, at) {
          if (at - ms >= restartedAt) maxLatencyAfterRestart = Math.max(maxLatencyAfterRestart, ms);
          else maxLatencyBefore = Math.max(maxLatencyBefore, ms);
        },
      },
    });
    await until(() => log.acknowledged > 100, "some traffic before the outage");
    await servers.postgres.stopServer();
    await until(() => breaker.getState() === CircuitState.OPEN, "the PostgreSQL breaker opens", 20_000);
    await until(() => log.provisional > 0, "writes acknowledged through the outbox");
    await sleep(3000);
    const provisionalDuringOutage = log.provisional;
    // pg_ctl -w returns once the server accepts connections.
    await servers.postgres.restart();
    restartedAt = performance.now();
    const closed = await within(() => breaker.getState() === CircuitState.CLOSED, 15_000);
    const closedAfterMs = closed ? performance.now() - restartedAt : null;
    if (closed) await sleep(3000);
    await traffic.stop();
    const figures = {
      breakerClosedAfterMs: closedAfterMs ?? "not within 15000",
      maxWriteLatencyBeforeMs: maxLatencyBefore,
      maxWriteLatencyAfterRestartMs: maxLatencyAfterRestart,
      provisionalDuringOutage,
      acknowledged: log.acknowledged,
    };
    if (!closed) {
      printFigures("recovery time", figures);
      expect(
        closedAfterMs,
        "the PostgreSQL breaker closed within 15 s of PostgreSQL answering",
      ).not.toBeNull();
    }
    const raw = await servers.rawRedis();
    await within(async () => (await servers.sessionKeys(raw, "outbox")).length === 0, 15_000);
    const { figures: stored, examples } = await checkTranscripts(servers.pool, log);
    printFigures("recovery time", { ...figures, ...stored }, examples);
    expect(closedAfterMs!).toBeLessThan(CLOSE_BOUND_MS);
    expect(maxLatencyAfterRestart).toBeLessThan(LATENCY_BOUND_MS);
    expect({ lost: stored.lost, duplicated: stored.duplicated, outOfOrder: stored.outOfOrder }).toEqual({
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
  });
});
