/**
 * One error class per way a summarizer call can fail. The summarization job keeps the buffer and
 * retries on any of them; `retryable` tells it whether a retry can help at all.
 */
import { MemoryError } from "../errors.js";

/** Base of every summarizer failure, so a job can catch them with one `instanceof`. */
export abstract class SummarizerError extends MemoryError {
  /** False when retrying the same request cannot succeed (for example HTTP 401 or 404). */
  abstract readonly retryable: boolean;
}

/** The request did not finish within the summarizer's `timeoutMs`. */
export class SummarizerTimeoutError extends SummarizerError {
  readonly code = "summarizer_timeout";
  readonly retryable = true;
  /** The timeout that expired, in milliseconds. */
  readonly timeoutMs: number;
  constructor(timeoutMs: number, options?: { cause?: unknown }) {
    super(`summarizer request timed out after ${timeoutMs} ms`, options);
    this.timeoutMs = timeoutMs;
  }
}

/** The caller's `signal` aborted the call (job cancelled, shutdown). */
export class SummarizerAbortedError extends SummarizerError {
  readonly code = "summarizer_aborted";
  readonly retryable = true;
  constructor(options?: { cause?: unknown }) {
    super("summarizer call aborted", options);
  }
}

/** The endpoint could not be reached (connection refused, DNS failure, TLS error, reset). */
export class SummarizerUnavailableError extends SummarizerError {
  readonly code = "summarizer_unavailable";
  readonly retryable = true;
}

/** The endpoint answered with a non-2xx status. */
export class SummarizerHttpError extends SummarizerError {
  readonly code = "summarizer_http_error";
  readonly retryable: boolean;
  /** HTTP status code of the answer. */
  readonly status: number;
  /** At most 200 characters of the response body, with any credential we sent redacted. */
  readonly bodySnippet: string;
  /** The server's `Retry-After` in milliseconds (429/503), or null when it sent none. */
  readonly retryAfterMs: number | null;
  constructor(status: number, bodySnippet: string, retryAfterMs: number | null, endpoint: string) {
    super(`summarizer endpoint ${endpoint} answered HTTP ${status}${bodySnippet ? `: ${bodySnippet}` : ""}`);
    this.status = status;
    this.bodySnippet = bodySnippet;
    this.retryAfterMs = retryAfterMs;
    // Timeouts, rate limits and server errors pass; a bad key, model or request does not.
    this.retryable = status === 408 || status === 409 || status === 429 || status >= 500;
  }
}

/** The endpoint answered 2xx but not with a usable summary: bad JSON, no choices, empty text. */
export class SummarizerResponseError extends SummarizerError {
  readonly code = "summarizer_bad_response";
  readonly retryable = true;
}

/**
 * The summarizer's worker thread died during the call (out of its heap limit, or terminated).
 * The next call starts a new worker.
 */
export class SummarizerWorkerError extends SummarizerError {
  readonly code = "summarizer_worker_failed";
  readonly retryable = true;
}

export function isSummarizerError(error: unknown): error is SummarizerError {
  return error instanceof SummarizerError;
}
