import { readProductEnvironment } from "../environment.js";
import { ValidationError } from "../errors.js";
import { errorCode } from "../resilience/transition-log.js";
import { splitLines } from "../sessions/import.js";
import { addressOf } from "../storage/server-address.js";
import type { Environment } from "./command.js";

/**
 * What `inspect`, `stats` and `clear` use to ask a running service over HTTP (`--url` or
 * MEMORY_URL) instead of opening its storage: the embedded database has one owner, and only the
 * service knows its live circuit breakers. Built on `fetch`; no retries (an operator re-runs).
 */
export interface ServiceClientOptions {
  /** The service's base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** Where `url` came from, named in errors: `--url` or `MEMORY_URL`. */
  source: string;
  /** Sent as `Authorization: Bearer` (MEMORY_API_KEY); the key decides the tenant. */
  apiKey?: string;
  /** Milliseconds a request may take (default 10000). */
  timeoutMs?: number;
}

/** The service could not be reached: names the URL, where it came from and the error code. */
export class ServiceUnreachableError extends Error {
  readonly code: string;
  constructor(url: string, source: string, cause: unknown) {
    // fetch puts the socket's code (ECONNREFUSED, ENOTFOUND) on the error's `cause`.
    const code = errorCode(cause);
    const address = addressOf(url, url.startsWith("https:") ? 443 : 80);
    super(`cannot reach the service at ${url} (${source}, ${address}): ${code}`, { cause });
    this.name = "ServiceUnreachableError";
    this.code = code;
  }
}

/** The service answered with an error status; carries its `{ error: { code, message } }`. */
export class ServiceResponseError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(request: string, status: number, code: string, message: string) {
    super(`${request} answered ${status} ${code}: ${message}`);
    this.name = "ServiceResponseError";
    this.status = status;
    this.code = code;
  }
}

export class ServiceClient {
  readonly url: string;
  readonly #source: string;
  readonly #apiKey: string | undefined;
  readonly #timeoutMs: number;

  constructor(options: ServiceClientOptions) {
    this.url = options.url.replace(/\/+$/, "");
    this.#source = options.source;
    this.#apiKey = options.apiKey;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** GETs a JSON body; null for 404. `accept` lists other statuses that carry an answer (503 of /health). */
  /** Whether requests carry an API key (which decides their tenant); without one, "default". */
  get hasApiKey(): boolean {
    return this.#apiKey !== undefined;
  }

  async get<T>(path: string, accept: readonly number[] = []): Promise<T | null> {
    const response = await this.#send("GET", path);
    if (response.status === 404) return null;
    if (!response.ok && !accept.includes(response.status)) throw await this.#failure("GET", path, response);
    return (await response.json()) as T;
  }

  /** DELETEs; false for 404 (nothing there). */
  async delete(path: string): Promise<boolean> {
    const response = await this.#send("DELETE", path);
    if (response.status === 404) return false;
    if (!response.ok) throw await this.#failure("DELETE", path, response);
    return true;
  }

  /** GETs a JSON Lines body, a line at a time as it arrives; null for 404. */
  async lines(path: string): Promise<AsyncIterable<string> | null> {
    const response = await this.#send("GET", path, { accept: "application/x-ndjson", streamed: true });
    if (response.status === 404) return null;
    if (!response.ok || !response.body) throw await this.#failure("GET", path, response);
    return splitLines(response.body);
  }

  /** POSTs a body streamed from `chunks` (a file); the JSON answer. */
  async postStream<T>(path: string, chunks: AsyncIterable<Uint8Array>, contentType: string): Promise<T> {
    const response = await this.#send("POST", path, {
      body: ReadableStream.from(chunks),
      contentType,
      streamed: true,
    });
    if (!response.ok) throw await this.#failure("POST", path, response);
    return (await response.json()) as T;
  }

  async #send(
    method: string,
    path: string,
    options: {
      accept?: string;
      body?: ReadableStream<Uint8Array>;
      contentType?: string;
      streamed?: boolean;
    } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: options.accept ?? "application/json" };
    if (this.#apiKey) headers.authorization = `Bearer ${this.#apiKey}`;
    if (options.contentType) headers["content-type"] = options.contentType;
    try {
      return await fetch(`${this.url}${path}`, {
        method,
        headers,
        // A streamed export or import takes as long as its size: the operator stops it (Ctrl-C).
        ...(options.streamed ? {} : { signal: AbortSignal.timeout(this.#timeoutMs) }),
        ...(options.body ? { body: options.body, duplex: "half" as const } : {}),
      });
    } catch (error) {
      throw new ServiceUnreachableError(this.url, this.#source, error);
    }
  }

  async #failure(method: string, path: string, response: Response): Promise<ServiceResponseError> {
    const body = (await response.json().catch(() => null)) as {
      error?: { code?: string; message?: string };
    } | null;
    return new ServiceResponseError(
      `${method} ${this.url}${path}`,
      response.status,
      body?.error?.code ?? response.statusText,
      body?.error?.message ?? "(no error body)",
    );
  }
}

/**
 * The client `--url` or MEMORY_URL asks for (with MEMORY_API_KEY), or null to open the storage
 * the environment names. Throws a ValidationError naming `--url` for a URL that is not http(s).
 */
export function serviceClientFor(urlOption: string | undefined, env: Environment): ServiceClient | null {
  if (urlOption !== undefined) {
    // The option gets the variable's checks, under its own name.
    try {
      readProductEnvironment({ MEMORY_URL: urlOption });
    } catch (error) {
      throw error instanceof ValidationError
        ? new ValidationError("--url", error.message.replace(/^MEMORY_URL: /, ""))
        : error;
    }
  }
  const settings = readProductEnvironment(env);
  const url = urlOption ?? settings.MEMORY_URL;
  if (url === undefined) return null;
  return new ServiceClient({
    url,
    source: urlOption !== undefined ? "--url" : "MEMORY_URL",
    ...(settings.MEMORY_API_KEY !== undefined ? { apiKey: settings.MEMORY_API_KEY } : {}),
  });
}

/** The query string of a library options object (keys as they are, values as text). */
export function queryString(options: object): string {
  const pairs = Object.entries(options)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]): [string, string] => [key, String(value)]);
  return new URLSearchParams(pairs).toString();
}
