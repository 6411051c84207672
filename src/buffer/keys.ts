/** Which session of which tenant. Every key in Redis and PostgreSQL is built from both. */
export interface SessionRef {
  tenant: string;
  sessionId: string;
}

/** The Redis keys of one session. */
export interface SessionKeys {
  /** LIST of buffer entries, oldest first. */
  buffer: string;
  /** HASH of the buffer's running totals and the covered summary range. */
  meta: string;
  /** HASH of the session's config overrides, cached from PostgreSQL. */
  config: string;
  /** HASH of the current summary, cached from PostgreSQL. */
  summary: string;
  /** STRING holding the summarizer lease: "<fencing token>:<holder>". */
  lease: string;
  /** STRING counter the fencing tokens are drawn from. */
  fence: string;
  /** STREAM of writes accepted while PostgreSQL was away, replayed into the transcript. */
  outbox: string;
  /**
   * STRING that changes on every invalidation of the session's Redis copy (erase, config change,
   * drop): a rebuild installs its snapshot only if the epoch it read before the snapshot is
   * still current.
   */
  epoch: string;
}

/**
 * Keys share one hash tag, `{<tenant>:<session>}`, so one Lua script can touch them atomically
 * and Redis Cluster keeps them on one slot. Tenants are restricted to `[A-Za-z0-9_.-]`; in the
 * session id the characters that would end the tag or blur the tenant boundary are
 * percent-encoded, so two different (tenant, session) pairs never share a key.
 */
export function sessionKeys(prefix: string, ref: SessionRef): SessionKeys {
  const tag = `${prefix}:{${sessionTag(ref)}}`;
  return {
    buffer: `${tag}:buf`,
    meta: `${tag}:meta`,
    config: `${tag}:cfg`,
    summary: `${tag}:sum`,
    lease: `${tag}:lease`,
    fence: `${tag}:fence`,
    outbox: `${tag}:outbox`,
    epoch: `${tag}:epoch`,
  };
}

/** What is between the braces of the session's keys: what Redis Cluster and shards route by. */
export function sessionTag(ref: SessionRef): string {
  return `${ref.tenant}:${ref.sessionId.replace(/[%{}:]/g, encodeKeyChar)}`;
}

/**
 * The prefix of a session's keys: the configured one, or with Redis shards the configured one
 * and the epoch since which the session's shard has been its home (src/storage/redis-shards.ts).
 */
export type KeyPlacement = (ref: SessionRef) => string;

export function fixedPlacement(prefix: string): KeyPlacement {
  return () => prefix;
}

function encodeKeyChar(char: string): string {
  return `%${char.charCodeAt(0).toString(16).toUpperCase()}`;
}

/** The session a key belongs to, for keys made by `sessionKeys` with the same prefix. */
export function sessionFromKey(prefix: string, key: string): SessionRef | null {
  const match = /^(.*):\{([A-Za-z0-9_.-]+):([^}]*)\}:[a-z]+$/.exec(key);
  const [, keyPrefix, tenant, id] = match ?? [];
  if (keyPrefix !== prefix || tenant === undefined || id === undefined) return null;
  return { tenant, sessionId: decodeURIComponent(id) };
}
