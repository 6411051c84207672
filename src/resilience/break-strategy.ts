/**
 * Decides when a CLOSED breaker opens (cockatiel's `IBreaker`, plus `reset`). The breaker only
 * consults it while CLOSED; HALF_OPEN trials are decided by the breaker itself.
 *
 * A strategy holds state: give each breaker its own instance.
 */
export interface BreakStrategy {
  /** A call succeeded while CLOSED. `now` is the breaker's clock (ms), for time-window strategies. */
  success(now: number): void;
  /** A counted failure while CLOSED. Returns true when the breaker should open. */
  failure(now: number): boolean;
  /**
   * Forget all history. The breaker calls it every time it enters CLOSED, `reset()` included, so
   * a closed breaker never carries failures from before (the opossum/cockatiel bug).
   */
  reset(): void;
}

/** Opens after `threshold` counted failures in a row; any success starts the count again. */
export class ConsecutiveFailures implements BreakStrategy {
  private count = 0;

  constructor(readonly threshold: number) {
    if (!Number.isInteger(threshold) || threshold < 1) {
      throw new RangeError(`failure threshold must be an integer >= 1, got ${threshold}`);
    }
  }

  success(): void {
    this.count = 0;
  }

  failure(): boolean {
    this.count += 1;
    return this.count >= this.threshold;
  }

  reset(): void {
    this.count = 0;
  }
}
