import { type CircuitBreaker, CircuitState } from "./circuit-breaker.js";

export interface RecoveryProbeOptions {
  /** Milliseconds between probes while the breaker is not closed (default 1000). */
  intervalMs?: number;
}

/**
 * Probes a dependency while its breaker is open, through the breaker: once the recovery time has
 * passed the probe is the HALF_OPEN trial, so the breaker closes (and recovery work such as the
 * outbox replay starts) as soon as the dependency answers, even when no request comes in.
 * Returns a function that stops probing. The timer never keeps the process alive.
 */
export function startRecoveryProbe(
  breaker: CircuitBreaker,
  probe: () => Promise<unknown>,
  options: RecoveryProbeOptions = {},
): () => void {
  const timer = setInterval(() => {
    if (breaker.getState() === CircuitState.CLOSED) return;
    breaker.execute(probe).catch(() => {});
  }, options.intervalMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}
