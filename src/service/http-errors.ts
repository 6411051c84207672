import * as redis from "redis";
import {
  DatabaseUnavailableError,
  ImportConflictError,
  RedisUnavailableError,
  StorageUnavailableError,
  ValidationError,
} from "../errors.js";
import { isCircuitOpenError } from "../resilience/index.js";
import { isConnectionError } from "../storage/database.js";

/** The one error shape every route answers with. */
export interface ErrorBody {
  error: {
    /** Stable, machine-readable: `invalid_input`, `unauthorized`, `not_found`, ... */
    code: string;
    message: string;
    /** Dotted path of the offending input, for `invalid_input`. */
    field?: string;
  };
}

/** An error the service answers with on purpose: a status, a code and a safe message. */
export class HttpError extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly field: string | undefined;
  readonly headers: Record<string, string>;

  constructor(
    statusCode: number,
    code: string,
    message: string,
    options: { field?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = "HttpError";
    this.statusCode = statusCode;
    this.code = code;
    this.field = options.field;
    this.headers = options.headers ?? {};
  }
}

export function notFound(message: string): HttpError {
  return new HttpError(404, "not_found", message);
}

/** A mapped error: what to send. `internal` is true for errors nobody anticipated (log them). */
export interface MappedError {
  statusCode: number;
  body: ErrorBody;
  headers: Record<string, string>;
  internal: boolean;
}

const REDIS_CONNECTION_ERRORS = [
  redis.ClientClosedError,
  redis.ClientOfflineError,
  redis.ConnectionTimeoutError,
  redis.ReconnectStrategyError,
  redis.RootNodesUnavailableError,
  redis.SocketClosedUnexpectedlyError,
  redis.SocketTimeoutError,
  redis.TimeoutError,
];

// Fastify's own client errors, by code: status and our code. The message is ours, never theirs.
const FASTIFY_ERRORS: Record<string, { statusCode: number; code: string; message: string; field?: string }> =
  {
    FST_ERR_CTP_BODY_TOO_LARGE: {
      statusCode: 413,
      code: "payload_too_large",
      message: "request body is larger than the limit",
    },
    FST_ERR_CTP_INVALID_MEDIA_TYPE: {
      statusCode: 415,
      code: "unsupported_media_type",
      message: "send JSON (Content-Type: application/json)",
    },
    FST_ERR_CTP_EMPTY_JSON_BODY: {
      statusCode: 400,
      code: "invalid_input",
      message: "body: must not be empty with Content-Type application/json",
      field: "body",
    },
    FST_ERR_CTP_INVALID_JSON_BODY: {
      statusCode: 400,
      code: "invalid_input",
      message: "body: is not valid JSON",
      field: "body",
    },
    FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
      statusCode: 400,
      code: "invalid_input",
      message: "Content-Length does not match the body",
    },
  };

/**
 * Maps anything a route can throw to a status and the error shape. Library errors keep their
 * code and field; storage outages become 503; anything unexpected becomes a 500 whose message says
 * only that (never a stack trace or a driver's message).
 */
export function mapError(error: unknown, requestId: string): MappedError {
  const answer = (
    statusCode: number,
    code: string,
    message: string,
    extra: { field?: string | undefined; headers?: Record<string, string> } = {},
  ): MappedError => ({
    statusCode,
    body: { error: { code, message, ...(extra.field !== undefined ? { field: extra.field } : {}) } },
    headers: extra.headers ?? {},
    internal: false,
  });

  if (error instanceof HttpError) {
    return answer(error.statusCode, error.code, error.message, {
      field: error.field,
      headers: error.headers,
    });
  }
  if (error instanceof ValidationError) {
    return answer(400, error.code, error.message, { field: error.field });
  }
  if (error instanceof ImportConflictError) return answer(409, error.code, error.message);
  if (isCircuitOpenError(error)) {
    const seconds = Math.max(1, Math.ceil(error.retryAfterMs / 1000));
    return answer(503, "storage_unavailable", `${error.breakerName} is unavailable; retry later`, {
      headers: { "retry-after": String(seconds) },
    });
  }
  if (isStorageOutage(error)) {
    return answer(
      503,
      "storage_unavailable",
      "no storage tier can serve the request right now; retry later",
      {
        headers: { "retry-after": "1" },
      },
    );
  }
  if (typeof error === "object" && error !== null) {
    const { code, statusCode } = error as { code?: unknown; statusCode?: unknown };
    const known = typeof code === "string" ? FASTIFY_ERRORS[code] : undefined;
    if (known) return answer(known.statusCode, known.code, known.message, { field: known.field });
    // Another client error fastify raised (a JSON syntax error, a malformed header).
    if (typeof statusCode === "number" && statusCode >= 400 && statusCode < 500) {
      const message = error instanceof SyntaxError ? "body: is not valid JSON" : "bad request";
      return answer(statusCode, statusCode === 400 ? "invalid_input" : "bad_request", message, {
        field: error instanceof SyntaxError ? "body" : undefined,
      });
    }
  }
  return {
    ...answer(500, "internal", `internal error (request id ${requestId})`),
    internal: true,
  };
}

// Timeouts the storage layer raises itself (by name, so that this mapping does not depend on
// where they are defined).
const TIMEOUT_ERROR_NAMES = new Set(["RedisCommandTimeoutError"]);

/**
 * The library's unavailability errors, and a database or Redis connection failure that reached
 * this far (as opposed to a query the server refused).
 */
export function isStorageOutage(error: unknown): boolean {
  if (
    error instanceof StorageUnavailableError ||
    error instanceof DatabaseUnavailableError ||
    error instanceof RedisUnavailableError
  ) {
    return true;
  }
  if (isConnectionError(error)) return true;
  if (error instanceof Error && TIMEOUT_ERROR_NAMES.has(error.name)) return true;
  return REDIS_CONNECTION_ERRORS.some((type) => error instanceof type);
}
