import { LuaScript } from "../../storage/lua-script.js";
import type { RedisConnection } from "../../storage/redis-client.js";
import type { BufferDefaults } from "../buffer-store.js";
import type { SessionKeys } from "../keys.js";
import { type OutboxWrite, outboxArgs } from "../outbox.js";
import { type BufferTotals, defaultsArgs, readTotals } from "./totals.js";

const script = new LuaScript(new URL("./outbox-append-4.lua", import.meta.url));

export interface OutboxAppendInput {
  /** Milliseconds since the epoch: the buffer's last update. */
  now: number;
  defaults: BufferDefaults;
  writes: readonly OutboxWrite[];
}

/**
 * "ok": appended with provisional seqs, the totals after it. "missing": nothing changed, the
 * buffer is not whole and proven in Redis (there is no seq to continue from).
 */
export type OutboxAppendReply = { status: "ok"; totals: BufferTotals } | { status: "missing" };

/** Appends writes to the buffer with provisional seqs and to the session's outbox, atomically. */
export async function appendWithOutbox(
  redis: RedisConnection,
  keys: SessionKeys,
  input: OutboxAppendInput,
): Promise<OutboxAppendReply> {
  const read = await script.run(
    redis,
    [keys.buffer, keys.meta, keys.config, keys.outbox],
    [String(input.now), ...defaultsArgs(input.defaults), ...input.writes.flatMap(outboxArgs)],
  );
  const [status, items] = read.variant({ ok: 8, missing: 1 });
  return status === "ok" ? { status, totals: readTotals(read, items) } : { status };
}
