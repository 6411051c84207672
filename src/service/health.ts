import type { MemoryManager } from "../manager/memory-manager.js";
import type { SummarizerHealth } from "../metrics/index.js";
import {
  type CircuitBreakerSnapshot,
  CircuitState,
  type ComponentReport,
  type ComponentStatus,
  errorCode,
  type HealthReport,
} from "../resilience/index.js";
import type { RedisConnection } from "../storage/redis-client.js";
import { ShardedRedisConnection } from "../storage/redis-shards.js";

export type { ComponentReport, ComponentStatus, HealthReport };

/** What `/health` and `/ready` report; built by `createHealthProvider`, or your own. */
export type HealthProvider = () => Promise<HealthReport>;

/** Seam for circuit breakers: returns their snapshots. */
export type BreakerSnapshots = () => readonly CircuitBreakerSnapshot[];

export interface HealthProviderOptions {
  memory: MemoryManager;
  /** The Redis connection the manager uses, to PING it. Without it, Redis is judged from INFO. */
  redis?: RedisConnection | null;
  /** Circuit breaker snapshots for the report (default: `memory.breakerSnapshots()`). */
  breakers?: BreakerSnapshots;
  /** The summarizer's recent outcomes (from MemoryMetrics), if known. */
  summarizer?: () => SummarizerHealth;
  /** Longest a probe may take, in ms (default 1000). */
  probeTimeoutMs?: number;
  /** What the system of record is, for the report: "postgres" or "pglite". */
  databaseKind?: string;
}

// A session id no caller uses: reading its config is a one-row primary-key lookup.
const PROBE_SESSION = "__swisper_memory_health_probe__";

/**
 * Builds the health check: the manager's health model (`MemoryManager.assessHealth`: the
 * breakers' states, and whether Redis keeps the outbox) with what this check observes besides:
 * a PostgreSQL probe (one indexed read, through the manager's breaker), a Redis PING, the
 * summarizer's recent failures. An observation can lower a component from up to degraded; only
 * a breaker marks it down. The statuses, `available` and the breakers are the model's; this adds
 * what the probes measured, so "down" (HTTP 503) is exactly when `/ready` answers 503 and
 * `isAvailable()` is false.
 */
export function createHealthProvider(options: HealthProviderOptions): HealthProvider {
  const { memory, redis = null, summarizer, probeTimeoutMs = 1000, databaseKind } = options;

  return async () => {
    const [postgres, redisReports] = await Promise.all([
      probe(probeTimeoutMs, () => memory.getSessionConfig(PROBE_SESSION)),
      redisHealth(memory, redis, probeTimeoutMs),
    ]);
    const probes: Record<string, ComponentReport> = {
      postgres: databaseKind ? { ...postgres, kind: databaseKind } : postgres,
      ...redisReports,
    };
    const summarizerHealth = summarizer?.();
    const assessment = memory.assessHealth({
      postgres: postgres.status,
      ...Object.fromEntries(Object.entries(redisReports).map(([name, report]) => [name, report.status])),
      summarizer: (summarizerHealth?.consecutive_failures ?? 0) > 0 ? "degraded" : "up",
    });
    const snapshots = options.breakers ? byName(options.breakers()) : assessment.breakers;
    const components: Record<string, ComponentReport> = {};
    for (const [name, status] of Object.entries(assessment.components)) {
      const report: ComponentReport = { ...probes[name], status };
      const breakerError = breakerErrorOf(snapshots[name]);
      if (breakerError && status !== "disabled") report.error ??= breakerError;
      if (status === "up") delete report.error;
      if (name === "summarizer" && summarizerHealth) report.details = { ...summarizerHealth };
      components[name] = report;
    }
    return {
      status: assessment.status,
      available: assessment.canAcknowledgeWrites,
      components,
      breakers: snapshots,
    };
  };
}

function byName(snapshots: readonly CircuitBreakerSnapshot[]): Record<string, CircuitBreakerSnapshot> {
  return Object.fromEntries(snapshots.map((snapshot) => [snapshot.name, snapshot]));
}

/** Why a breaker keeps its component from being up: "circuit_open", "circuit_half_open". */
function breakerErrorOf(snapshot: CircuitBreakerSnapshot | undefined): string | null {
  if (snapshot?.state === CircuitState.OPEN) return "circuit_open";
  if (snapshot?.state === CircuitState.HALF_OPEN) return "circuit_half_open";
  return null;
}

/** Redis's report under "redis", or with shards one per shard under its breaker's name. */
async function redisHealth(
  memory: MemoryManager,
  redis: RedisConnection | null,
  timeoutMs: number,
): Promise<Record<string, ComponentReport>> {
  if (redis instanceof ShardedRedisConnection) {
    const reports = await Promise.all(
      [...redis.shards].map(async ([name, shard]) => [
        `redis:${name}`,
        { ...(await probe(timeoutMs, () => shard.send(["PING"]))), kind: "redis" },
      ]),
    );
    return Object.fromEntries(reports);
  }
  return { redis: await singleRedisHealth(memory, redis, timeoutMs) };
}

async function singleRedisHealth(
  memory: MemoryManager,
  redis: RedisConnection | null,
  timeoutMs: number,
): Promise<ComponentReport> {
  if (redis) {
    return { ...(await probe(timeoutMs, () => redis.send(["PING"]))), kind: "redis" };
  }
  if (memory.health.statuses().redis === undefined) return { status: "disabled" };
  // A manager whose connection we were not given: INFO through it (Redis alone, no PostgreSQL).
  const report = await probe(timeoutMs, async () => {
    const stats = await memory.redisStats();
    if (!stats.available)
      throw Object.assign(new Error("Redis did not answer INFO"), { code: "UNAVAILABLE" });
  });
  return { ...report, kind: "redis" };
}

async function probe(timeoutMs: number, check: () => Promise<unknown>): Promise<ComponentReport> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error("timeout"), { code: "TIMEOUT" })), timeoutMs);
      }),
    ]);
    return { status: "up", latency_ms: elapsed(started) };
  } catch (error) {
    return { status: "down", latency_ms: elapsed(started), error: errorCode(error) };
  } finally {
    clearTimeout(timer);
  }
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 1000) / 1000;
}
