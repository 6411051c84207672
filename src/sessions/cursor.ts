import { ValidationError } from "../errors.js";

/** A page cursor: opaque to callers, base64url of a small JSON array. */
export function encodeCursor(parts: readonly unknown[]): string {
  return Buffer.from(JSON.stringify(parts), "utf8").toString("base64url");
}

/**
 * The array a cursor holds, when `valid` accepts it; else a ValidationError on `cursor` saying
 * it is not a cursor of `what` ("this listing").
 */
export function decodeCursor<T extends unknown[]>(
  cursor: string,
  what: string,
  valid: (parts: unknown[]) => parts is T,
): T {
  const invalid = new ValidationError("cursor", `is not a cursor of ${what}`);
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid;
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalid;
  }
  if (!Array.isArray(decoded) || !valid(decoded)) throw invalid;
  return decoded;
}

/** A cursor that is well formed but was given for another listing or search. */
export function foreignCursor(why: string): ValidationError {
  return new ValidationError("cursor", `belongs to another ${why}`);
}
