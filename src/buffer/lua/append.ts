import { LuaScript } from "../../storage/lua-script.js";
import type { RedisConnection } from "../../storage/redis-client.js";
import type { BufferDefaults } from "../buffer-store.js";
import type { SessionKeys } from "../keys.js";
import { type BufferTotals, defaultsArgs, readTotals } from "./totals.js";

const script = new LuaScript(new URL("./append-5.lua", import.meta.url));

export interface AppendInput {
  /** Milliseconds since the epoch: the buffer's last update. */
  now: number;
  defaults: BufferDefaults;
  /** The session's generation in the transcript: a buffer of another one is a miss. */
  generation: string;
  /** Buffer entries (`toBufferEntry`) the transcript holds, in seq order. */
  entries: readonly string[];
}

/**
 * "ok": appended, the totals after it. "miss": nothing changed, rebuild from the transcript with
 * this epoch token. "outbox": nothing changed, writes of a database outage wait to be replayed.
 */
export type AppendReply =
  | { status: "ok"; totals: BufferTotals }
  | { status: "miss"; epoch: string }
  | { status: "outbox" };

/** Appends entries to the session's buffer if it is whole, proven and continues their seqs. */
export async function appendToBuffer(
  redis: RedisConnection,
  keys: SessionKeys,
  input: AppendInput,
): Promise<AppendReply> {
  const read = await script.run(
    redis,
    [keys.buffer, keys.meta, keys.config, keys.outbox, keys.epoch],
    [String(input.now), ...defaultsArgs(input.defaults), input.generation, ...input.entries],
  );
  const [status, items] = read.variant({ ok: 8, miss: 2, outbox: 1 });
  if (status === "ok") return { status, totals: readTotals(read, items) };
  if (status === "miss") return { status, epoch: read.string(items[1], "epoch") };
  return { status };
}
