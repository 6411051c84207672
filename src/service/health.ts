import type { MemoryManager } from "../manager/memory-manager.js";
import type { SummarizerHealth } from "../metrics/index.js";
import { type CircuitBreakerSnapshot, CircuitState } from "../resilience/index.js";
import type { RedisConnection } from "../storage/redis-client.js";

/** "disabled": not configured (no Redis: everything is served from the system of record). */
export type ComponentStatus = "up" | "degraded" | "down" | "disabled";

export interface ComponentReport {
  status: ComponentStatus;
  /** What serves it: "postgres" or "pglite", "redis". */
  kind?: string;
  /** How long the probe took. */
  latency_ms?: number;
  /** Why it is not up: an error code or class name, never a driver's full message. */
  error?: string;
  details?: Record<string, unknown>;
}

export interface HealthReport {
  /** "up": all up; "degraded": serving, but not everything is up; "down": writes cannot be stored. */
  status: "up" | "degraded" | "down";
  /** `MemoryManager.isAvailable()`. */
  available: boolean;
  components: Record<string, ComponentReport>;
  /** Each circuit breaker's snapshot, by name. */
  breakers: Record<string, CircuitBreakerSnapshot>;
}

/** What `/health` and `/ready` report; built by `createHealthProvider`, or your own. */
export type HealthProvider = () => Promise<HealthReport>;

/** Seam for circuit breakers: returns their snapshots. */
export type BreakerSnapshots = () => readonly CircuitBreakerSnapshot[];

export interface HealthProviderOptions {
  memory: MemoryManager;
  /** The Redis connection the manager uses, to PING it. Without it, Redis is judged from INFO. */
  redis?: RedisConnection | null;
  /**
   * Circuit breaker snapshots: the seam where the manager's breakers plug in. Default:
   * `breakersOf(memory)`, which finds `memory.circuitBreaker` once the manager has one. An OPEN
   * breaker marks its component down, a HALF_OPEN one degraded.
   */
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
 * Builds the health check: probes PostgreSQL (one indexed read) and Redis (PING), adds the
 * summarizer's recent failures and the breakers' states. PostgreSQL down means writes cannot be
 * stored: "down" (HTTP 503). Redis down is "degraded": memory is served from the system of record.
 */
export function createHealthProvider(options: HealthProviderOptions): HealthProvider {
  const { memory, redis = null, summarizer, probeTimeoutMs = 1000, databaseKind } = options;
  const breakers = options.breakers ?? (() => breakersOf(memory));

  return async () => {
    const [postgres, redisReport] = await Promise.all([
      probe(probeTimeoutMs, () => memory.getSessionConfig(PROBE_SESSION)),
      redisHealth(memory, redis, probeTimeoutMs),
    ]);
    const components: Record<string, ComponentReport> = {
      postgres: databaseKind ? { ...postgres, kind: databaseKind } : postgres,
      redis: redisReport,
    };
    if (summarizer) {
      const health = summarizer();
      components.summarizer = {
        status: health.consecutive_failures > 0 ? "degraded" : "up",
        details: { ...health },
      };
    }
    const snapshots: Record<string, CircuitBreakerSnapshot> = {};
    for (const snapshot of breakers()) {
      snapshots[snapshot.name] = snapshot;
      const component = components[snapshot.name];
      if (!component || component.status === "down" || component.status === "disabled") continue;
      if (snapshot.state === CircuitState.OPEN) {
        components[snapshot.name] = { ...component, status: "down", error: "circuit_open" };
      } else if (snapshot.state === CircuitState.HALF_OPEN) {
        components[snapshot.name] = { ...component, status: "degraded", error: "circuit_half_open" };
      }
    }
    const statuses = Object.values(components).map((component) => component.status);
    const status =
      components.postgres!.status === "down"
        ? "down"
        : statuses.every((value) => value === "up" || value === "disabled")
          ? "up"
          : "degraded";
    return { status, available: memory.isAvailable(), components, breakers: snapshots };
  };
}

/** Snapshots of the manager's circuit breakers (redis, postgres, summarizer). */
export function breakersOf(memory: MemoryManager): CircuitBreakerSnapshot[] {
  return Object.values(memory.circuitBreaker).map((breaker) => breaker.snapshot());
}

/** True while the manager's Redis circuit breaker is OPEN. */
export function redisBreakerOpen(memory: MemoryManager): boolean {
  return memory.circuitBreaker.redis.getState() === CircuitState.OPEN;
}

async function redisHealth(
  memory: MemoryManager,
  redis: RedisConnection | null,
  timeoutMs: number,
): Promise<ComponentReport> {
  if (redis) {
    return { ...(await probe(timeoutMs, () => redis.send(["PING"]))), kind: "redis" };
  }
  if (memory.bufferStore.source !== "redis") return { status: "disabled" };
  // A manager whose connection we were not given: INFO through the stats it reports.
  const report = await probe(timeoutMs, async () => {
    const stats = await memory.getMemoryStats(PROBE_SESSION);
    if (!stats.redis.available)
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

/** A short, safe description: a code (ECONNREFUSED, 57P01) or a class name, not a message. */
function errorCode(error: unknown): string {
  if (typeof error === "object" && error !== null) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string" && code !== "") return code;
    if (error instanceof Error) return error.name;
  }
  return "unknown";
}
