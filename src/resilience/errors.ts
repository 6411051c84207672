import { MemoryError } from "../errors.js";
import type { CircuitState } from "./circuit-breaker.js";

/**
 * A circuit breaker refused a call without running it: the breaker is OPEN, or HALF_OPEN with its
 * trial calls already in flight. The HTTP layer maps it to 503 with `Retry-After`.
 */
export class CircuitOpenError extends MemoryError {
  readonly code = "circuit_open";
  /** The breaker's `name`, e.g. "redis". */
  readonly breakerName: string;
  /** The state that refused the call: "open" or "half_open". */
  readonly state: CircuitState;
  /**
   * Milliseconds until the breaker admits a trial call. 0 while a HALF_OPEN trial is in flight:
   * its outcome, not a timer, decides when calls pass again.
   */
  readonly retryAfterMs: number;

  constructor(breakerName: string, state: CircuitState, retryAfterMs: number) {
    super(
      state === "open"
        ? `circuit "${breakerName}" is open; retry after ${retryAfterMs} ms`
        : `circuit "${breakerName}" is half-open and its trial call is in flight; retry shortly`,
    );
    this.breakerName = breakerName;
    this.state = state;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Type guard for callers that catch `unknown`. */
export function isCircuitOpenError(error: unknown): error is CircuitOpenError {
  return error instanceof CircuitOpenError;
}
