import { isIP } from "node:net";
import { readProductEnvironment } from "../environment.js";
import { ValidationError } from "../errors.js";
import { type ApiKeyring, apiKeyringFromEnv } from "./auth.js";

type Environment = Record<string, string | undefined>;

/** Largest request body by default: 2 MiB (a 1 MiB SwisperContext with room to spare). */
export const DEFAULT_BODY_LIMIT_BYTES = 2 * 1024 * 1024;
/** Requests per API key (or per client address without keys) and minute by default. */
export const DEFAULT_RATE_LIMIT_PER_MINUTE = 120_000;

/** How `swisper-memory serve` listens and protects itself, read from the environment. */
export interface ServiceConfig {
  /** TCP port (`PORT`, default 8080; 0 picks a free one). */
  port: number;
  /** Address to bind (`HOST`; default 127.0.0.1 without API keys, 0.0.0.0 with them). */
  host: string;
  /** API keys bound to tenants (`MEMORY_API_KEYS`, `MEMORY_API_KEYS_FILE`); empty: auth off. */
  apiKeys: ApiKeyring;
  /** Largest request body in bytes (`MEMORY_BODY_LIMIT_BYTES`, default 2 MiB). */
  bodyLimitBytes: number;
  /** Requests per key and minute (`MEMORY_RATE_LIMIT_PER_MINUTE`, default 120000; 0 turns it off). */
  rateLimitPerMinute: number;
  /** How long shutdown waits for requests and summarization jobs, in ms (`MEMORY_SHUTDOWN_TIMEOUT_MS`, default 10000). */
  shutdownTimeoutMs: number;
  /** pino level (`LOG_LEVEL`, default info). */
  logLevel: string;
}

/**
 * Reads the service settings (their values checked by the one environment schema). Throws a
 * ValidationError naming the variable for a bad value, and refuses a non-loopback HOST without
 * API keys: an unauthenticated memory service must not be reachable from other machines.
 */
export function serviceConfigFromEnv(env: Environment = process.env): ServiceConfig {
  const settings = readProductEnvironment(env);
  const apiKeys = apiKeyringFromEnv(env);
  const host = settings.HOST ?? (apiKeys.enabled ? "0.0.0.0" : "127.0.0.1");
  if (!apiKeys.enabled && !isLoopback(host)) {
    throw new ValidationError(
      "HOST",
      `is ${host}, but no MEMORY_API_KEYS are configured: without keys the service binds to 127.0.0.1 only`,
    );
  }
  return {
    port: settings.PORT ?? 8080,
    host,
    apiKeys,
    bodyLimitBytes: settings.MEMORY_BODY_LIMIT_BYTES ?? DEFAULT_BODY_LIMIT_BYTES,
    rateLimitPerMinute: settings.MEMORY_RATE_LIMIT_PER_MINUTE ?? DEFAULT_RATE_LIMIT_PER_MINUTE,
    shutdownTimeoutMs: settings.MEMORY_SHUTDOWN_TIMEOUT_MS ?? 10_000,
    logLevel: settings.LOG_LEVEL ?? "info",
  };
}

/** 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1" || host === "[::1]";
}
