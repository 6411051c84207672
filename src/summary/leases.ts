import { randomUUID } from "node:crypto";
import { fixedPlacement, type KeyPlacement, type SessionRef, sessionKeys } from "../buffer/keys.js";
import { type Database, onlyRow } from "../storage/database.js";
import type { RedisConnection } from "../storage/redis-client.js";
import { acquireLease } from "./lua/acquire-lease.js";
import { extendLease } from "./lua/extend-lease.js";
import { releaseLease } from "./lua/release-lease.js";

/** A held summarizer lease. Its token fences commits: a lower token never commits after a higher. */
export interface Lease {
  readonly token: number;
  /** Extends the lease; false when it was lost (expired or taken over). */
  extend(): Promise<boolean>;
  release(): Promise<void>;
}

/** What a lease attempt got: the lease, or how long the current holder still has it. */
export type LeaseAttempt = { lease: Lease } | { lease: null; retryAfterMs: number };

/** Per-session mutual exclusion of summarizers across every process. */
export interface LeaseManager {
  /** `floor` is the highest fencing token committed so far: the new token is above it. */
  acquire(ref: SessionRef, floor: number): Promise<LeaseAttempt>;
}

export interface LeaseOptions {
  /** Milliseconds a lease lasts unless extended (default 30000). Holders extend it at a third. */
  leaseMs?: number;
  /** Identifies this process in lease values (default: a random UUID). */
  holderId?: string;
}

/** Leases in Redis: SET NX with a TTL, fencing tokens from a per-session counter. */
export class RedisLeaseManager implements LeaseManager {
  readonly leaseMs: number;
  readonly #redis: RedisConnection;
  readonly #placement: KeyPlacement;
  readonly #holderId: string;

  /** `keys`: the key prefix, or each session's (with Redis shards, with its epoch). */
  constructor(redis: RedisConnection, keys: string | KeyPlacement, options: LeaseOptions = {}) {
    this.#redis = redis;
    this.#placement = typeof keys === "string" ? fixedPlacement(keys) : keys;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.#holderId = options.holderId ?? randomUUID();
  }

  async acquire(ref: SessionRef, floor: number): Promise<LeaseAttempt> {
    const keys = sessionKeys(this.#placement(ref), ref);
    // The counter outlives any lease by far; the floor restores it if Redis lost it anyway.
    const counterTtlSeconds = 30 * 24 * 60 * 60;
    const reply = await acquireLease(this.#redis, keys, {
      holderId: this.#holderId,
      leaseMs: this.leaseMs,
      floor,
      counterTtlSeconds,
    });
    if (reply.status === "held") return { lease: null, retryAfterMs: Math.max(1, reply.remainingMs) };
    const { token } = reply;
    const value = `${token}:${this.#holderId}`;
    const redis = this.#redis;
    const leaseMs = this.leaseMs;
    return {
      lease: {
        token,
        extend: () => extendLease(redis, keys, value, leaseMs),
        release: async () => {
          await releaseLease(redis, keys, value);
        },
      },
    };
  }
}

/** Leases in the system of record, when there is no Redis: one row per session. */
export class SqlLeaseManager implements LeaseManager {
  readonly leaseMs: number;
  readonly #db: Database;
  readonly #holderId: string;

  constructor(db: Database, options: LeaseOptions = {}) {
    this.#db = db;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.#holderId = options.holderId ?? randomUUID();
  }

  async acquire(ref: SessionRef, floor: number): Promise<LeaseAttempt> {
    const { rows } = await this.#db.query<{ token: number | null; remaining_ms: number | null }>(
      `WITH taken AS (
         INSERT INTO memory_summary_leases AS l (tenant, session_id, token, holder, expires_at)
         VALUES ($1, $2, $3::bigint + 1, $4, clock_timestamp() + $5 * interval '1 millisecond')
         ON CONFLICT (tenant, session_id) DO UPDATE
           SET token = greatest(l.token, $3::bigint) + 1, holder = $4,
               expires_at = clock_timestamp() + $5 * interval '1 millisecond'
           WHERE l.expires_at <= clock_timestamp()
         RETURNING token
       )
       SELECT (SELECT token FROM taken) AS token,
              (SELECT ceil(extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint
               FROM memory_summary_leases WHERE tenant = $1 AND session_id = $2) AS remaining_ms`,
      [ref.tenant, ref.sessionId, floor, this.#holderId, this.leaseMs],
    );
    const row = onlyRow(rows, "the lease statement");
    if (row.token === null) return { lease: null, retryAfterMs: Math.max(1, Number(row.remaining_ms ?? 1)) };
    const token = Number(row.token);
    const db = this.#db;
    const holder = this.#holderId;
    const leaseMs = this.leaseMs;
    return {
      lease: {
        token,
        extend: async () => {
          const result = await db.query(
            `UPDATE memory_summary_leases SET expires_at = clock_timestamp() + $5 * interval '1 millisecond'
             WHERE tenant = $1 AND session_id = $2 AND token = $3 AND holder = $4
               AND expires_at > clock_timestamp()
             RETURNING token`,
            [ref.tenant, ref.sessionId, token, holder, leaseMs],
          );
          return result.rows.length === 1;
        },
        release: async () => {
          await db.query(
            `UPDATE memory_summary_leases SET expires_at = clock_timestamp()
             WHERE tenant = $1 AND session_id = $2 AND token = $3 AND holder = $4`,
            [ref.tenant, ref.sessionId, token, holder],
          );
        },
      },
    };
  }
}
