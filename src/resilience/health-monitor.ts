import { type Logger, stderrLogger } from "../logger.js";
import {
  type CircuitBreaker,
  type CircuitBreakerSnapshot,
  CircuitState,
  type StateChangeEvent,
} from "./circuit-breaker.js";
import { errorMessage, Listeners, type Unsubscribe } from "./listeners.js";

/** "degraded": working on a fallback or on probation (a HALF_OPEN breaker). */
export type HealthStatus = "up" | "degraded" | "down";

/** Decides whether the system can still serve requests, given each component's status. */
export type CanServeRule = (components: Readonly<Record<string, HealthStatus>>) => boolean;

export interface HealthMonitorOptions {
  /** Components registered at construction, status "up". More can be added with `register`. */
  components?: readonly string[];
  /**
   * Whether the system can serve. Default: no component is "down". The memory manager passes
   * the health model's rule (`assessHealth`: some path can acknowledge a write).
   */
  canServe?: CanServeRule;
  /** Clock in epoch milliseconds, for the recorded times. Default `Date.now()`. */
  now?: () => number;
  /** Where a throwing event listener is reported. Default: JSON lines on stderr. */
  logger?: Logger;
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

export interface ComponentChangeEvent {
  component: string;
  from: HealthStatus;
  to: HealthStatus;
  /** Epoch milliseconds. */
  at: number;
  error?: unknown;
}

export interface OverallChangeEvent {
  from: HealthStatus;
  to: HealthStatus;
  at: number;
}

export interface HealthMonitorEvents {
  /** A component's status changed. */
  change: ComponentChangeEvent;
  /** The overall status changed (emitted after the `change` that caused it). */
  overall: OverallChangeEvent;
}

/** A rule for `canServe`: true unless every named component is down (or unregistered). */
export function canServeUnlessAllDown(...names: string[]): CanServeRule {
  return (components) => names.some((name) => components[name] !== undefined && components[name] !== "down");
}

const statusOfBreaker: Record<CircuitState, HealthStatus> = {
  [CircuitState.CLOSED]: "up",
  [CircuitState.HALF_OPEN]: "degraded",
  [CircuitState.OPEN]: "down",
};

interface ComponentRecord {
  status: HealthStatus;
  lastError: string | null;
  lastErrorAt: number | null;
  lastTransitionAt: number;
  breaker?: { instance: CircuitBreaker; detach: Unsubscribe };
}

/**
 * Records each component's status ("redis", "postgres", "summarizer"), its last error and last
 * transition, fed by direct reports and by attached circuit breakers. Pure bookkeeping: it never
 * probes anything itself.
 */
export class HealthMonitor {
  private readonly components = new Map<string, ComponentRecord>();
  private readonly canServe: CanServeRule;
  private readonly now: () => number;
  private readonly listeners: Listeners<HealthMonitorEvents>;
  private overall: HealthStatus;

  constructor(options: HealthMonitorOptions = {}) {
    const {
      components = [],
      canServe = (statuses) => Object.values(statuses).every((status) => status !== "down"),
      now = () => Date.now(),
      logger = stderrLogger,
    } = options;
    this.canServe = canServe;
    this.now = now;
    this.listeners = new Listeners("health-monitor", logger);
    for (const name of components) this.addRecord(name, "up");
    this.overall = this.computeOverall();
  }

  /** Adds a component (no-op if it exists). Returns false if it was already registered. */
  register(component: string, status: HealthStatus = "up"): boolean {
    if (this.components.has(component)) return false;
    this.addRecord(component, status);
    this.updateOverall(this.now());
    return true;
  }

  /**
   * Sets a component's status (registering it if needed). With `error`, records it as the
   * component's last error even if the status does not change.
   */
  report(component: string, status: HealthStatus, error?: unknown): void {
    const at = this.now();
    this.register(component, status);
    const record = this.components.get(component)!;
    if (error !== undefined) {
      record.lastError = errorMessage(error);
      record.lastErrorAt = at;
    }
    if (record.status === status) return;
    const from = record.status;
    record.status = status;
    record.lastTransitionAt = at;
    const event: ComponentChangeEvent = { component, from, to: status, at };
    if (error !== undefined) event.error = error;
    this.listeners.emit("change", event);
    this.updateOverall(at);
  }

  /**
   * Lets a breaker drive a component (default: the breaker's name): CLOSED → up, HALF_OPEN →
   * degraded, OPEN → down; its failures become the component's last error. A component has at most
   * one breaker: attaching another detaches the first. Returns the function that detaches.
   */
  attachBreaker(breaker: CircuitBreaker, component: string = breaker.name): Unsubscribe {
    // Registers the component, or syncs an existing one with the breaker's current state.
    this.report(component, statusOfBreaker[breaker.getState()]);
    const record = this.components.get(component)!;
    record.breaker?.detach();

    const offChange = breaker.onStateChange((event: StateChangeEvent) => {
      this.report(component, statusOfBreaker[event.to], event.error);
    });
    const offFailure = breaker.on("failure", (event) => {
      record.lastError = errorMessage(event.error);
      record.lastErrorAt = event.at;
    });
    const detach = () => {
      offChange();
      offFailure();
      if (record.breaker?.instance === breaker) delete record.breaker;
    };
    record.breaker = { instance: breaker, detach };
    return detach;
  }

  /** Whether the system can serve, by the `canServe` rule. */
  isAvailable(): boolean {
    return this.canServe(this.statuses());
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
      if (record.breaker) health.breaker = record.breaker.instance.snapshot();
      components[name] = health;
    }
    return { status: this.computeOverall(), components };
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof HealthMonitorEvents>(
    event: K,
    listener: (payload: HealthMonitorEvents[K]) => void,
  ): Unsubscribe {
    return this.listeners.on(event, listener);
  }

  /** Shorthand for `on("change", listener)`. */
  onChange(listener: (event: ComponentChangeEvent) => void): Unsubscribe {
    return this.listeners.on("change", listener);
  }

  private addRecord(component: string, status: HealthStatus): void {
    this.components.set(component, {
      status,
      lastError: null,
      lastErrorAt: null,
      lastTransitionAt: this.now(),
    });
  }

  /** Each component's status, by name. */
  statuses(): Record<string, HealthStatus> {
    const statuses: Record<string, HealthStatus> = {};
    for (const [name, record] of this.components) statuses[name] = this.statusOf(record);
    return statuses;
  }

  /**
   * An attached breaker's state as it reads now, else the last report. Breakers half-open lazily
   * (no timers, no event until the trial call): one past its recovery timeout reads HALF_OPEN,
   * so its component is degraded from then on, not from whenever a call next comes.
   */
  private statusOf(record: ComponentRecord): HealthStatus {
    return record.breaker ? statusOfBreaker[record.breaker.instance.getState()] : record.status;
  }

  private computeOverall(): HealthStatus {
    const statuses = this.statuses();
    if (!this.canServe(statuses)) return "down";
    return Object.values(statuses).every((status) => status === "up") ? "up" : "degraded";
  }

  private updateOverall(at: number): void {
    const from = this.overall;
    const to = this.computeOverall();
    this.overall = to;
    if (from !== to) this.listeners.emit("overall", { from, to, at });
  }
}

function iso(at: number | null): string | null {
  return at === null ? null : new Date(at).toISOString();
}
