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

/**
 * A short, safe name for an error: its code (ECONNREFUSED, ENOTFOUND, 57P01), found on the error,
 * its cause or the first of an AggregateError's errors; ETIMEDOUT or ECONNRESET for the drivers'
 * uncoded timeouts and dropped connections; else its class name (ClientOfflineError).
 */
export function errorCode(error: unknown): string {
  for (let current = error, depth = 0; depth < 5 && isObject(current); depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && code !== "") return code;
    const nested = (current as { errors?: unknown }).errors;
    if (Array.isArray(nested) && nested.length > 0) {
      const inner = errorCode(nested[0]);
      if (inner !== "unknown" && inner !== "Error") return inner;
    }
    const message = String((current as { message?: unknown }).message ?? "");
    if (/timeout|timed out|did not answer within/i.test(message)) return "ETIMEDOUT";
    if (/Connection terminated|socket closed|connection closed/i.test(message)) return "ECONNRESET";
    if ((current as { cause?: unknown }).cause === undefined) break;
    current = (current as { cause?: unknown }).cause;
  }
  if (!(error instanceof Error)) return "unknown";
  // node-redis's errors (ClientOfflineError...) keep the name "Error": their class says more.
  return error.name !== "Error" ? error.name : error.constructor.name;
}

function isObject(value: unknown): value is object {
  return typeof value === "object" && value !== null;
}
