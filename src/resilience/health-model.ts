import type { CircuitBreakerSnapshot } from "./circuit-breaker.js";
import { HealthMonitor, type HealthStatus, overallStatus } from "./health-monitor.js";

/** A component's state; "disabled": not configured (no Redis). */
export type ComponentStatus = HealthStatus | "disabled";

export interface HealthInput {
  /**
   * Each component's state as its circuit breaker has it (CLOSED up, HALF_OPEN degraded, OPEN
   * down): "postgres", "redis", "summarizer". A component left out counts as not configured.
   */
  breakers: Readonly<Record<string, ComponentStatus | undefined>>;
  /** Whether Redis keeps what the outbox holds (eviction policy and persistence). */
  outboxDurable: boolean;
  /**
   * What was seen besides the breakers (a failed probe, a failing summarizer): lowers an "up" to
   * "degraded", never to "down" (the breaker has not confirmed an outage) and never raises.
   */
  observed?: Readonly<Record<string, ComponentStatus | undefined>>;
}

export interface HealthAssessment {
  /** "up": all up; "degraded": writes and reads served, something not up; "down": writes cannot be acknowledged. */
  status: HealthStatus;
  /** Some path can acknowledge a write now: `/ready`, `isAvailable()`. */
  canAcknowledgeWrites: boolean;
  components: Record<string, ComponentStatus>;
}

/**
 * The rule behind `HealthModel`, over states given as they are: a write can be acknowledged while
 * PostgreSQL's breaker is CLOSED, or while Redis's is CLOSED and Redis keeps the outbox durably
 * (the write waits there for PostgreSQL). Either path also serves reads (from PostgreSQL, or from
 * the Redis buffer), so "down" means exactly "no write can be acknowledged".
 */
export function assessHealth(input: HealthInput): HealthAssessment {
  const { breakers, outboxDurable, observed = {} } = input;
  const canAcknowledgeWrites = breakers.postgres === "up" || (breakers.redis === "up" && outboxDurable);
  const components: Record<string, ComponentStatus> = {};
  for (const name of new Set([...Object.keys(breakers), ...Object.keys(observed)])) {
    components[name] = combine(breakers[name] ?? "disabled", observed[name]);
  }
  return { status: overallStatus(components, canAcknowledgeWrites), canAcknowledgeWrites, components };
}

function combine(breaker: ComponentStatus, observed: ComponentStatus | undefined): ComponentStatus {
  if (breaker !== "up" || observed === undefined || observed === "up" || observed === "disabled") {
    return breaker;
  }
  return "degraded";
}

/** A `HealthAssessment` with the snapshots of the breakers it was read from. */
export interface HealthView extends HealthAssessment {
  /** Each component's circuit breaker snapshot, by name: only the components in use. */
  breakers: Record<string, CircuitBreakerSnapshot>;
}

/** A component in a `HealthReport`: its status, with what a probe of it measured. */
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

/**
 * A `HealthView` with what probes measured besides: what `/health` answers and `inspect --url`
 * reads.
 */
export interface HealthReport {
  /** "up": all up; "degraded": writes and reads served, something not up; "down": writes cannot be acknowledged. */
  status: "up" | "degraded" | "down";
  /** `MemoryManager.isAvailable()`: some path can acknowledge a write now (what `/ready` says). */
  available: boolean;
  components: Record<string, ComponentReport>;
  /** Each circuit breaker's snapshot, by name. */
  breakers: Record<string, CircuitBreakerSnapshot>;
}

export interface HealthModelOptions {
  /** The components in use ("postgres", "summarizer", and "redis" when configured), registered up. */
  components: readonly string[];
  /** Whether Redis keeps what the outbox holds now (its settings can change while running). */
  outboxDurable: () => boolean;
}

/**
 * The one health model: `MemoryManager.isAvailable()`, `/ready`, `/health`, `/metrics` and
 * `inspect` all read it, so they cannot disagree. Its monitor records each component's state as
 * its breaker reads; this model judges those states by `assessHealth`, and the monitor's own
 * overall status follows the same rule.
 */
export class HealthModel {
  /** The components in use: their states, last errors and breakers (attach them here). */
  readonly monitor: HealthMonitor;
  readonly #outboxDurable: () => boolean;

  constructor(options: HealthModelOptions) {
    const { components, outboxDurable } = options;
    this.#outboxDurable = outboxDurable;
    this.monitor = new HealthMonitor({
      components,
      canServe: (statuses) => this.#judge(statuses).canAcknowledgeWrites,
    });
  }

  /**
   * The verdict now, from the breakers' states as they read now, with their snapshots. `observed`
   * (a failed probe, a failing summarizer) can lower a component from up to degraded, never
   * further.
   */
  assess(observed?: Readonly<Record<string, ComponentStatus | undefined>>): HealthView {
    const breakers: Record<string, CircuitBreakerSnapshot> = {};
    for (const snapshot of this.monitor.breakerSnapshots()) breakers[snapshot.name] = snapshot;
    return { ...this.#judge(this.monitor.statuses(), observed), breakers };
  }

  /**
   * The breakers of the components in use. Without Redis its breaker is left out: one that never
   * sees a call would read "closed, 0 failures", as if Redis were there and fine.
   */
  breakerSnapshots(): CircuitBreakerSnapshot[] {
    return this.monitor.breakerSnapshots();
  }

  #judge(
    statuses: Readonly<Record<string, HealthStatus>>,
    observed?: Readonly<Record<string, ComponentStatus | undefined>>,
  ): HealthAssessment {
    return assessHealth({
      breakers: statuses,
      outboxDurable: this.#outboxDurable(),
      ...(observed ? { observed } : {}),
    });
  }
}
