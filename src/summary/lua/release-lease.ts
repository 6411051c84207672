import type { SessionKeys } from "../../buffer/keys.js";
import { LuaScript } from "../../storage/lua-script.js";
import type { RedisConnection } from "../../storage/redis-client.js";

const script = new LuaScript(new URL("./release-lease-1.lua", import.meta.url));

/** Releases the lease `value` ("<token>:<holder>") only while it is still held; true when released. */
export async function releaseLease(
  redis: RedisConnection,
  keys: SessionKeys,
  value: string,
): Promise<boolean> {
  const read = await script.run(redis, [keys.lease], [value]);
  return read.flag();
}
