import { type CircuitBreaker, type CircuitBreakerSnapshot, CircuitState } from "./circuit-breaker.js";
import { errorMessage } from "./listeners.js";

/** "degraded": working on a fallback or on probation (a HALF_OPEN breaker). */
export type HealthStatus = "up" | "degraded" | "down";

/** Decides whether the system can still serve requests, given each component's status. */
export type CanServeRule = (components: Readonly<Record<string, HealthStatus>>) => boolean;

export interface HealthMonitorOptions {
  /** Components registered at construction, "up" until a breaker is attached to them. */
  components?: readonly string[];
  /**
   * Whether the system can serve. Default: no component is "down". The memory manager passes
   * the health model's rule (`assessHealth`: some path can acknowledge a write).
   */
  canServe?: CanServeRule;
  /** Clock in epoch milliseconds, for the recorded times. Default `Date.now()`. */
  now?: () => number;
}

export interface ComponentHealth {
  status: HealthStatus;
  /** Message of the last error reported for the component (kept after recovery: it is history). */
  last_error: string | null;
  /** ISO time of `last_error`. */
  last_error_at: string | null;
  /** ISO time of the last status change, or of registration if it never changed. */
  last_transition_at: string;
  /** The attached breaker's snapshot, when the component has one. */
  breaker?: CircuitBreakerSnapshot;
}

export interface HealthSnapshot {
  /** "up": all up; "degraded": something is not up but the system can serve; "down": it cannot. */
  status: HealthStatus;
  components: Record<string, ComponentHealth>;
}

/**
 * The overall status from the components' (a "disabled" one, not configured, counts as fine) and
 * whether the system can serve. The monitor and `assessHealth` both use it, so a monitor's
 * snapshot and `/health` say the same.
 */
export function overallStatus(
  components: Readonly<Record<string, HealthStatus | "disabled">>,
  canServe: boolean,
): HealthStatus {
  if (!canServe) return "down";
  const allUp = Object.values(components).every((status) => status === "up" || status === "disabled");
  return allUp ? "up" : "degraded";
}

const statusOfBreaker: Record<CircuitState, HealthStatus> = {
  [CircuitState.CLOSED]: "up",
  [CircuitState.HALF_OPEN]: "degraded",
  [CircuitState.OPEN]: "down",
};

interface ComponentRecord {
  lastError: string | null;
  lastErrorAt: number | null;
  lastTransitionAt: number;
  breaker?: CircuitBreaker;
}

/**
 * Each component's status ("redis", "postgres", "summarizer") as its circuit breaker reads now,
 * with its last error and last transition. Pure bookkeeping: it never probes anything itself.
 */
export class HealthMonitor {
  private readonly components = new Map<string, ComponentRecord>();
  private readonly canServe: CanServeRule;
  private readonly now: () => number;

  constructor(options: HealthMonitorOptions = {}) {
    const {
      components = [],
      canServe = (statuses) => Object.values(statuses).every((status) => status !== "down"),
      now = () => Date.now(),
    } = options;
    this.canServe = canServe;
    this.now = now;
    for (const name of components) this.recordOf(name);
  }

  /**
   * Lets a breaker drive a component (default: the breaker's name): CLOSED → up, HALF_OPEN →
   * degraded, OPEN → down, read at each call; its counted failures become the component's last
   * error. A component has one breaker for good: a second would leave the first's listeners on it.
   */
  attachBreaker(breaker: CircuitBreaker, component: string = breaker.name): void {
    const record = this.recordOf(component);
    if (record.breaker) throw new Error(`health component "${component}" already has a breaker`);
    record.breaker = breaker;
    if (breaker.getState() !== CircuitState.CLOSED) record.lastTransitionAt = this.now();
    breaker.onStateChange((event) => {
      record.lastTransitionAt = event.at;
    });
    breaker.on("failure", (event) => {
      record.lastError = errorMessage(event.error);
      record.lastErrorAt = event.at;
    });
  }

  /** Overall status and every component's record, breakers' snapshots included. */
  snapshot(): HealthSnapshot {
    const components: Record<string, ComponentHealth> = {};
    for (const [name, record] of this.components) {
      const health: ComponentHealth = {
        status: this.statusOf(record),
        last_error: record.lastError,
        last_error_at: iso(record.lastErrorAt),
        last_transition_at: new Date(record.lastTransitionAt).toISOString(),
      };
      if (record.breaker) health.breaker = record.breaker.snapshot();
      components[name] = health;
    }
    return { status: this.overall(), components };
  }

  /** The attached breakers' snapshots, in the order their components were registered. */
  breakerSnapshots(): CircuitBreakerSnapshot[] {
    const snapshots: CircuitBreakerSnapshot[] = [];
    for (const record of this.components.values()) {
      if (record.breaker) snapshots.push(record.breaker.snapshot());
    }
    return snapshots;
  }

  /** Each component's status, by name. */
  statuses(): Record<string, HealthStatus> {
    const statuses: Record<string, HealthStatus> = {};
    for (const [name, record] of this.components) statuses[name] = this.statusOf(record);
    return statuses;
  }

  /**
   * An attached breaker's state as it reads now. Breakers half-open lazily (no timers, no event
   * until the trial call): one past its recovery timeout reads HALF_OPEN, so its component is
   * degraded from then on, not from whenever a call next comes.
   */
  private statusOf(record: ComponentRecord): HealthStatus {
    return record.breaker ? statusOfBreaker[record.breaker.getState()] : "up";
  }

  private recordOf(component: string): ComponentRecord {
    let record = this.components.get(component);
    if (!record) {
      record = { lastError: null, lastErrorAt: null, lastTransitionAt: this.now() };
      this.components.set(component, record);
    }
    return record;
  }

  private overall(): HealthStatus {
    const statuses = this.statuses();
    return overallStatus(statuses, this.canServe(statuses));
  }
}

function iso(at: number | null): string | null {
  return at === null ? null : new Date(at).toISOString();
}
