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
