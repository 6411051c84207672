import { LuaScript } from "../../storage/lua-script.js";
import type { RedisConnection } from "../../storage/redis-client.js";
import type { SessionKeys } from "../keys.js";

const script = new LuaScript(new URL("./invalidate-8.lua", import.meta.url));

/**
 * What an invalidation drops: "buffer" the buffer and its config cache (config change, cleared
 * buffer); "cache" every cached key of the session (summaries cleared, missed writes); "session"
 * everything, the outbox and the summarizer lease included (erase).
 */
export type Invalidation = "buffer" | "cache" | "session";

/** Drops what `what` makes wrong and moves the epoch; returns the new epoch token (0 for "session"). */
export async function invalidateSession(
  redis: RedisConnection,
  keys: SessionKeys,
  what: Invalidation,
): Promise<number> {
  const read = await script.run(
    redis,
    [keys.buffer, keys.meta, keys.config, keys.summary, keys.outbox, keys.lease, keys.fence, keys.epoch],
    [what],
  );
  return read.integer(read.reply, "epoch");
}
