import { type CircuitBreaker, CircuitState } from "./circuit-breaker.js";

export interface RecoveryProbeOptions {
  /** Milliseconds between probes while the breaker is not closed (default 1000). */
  intervalMs?: number;
}

/**
 * Probes a dependency while its breaker is not CLOSED. While OPEN the probe goes to the dependency
 * directly, and an answer half-opens the breaker at once (not after its recovery timeout); the
 * next probe, through the breaker, is then the trial that closes it. So recovery (the outbox
 * replay, stale-buffer drops) starts within two probe intervals of the dependency answering,
 * even when no request comes in. A breaker past its recovery timeout already reads HALF_OPEN: the
 * probe through `execute` makes that transition (and its log line) as the trial. Returns a function
 * that stops probing. The timer never keeps the process alive; a probe still running is not
 * started again.
 */
export function startRecoveryProbe(
  breaker: CircuitBreaker,
  probe: () => Promise<unknown>,
  options: RecoveryProbeOptions = {},
): () => void {
  let running = false;
  const attempt = async () => {
    const state = breaker.getState();
    if (state === CircuitState.OPEN) {
      await probe();
      breaker.probeSucceeded();
    }
    await breaker.execute(probe);
  };
  const timer = setInterval(() => {
    if (running || breaker.getState() === CircuitState.CLOSED) return;
    running = true;
    // A probe failing is the outage going on: the breaker counted it, and its transitions are
    // logged; a line a second here would only repeat them.
    attempt()
      .catch(() => {})
      .finally(() => {
        running = false;
      });
  }, options.intervalMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}
