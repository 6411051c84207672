import { type Logger, stderrLogger } from "../logger.js";
import { CircuitOpenError } from "./errors.js";
import { errorMessage, Listeners, type Unsubscribe } from "./listeners.js";

/** The three breaker states, as values (`breaker.getState() === CircuitState.OPEN`). */
export const CircuitState = {
  /** Calls pass; `failureThreshold` counted failures in a row open the breaker. */
  CLOSED: "closed",
  /** Calls are refused with `CircuitOpenError` until the recovery timeout has elapsed. */
  OPEN: "open",
  /** One trial call passes, the others are refused at once; its outcome closes or re-opens. */
  HALF_OPEN: "half_open",
} as const;
export type CircuitState = (typeof CircuitState)[keyof typeof CircuitState];

export interface CircuitBreakerOptions {
  /** Names the guarded dependency in errors, events, snapshots and health ("redis", "postgres"). */
  name: string;
  /** Consecutive counted failures that open a CLOSED breaker. Default 5. */
  failureThreshold?: number;
  /** Milliseconds an OPEN breaker refuses calls before it admits a trial. Default 60_000. */
  recoveryTimeoutMs?: number;
  /**
   * Whether an error counts against the dependency. Default: every error counts. Return false for
   * errors that say nothing about the dependency's health (validation errors, a caller's abort):
   * such an error is passed through and leaves the state machine exactly as it was.
   */
  isFailure?: (error: unknown) => boolean;
  /** Clock in epoch milliseconds. Default `Date.now()` (read at each call, so fake timers apply). */
  now?: () => number;
  /** Where a throwing event listener is reported. Default: JSON lines on stderr. */
  logger?: Logger;
}

/** Why a transition happened: for logs and metrics labels. */
export type TransitionReason =
  | "failures" // failureThreshold counted failures in a row tripped a CLOSED breaker
  | "recovery_timeout" // OPEN for recoveryTimeoutMs: the next call may be a trial
  | "probe_success" // the dependency answered a health probe made outside the breaker
  | "trial_success"
  | "trial_failure"
  | "reset";

export interface StateChangeEvent {
  name: string;
  from: CircuitState;
  to: CircuitState;
  /** Epoch milliseconds (the breaker's clock). */
  at: number;
  reason: TransitionReason;
  /** The error that opened the breaker, when a failure did. */
  error?: unknown;
}

export interface FailureEvent {
  name: string;
  /** Epoch milliseconds (the breaker's clock). */
  at: number;
  error: unknown;
}

export interface CircuitBreakerEvents {
  stateChange: StateChangeEvent;
  /** A counted failure (errors `isFailure` rejects emit nothing): the health monitor's last error. */
  failure: FailureEvent;
}

/** What `snapshot()` returns; snake_case and ISO times, like the other public data shapes. */
export interface CircuitBreakerSnapshot {
  name: string;
  state: CircuitState;
  /** Counted failures since the last success, close or reset. */
  failures: number;
  /** ISO time the breaker last opened; null while CLOSED. */
  opened_at: string | null;
  /** Milliseconds until an OPEN breaker admits a trial; 0 when not OPEN. */
  retry_after_ms: number;
  /** Message of the last counted failure (kept across reset: it is history). */
  last_error: string | null;
  /** ISO time of the last transition; null if the breaker never changed state. */
  last_transition_at: string | null;
  /** Lifetime counters (monotonic, never reset: they feed Prometheus counters). */
  total_failures: number;
  total_successes: number;
  rejections: number;
}

type BreakerState =
  | { state: "closed" }
  | { state: "open"; openedAt: number; reopenAt: number }
  | { state: "half_open"; openedAt: number; trialInFlight: boolean };

/**
 * Which episode (the span between two transitions) admitted a call. Only outcomes of the current
 * episode drive the state machine: a slow call admitted before the breaker opened, or before a
 * `reset()`, cannot close or trip the breaker it no longer describes.
 */
interface Ticket {
  episode: number;
  /** The HALF_OPEN trial: while it is in flight every other call is refused. */
  trial: boolean;
}

/**
 * Guards one dependency. CLOSED → (failureThreshold failures in a row) → OPEN →
 * (recoveryTimeoutMs) → HALF_OPEN → (trial succeeds) → CLOSED, or (trial fails) → OPEN with a
 * fresh timer.
 *
 * No timers, so the breaker never keeps a process alive and works with an injected clock: once the
 * recovery timeout has elapsed an OPEN breaker reads HALF_OPEN (`getState`, `snapshot` only read),
 * and the transition, with its `stateChange` event, is made by the call it admits as the trial.
 */
export class CircuitBreaker {
  readonly name: string;
  private readonly failureThreshold: number;
  private readonly recoveryTimeoutMs: number;
  private readonly isFailure: (error: unknown) => boolean;
  private readonly now: () => number;
  private readonly listeners: Listeners<CircuitBreakerEvents>;

  private current: BreakerState = { state: "closed" };
  private episode = 0;
  private consecutiveFailures = 0;
  private lastError: string | null = null;
  private lastTransitionAt: number | null = null;
  private totalFailures = 0;
  private totalSuccesses = 0;
  private rejections = 0;

  constructor(options: CircuitBreakerOptions) {
    const {
      name,
      failureThreshold = 5,
      recoveryTimeoutMs = 60_000,
      isFailure = () => true,
      now = () => Date.now(),
      logger = stderrLogger,
    } = options;
    if (!Number.isInteger(failureThreshold) || failureThreshold < 1) {
      throw new RangeError(`circuit breaker "${name}": failureThreshold must be an integer >= 1`);
    }
    if (!Number.isFinite(recoveryTimeoutMs) || recoveryTimeoutMs < 0) {
      throw new RangeError(`circuit breaker "${name}": recoveryTimeoutMs must be >= 0`);
    }
    this.name = name;
    this.failureThreshold = failureThreshold;
    this.recoveryTimeoutMs = recoveryTimeoutMs;
    this.isFailure = isFailure;
    this.now = now;
    this.listeners = new Listeners(`circuit-breaker:${name}`, logger);
  }

  /**
   * Runs `operation` through the breaker. Refused with `CircuitOpenError` (without calling
   * `operation`) while OPEN, or while HALF_OPEN with the trial in flight. The operation's own
   * error is rethrown unchanged.
   */
  async execute<T>(operation: () => Promise<T>): Promise<T> {
    const ticket = this.admit();
    let result: T;
    try {
      result = await operation();
    } catch (error) {
      if (this.counts(error)) {
        this.settle(ticket, { ok: false, error });
      } else {
        this.release(ticket);
      }
      throw error;
    }
    this.settle(ticket, { ok: true });
    return result;
  }

  /** The decorator form (the specification's `@redis_circuit_breaker`): `fn` run through `execute`. */
  wrap<Args extends unknown[], R>(fn: (...args: Args) => Promise<R>): (...args: Args) => Promise<R> {
    return (...args) => this.execute(() => fn(...args));
  }

  /**
   * The current state, read without changing anything. An OPEN breaker whose recovery timeout has
   * elapsed reads HALF_OPEN: its next call is admitted as the trial (and `execute` makes the
   * transition then). Reading OPEN instead would make a caller that routes by `getState()` skip
   * the dependency forever, since no call would ever reach it to serve as the trial.
   */
  getState(): CircuitState {
    return this.stateAt(this.now());
  }

  /** The breaker's figures, read without changing anything (state as `getState()` reads it). */
  snapshot(): CircuitBreakerSnapshot {
    const at = this.now();
    const current = this.current;
    return {
      name: this.name,
      state: this.stateAt(at),
      failures: this.consecutiveFailures,
      opened_at: current.state === "closed" ? null : new Date(current.openedAt).toISOString(),
      retry_after_ms: current.state === "open" ? Math.max(0, current.reopenAt - at) : 0,
      last_error: this.lastError,
      last_transition_at:
        this.lastTransitionAt === null ? null : new Date(this.lastTransitionAt).toISOString(),
      total_failures: this.totalFailures,
      total_successes: this.totalSuccesses,
      rejections: this.rejections,
    };
  }

  /**
   * A real reset (the Memory Manager API specification's "manual circuit breaker control"):
   * CLOSED, consecutive failures 0, the trial slot freed, and calls still in flight from before
   * the reset can no longer count. opossum's `close()` and cockatiel's manual close keep the old
   * failure count, so a single new failure re-opens them at once (README); here a breaker with
   * threshold 5 needs 5 new failures. Lifetime totals and `last_error` are history and stay.
   */
  reset(): void {
    const at = this.now();
    const from = this.current.state;
    this.consecutiveFailures = 0;
    if (from === "closed") {
      // Not a transition, but still a new episode so in-flight outcomes are forgotten.
      this.episode += 1;
      return;
    }
    this.transition({ state: "closed" }, at, "reset");
  }

  /**
   * The dependency answered a probe made outside the breaker: an OPEN breaker half-opens now,
   * without waiting out `recoveryTimeoutMs`, so that its next call (the probe again, made through
   * `execute`) is the trial that closes it. A dependency that is back is used within a probe
   * interval, not a recovery timeout.
   */
  probeSucceeded(): void {
    const at = this.now();
    this.halfOpen(at, this.recoveryDue(at) ? "recovery_timeout" : "probe_success");
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof CircuitBreakerEvents>(
    event: K,
    listener: (payload: CircuitBreakerEvents[K]) => void,
  ): Unsubscribe {
    return this.listeners.on(event, listener);
  }

  /** Shorthand for `on("stateChange", listener)`. */
  onStateChange(listener: (event: StateChangeEvent) => void): Unsubscribe {
    return this.listeners.on("stateChange", listener);
  }

  private stateAt(at: number): CircuitState {
    return this.recoveryDue(at) ? CircuitState.HALF_OPEN : this.current.state;
  }

  /** OPEN for `recoveryTimeoutMs` already: the next call is the trial. */
  private recoveryDue(at: number): boolean {
    const current = this.current;
    return current.state === "open" && at >= current.reopenAt;
  }

  /** OPEN → HALF_OPEN, emitting the transition; nothing in another state. */
  private halfOpen(at: number, reason: TransitionReason): void {
    const current = this.current;
    if (current.state !== "open") return;
    this.transition({ state: "half_open", openedAt: current.openedAt, trialInFlight: false }, at, reason);
  }

  private admit(): Ticket {
    const at = this.now();
    // The lazy half-open is made here, by the call that becomes the trial, and logged then.
    if (this.recoveryDue(at)) this.halfOpen(at, "recovery_timeout");
    const state = this.current;
    if (state.state === "closed") return { episode: this.episode, trial: false };
    if (state.state === "half_open" && !state.trialInFlight) {
      state.trialInFlight = true;
      return { episode: this.episode, trial: true };
    }
    const retryAfterMs = state.state === "open" ? Math.max(0, state.reopenAt - at) : 0;
    this.rejections += 1;
    throw new CircuitOpenError(this.name, state.state, retryAfterMs);
  }

  /**
   * `isFailure` guarded: if the caller's predicate throws, the error counts. Letting it throw
   * here would leak a HALF_OPEN trial slot and leave the breaker refusing every call forever.
   */
  private counts(error: unknown): boolean {
    try {
      return this.isFailure(error);
    } catch {
      return true;
    }
  }

  /** Frees a trial slot without deciding anything (the error did not count). */
  private release(ticket: Ticket): void {
    const state = this.current;
    if (ticket.trial && ticket.episode === this.episode && state.state === "half_open") {
      state.trialInFlight = false;
    }
  }

  private settle(ticket: Ticket, outcome: { ok: true } | { ok: false; error: unknown }): void {
    const at = this.now();
    this.release(ticket);
    if (outcome.ok) {
      this.totalSuccesses += 1;
    } else {
      this.totalFailures += 1;
      this.lastError = errorMessage(outcome.error);
      this.listeners.emit("failure", { name: this.name, at, error: outcome.error });
    }
    // A stale outcome (its episode ended: the breaker opened, half-opened or was reset meanwhile,
    // perhaps by a listener just now) is counted in the totals but decides nothing.
    if (ticket.episode !== this.episode) return;

    // Same episode as the admission: still CLOSED, or HALF_OPEN with this call as its trial.
    const { trial } = ticket;
    if (outcome.ok) {
      if (trial) this.transition({ state: "closed" }, at, "trial_success");
      else this.consecutiveFailures = 0;
      return;
    }
    this.consecutiveFailures += 1;
    if (trial) this.open(at, "trial_failure", outcome.error);
    else if (this.consecutiveFailures >= this.failureThreshold) this.open(at, "failures", outcome.error);
  }

  private open(at: number, reason: TransitionReason, error: unknown): void {
    this.transition(
      { state: "open", openedAt: at, reopenAt: at + this.recoveryTimeoutMs },
      at,
      reason,
      error,
    );
  }

  private transition(next: BreakerState, at: number, reason: TransitionReason, error?: unknown): void {
    const from = this.current.state;
    this.current = next;
    this.episode += 1;
    this.lastTransitionAt = at;
    if (next.state === "closed") this.consecutiveFailures = 0;
    const event: StateChangeEvent = { name: this.name, from, to: next.state, at, reason };
    if (error !== undefined) event.error = error;
    this.listeners.emit("stateChange", event);
  }
}
