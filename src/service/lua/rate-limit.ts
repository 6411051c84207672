import { LuaScript } from "../../storage/lua-script.js";
import type { RedisConnection } from "../../storage/redis-client.js";

const script = new LuaScript(new URL("./rate-limit-1.lua", import.meta.url));

/** A shared window after an instance added its requests. */
export interface RateWindow {
  /** Requests counted in the window by every instance, the added ones included. */
  count: number;
  /** Milliseconds until the window ends. */
  ttlMs: number;
}

/** Adds `added` requests to the fixed window at `key`, starting its `windowMs` timer on the first. */
export async function addToRateWindow(
  redis: RedisConnection,
  key: string,
  input: { windowMs: number; added: number },
): Promise<RateWindow> {
  const read = await script.run(redis, [key], [String(input.windowMs), String(input.added)]);
  const [count, ttlMs] = read.tuple(2);
  return { count: read.integer(count, "count"), ttlMs: read.integer(ttlMs, "ttl") };
}
