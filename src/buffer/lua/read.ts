import { LuaScript } from "../../storage/lua-script.js";
import type { RedisConnection } from "../../storage/redis-client.js";
import type { ReplyReader } from "../../storage/redis-reply.js";
import type { SessionKeys } from "../keys.js";

const script = new LuaScript(new URL("./read-5.lua", import.meta.url));

/**
 * "ok": the session's hashes (field to value), its newest entries and the buffer's time to live
 * in ms (negative without one). "miss": the buffer is not whole and proven, rebuild it from the
 * transcript with this epoch token.
 */
export type ReadReply =
  | {
      status: "ok";
      meta: Record<string, string>;
      config: Record<string, string>;
      summary: Record<string, string>;
      entries: string[];
      pttlMs: number;
    }
  | { status: "miss"; epoch: string };

/** Reads everything a context needs in one round trip; `newest`: how many entries (0 for none). */
export async function readBuffer(
  redis: RedisConnection,
  keys: SessionKeys,
  newest: number | "all",
): Promise<ReadReply> {
  const read = await script.run(
    redis,
    [keys.buffer, keys.meta, keys.config, keys.summary, keys.epoch],
    [String(newest)],
  );
  const [status, items] = read.variant({ ok: 6, miss: 2 });
  if (status === "miss") return { status, epoch: read.string(items[1], "epoch") };
  return contextReply(read, items);
}

/** The "ok" reply both read scripts give (`context_reply` in includes/buffer.lua). */
export function contextReply(read: ReplyReader, items: unknown[]): Extract<ReadReply, { status: "ok" }> {
  return {
    status: "ok",
    meta: read.fields(items[1], "meta"),
    config: read.fields(items[2], "config"),
    summary: read.fields(items[3], "summary"),
    entries: read.strings(items[4], "entries"),
    pttlMs: read.integer(items[5], "pttl"),
  };
}
