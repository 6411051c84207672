import { ErrorReply } from "redis";
import { DatabaseUnavailableError, RedisUnavailableError } from "../errors.js";
import { type Database, isConnectionError, type Transaction } from "../storage/database.js";
import type { RedisConnection } from "../storage/redis-client.js";
import type { CircuitBreaker } from "./circuit-breaker.js";
import { CircuitOpenError } from "./errors.js";

/** A connection behind its circuit breaker: every call goes through `guard`. */
abstract class Guarded<Inner extends { close(): Promise<void> }> {
  readonly breaker: CircuitBreaker;
  protected readonly inner: Inner;

  constructor(inner: Inner, breaker: CircuitBreaker) {
    this.inner = inner;
    this.breaker = breaker;
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  protected abstract guard<T>(operation: () => Promise<T>): Promise<T>;
}

/**
 * Redis behind its circuit breaker: every command goes through the breaker, and every way Redis
 * can fail to answer (refused, reset, closed, timed out, breaker open, out of memory, loading)
 * surfaces as one RedisUnavailableError, which the stores answer by falling back to the system of
 * record. Any other error reply (the server answered) is not an outage: it passes through and the
 * breaker ignores it.
 */
export class GuardedRedisConnection extends Guarded<RedisConnection> implements RedisConnection {
  get isReady(): boolean {
    return this.inner.isReady;
  }

  onReconnect(listener: () => void): void {
    this.inner.onReconnect(listener);
  }

  send(args: readonly string[], route?: { key?: string; readonly?: boolean }): Promise<unknown> {
    return this.guard(() => this.inner.send(args, route));
  }

  info(section: string): Promise<string[]> {
    return this.guard(() => this.inner.info(section));
  }

  scanKeys(pattern: string): Promise<string[]> {
    return this.guard(() => this.inner.scanKeys(pattern));
  }

  protected guard<T>(operation: () => Promise<T>): Promise<T> {
    return guarded(
      this.breaker,
      operation,
      isRedisOutage,
      (message, cause) => new RedisUnavailableError(`Redis is unavailable: ${message}`, { cause }),
    );
  }
}

/**
 * Error replies that say the server cannot serve now (out of memory under `noeviction`, a failing
 * snapshot, a read-only replica after a failover, loading its data after a restart, a cluster
 * without quorum), not that the request was wrong: they count as an outage.
 */
const UNAVAILABLE_REPLY = /^(OOM|MISCONF|READONLY|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY)\b/;

/** Breaker predicate for Redis: failures to answer and "cannot serve now" replies count. */
export function isRedisOutage(error: unknown): boolean {
  return !(error instanceof ErrorReply) || UNAVAILABLE_REPLY.test(error.message);
}

/**
 * The system of record behind its circuit breaker. Connection failures count and surface as
 * DatabaseUnavailableError; errors the server answered with (constraint violations, bad SQL) pass
 * through untouched and do not count.
 */
export class GuardedDatabase extends Guarded<Database> implements Database {
  get kind() {
    return this.inner.kind;
  }

  query<Row extends object>(sql: string, params?: readonly unknown[]): Promise<{ rows: Row[] }> {
    return this.guard(() => this.inner.query<Row>(sql, params));
  }

  transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.guard(() => this.inner.transaction(work));
  }

  exec(sql: string): Promise<void> {
    return this.guard(() => this.inner.exec(sql));
  }

  protected guard<T>(operation: () => Promise<T>): Promise<T> {
    const unavailable = (error: unknown) => error instanceof CircuitOpenError || isConnectionError(error);
    return guarded(
      this.breaker,
      operation,
      unavailable,
      (message, cause) => new DatabaseUnavailableError(`PostgreSQL is unavailable: ${message}`, { cause }),
    );
  }
}

/**
 * Runs `operation` through `breaker`; an error that means the dependency is unavailable surfaces
 * as the store's own error (made by `unavailableError`), any other passes through untouched.
 */
async function guarded<T>(
  breaker: CircuitBreaker,
  operation: () => Promise<T>,
  isUnavailable: (error: unknown) => boolean,
  unavailableError: (message: string, cause: unknown) => Error,
): Promise<T> {
  try {
    return await breaker.execute(operation);
  } catch (error) {
    if (!isUnavailable(error)) throw error;
    throw unavailableError(error instanceof Error ? error.message : String(error), error);
  }
}
