import type { SessionKeys } from "../../buffer/keys.js";
import { LuaScript } from "../../storage/lua-script.js";
import type { RedisConnection } from "../../storage/redis-client.js";

const script = new LuaScript(new URL("./extend-lease-1.lua", import.meta.url));

/**
 * Extends the lease `value` ("<token>:<holder>") by `leaseMs`, only while it is still held;
 * false when it was lost (expired, or taken by another holder).
 */
export async function extendLease(
  redis: RedisConnection,
  keys: SessionKeys,
  value: string,
  leaseMs: number,
): Promise<boolean> {
  const read = await script.run(redis, [keys.lease], [value, String(leaseMs)]);
  return read.flag();
}
