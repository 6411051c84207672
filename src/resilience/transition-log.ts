import type { Logger } from "../logger.js";
import { type CircuitBreaker, CircuitState, type StateChangeEvent } from "./circuit-breaker.js";
import type { Unsubscribe } from "./listeners.js";

export interface TransitionLogOptions {
  logger: Logger;
  /** What the log lines name (default: the breaker's name). */
  component?: string;
  /** host:port of the dependency (see `addressOf`); null when unknown or in-process. */
  address: string | null;
}

/**
 * Logs every transition of the breaker once, when it happens: warn when it opens (an outage
 * starts, or a trial failed), info when it half-opens or closes. Each line names the component,
 * the dependency's host:port and the error's code, never a message a driver may fill with
 * credentials.
 */
export function logTransitions(breaker: CircuitBreaker, options: TransitionLogOptions): Unsubscribe {
  const component = options.component ?? breaker.name;
  return breaker.onStateChange((event: StateChangeEvent) => {
    const details: Record<string, unknown> = {
      component,
      address: options.address,
      from: event.from,
      to: event.to,
      reason: event.reason,
    };
    if (event.error !== undefined) details.code = errorCode(event.error);
    if (event.to === CircuitState.OPEN) {
      options.logger.warn(details, `${component} unavailable: circuit breaker opened`);
    } else if (event.to === CircuitState.CLOSED) {
      options.logger.info?.(details, `${component} available again: circuit breaker closed`);
    } else {
      options.logger.info?.(details, `${component}: circuit breaker half-open, the next call is a trial`);
    }
  });
}

export { addressOf } from "../storage/server-address.js";

import { errorCode } from "../error-code.js";

export { errorCode };
