import { LuaScript } from "../../storage/lua-script.js";
import type { RedisConnection } from "../../storage/redis-client.js";
import type { SessionKeys } from "../keys.js";
import { contextReply, type ReadReply } from "./read.js";

const script = new LuaScript(new URL("./read-replica-5.lua", import.meta.url));

/** What a replica answered: read-5.lua's "ok", or why to read from the primary instead. */
export type ReplicaReadReply =
  | Extract<ReadReply, { status: "ok" }>
  | { status: "miss" }
  | { status: "behind"; lastSeq: number };

/**
 * The read of `readBuffer` on a replica (EVALSHA_RO): proven by the primary's run id, and
 * "behind" when the replica's buffer ends before `minSeq` (0: any).
 */
export async function readBufferOnReplica(
  redis: RedisConnection,
  keys: SessionKeys,
  newest: number | "all",
  proof: { primaryRunId: string; minSeq: number },
): Promise<ReplicaReadReply> {
  const read = await script.run(
    redis,
    [keys.buffer, keys.meta, keys.config, keys.summary, keys.epoch],
    [String(newest), proof.primaryRunId, String(proof.minSeq)],
    { readonly: true },
  );
  const [status, items] = read.variant({ ok: 6, miss: 1, behind: 2 });
  if (status === "miss") return { status };
  if (status === "behind") return { status, lastSeq: read.integer(items[1], "last seq") };
  return contextReply(read, items);
}
