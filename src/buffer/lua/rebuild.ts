import { LuaScript } from "../../storage/lua-script.js";
import type { RedisConnection } from "../../storage/redis-client.js";
import type { SessionKeys } from "../keys.js";

const script = new LuaScript(new URL("./rebuild-6.lua", import.meta.url));

/** A transcript snapshot to install as the session's buffer. */
export interface RebuildInput {
  /** The epoch token read before the snapshot: an invalidation since then refuses it. */
  epoch: string;
  /**
   * Milliseconds since the epoch recorded as the buffer's last update: the transcript's, so that
   * a rebuild does not make an idle session look recently used (ARGV[2], "now" in the script).
   */
  lastUpdatedMs: number;
  /** The session's buffer TTL, its override included. */
  ttlSeconds: number;
  /** The transcript's last seq in the snapshot. */
  lastSeq: number;
  /** The seq the snapshot's latest summary covers (0 without one). */
  coveredSeq: number;
  generation: string;
  /** The session's config overrides, read with the snapshot. */
  configOverrides: Readonly<Record<string, number>>;
  /** Buffer entries (`storedToBufferEntry`), in seq order, within the caps. */
  entries: readonly string[];
}

/**
 * "rebuilt": installed. "kept": the buffer was already at or past the snapshot. "fenced": nothing
 * changed, the snapshot may predate an invalidation (serve it, never cache it).
 */
export type RebuildStatus = "rebuilt" | "kept" | "fenced";

/** Replaces the session's buffer with the snapshot unless an invalidation or a newer buffer wins. */
export async function rebuildBuffer(
  redis: RedisConnection,
  keys: SessionKeys,
  input: RebuildInput,
): Promise<RebuildStatus> {
  const read = await script.run(
    redis,
    [keys.buffer, keys.meta, keys.config, keys.summary, keys.outbox, keys.epoch],
    [
      input.epoch,
      String(input.lastUpdatedMs),
      String(input.ttlSeconds),
      String(input.lastSeq),
      String(input.coveredSeq),
      input.generation,
      JSON.stringify(input.configOverrides),
      ...input.entries,
    ],
  );
  return read.variant({ rebuilt: 1, kept: 1, fenced: 1 })[0];
}
