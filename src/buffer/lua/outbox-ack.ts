import { LuaScript } from "../../storage/lua-script.js";
import type { RedisConnection } from "../../storage/redis-client.js";
import type { SessionKeys } from "../keys.js";

const script = new LuaScript(new URL("./outbox-ack-4.lua", import.meta.url));

/**
 * Removes replayed entries from the session's outbox; once it is empty, drops the provisional
 * buffer and moves the epoch. Returns how many entries are still pending.
 */
export async function ackOutbox(
  redis: RedisConnection,
  keys: SessionKeys,
  ids: readonly string[],
): Promise<number> {
  const read = await script.run(redis, [keys.outbox, keys.meta, keys.buffer, keys.epoch], ids);
  return read.integer(read.reply, "pending");
}
