import type { HealthStatus } from "./health-monitor.js";

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
 * The one health model: `/health`, `/ready`, `MemoryManager.isAvailable()` and
 * `canAcknowledgeWrites()` all come from here, so they cannot disagree.
 *
 * A write can be acknowledged while PostgreSQL's breaker is CLOSED, or while Redis's is CLOSED
 * and Redis keeps the outbox durably (the write waits there for PostgreSQL). Either path also
 * serves reads (from PostgreSQL, or from the Redis buffer), so "down" means exactly "no write can
 * be acknowledged".
 */
export function assessHealth(input: HealthInput): HealthAssessment {
  const { breakers, outboxDurable, observed = {} } = input;
  const canAcknowledgeWrites = breakers.postgres === "up" || (breakers.redis === "up" && outboxDurable);
  const components: Record<string, ComponentStatus> = {};
  for (const name of new Set([...Object.keys(breakers), ...Object.keys(observed)])) {
    components[name] = combine(breakers[name] ?? "disabled", observed[name]);
  }
  const allUp = Object.values(components).every((status) => status === "up" || status === "disabled");
  const status = !canAcknowledgeWrites ? "down" : allUp ? "up" : "degraded";
  return { status, canAcknowledgeWrites, components };
}

function combine(breaker: ComponentStatus, observed: ComponentStatus | undefined): ComponentStatus {
  if (breaker !== "up" || observed === undefined || observed === "up" || observed === "disabled") {
    return breaker;
  }
  return "degraded";
}
