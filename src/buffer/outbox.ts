import type { RedisConnection } from "../storage/redis-client.js";
import { ReplyReader } from "../storage/redis-reply.js";
import type { TranscriptEntry } from "../storage/transcript.js";
import type { ChatMessage } from "../types.js";

/**
 * A session's outbox: a Redis STREAM of writes accepted while PostgreSQL was away, each with the
 * fields `entry` ("<tokens>:<estimated 0|1>:<message json>"), `key` (its idempotency key) and
 * `gen` (the session's generation, "-" when unknown). outbox-append-4.lua writes it; the
 * replay reads it here.
 */

/** A transcript entry whose idempotency key is set, so that its replay is exactly once. */
export type OutboxWrite = TranscriptEntry & { idempotencyKey: string };

/** One outbox entry: its stream id, the transcript entry and the generation it was written in. */
export interface OutboxRecord {
  id: string;
  entry: OutboxWrite;
  /** Null for entries written before generations were recorded. */
  generation: string | null;
}

/** ARGV pair of outbox-append-4.lua for one write: the entry without its seq, and its key. */
export function outboxArgs(write: OutboxWrite): [string, string] {
  return [`${write.tokens}:${write.tokensEstimated ? 1 : 0}:${write.json}`, write.idempotencyKey];
}

/** The oldest `count` entries of the outbox stream at `key` (XRANGE). */
export async function readOutbox(
  redis: RedisConnection,
  key: string,
  count: number,
): Promise<OutboxRecord[]> {
  const read = new ReplyReader(
    "XRANGE",
    await redis.send(["XRANGE", key, "-", "+", "COUNT", String(count)], { key }),
  );
  return read.array(read.reply, "the reply").map((item, index) => {
    const [id, fields] = read.tuple(2, item, `entry ${index}`);
    return outboxRecord(
      read.string(id, `entry ${index} id`),
      read.fields(fields, `entry ${index} fields`),
      read,
    );
  });
}

function outboxRecord(id: string, fields: Record<string, string>, read: ReplyReader): OutboxRecord {
  const entry = read.string(fields.entry, "the field entry");
  const first = entry.indexOf(":");
  const second = entry.indexOf(":", first + 1);
  const json = entry.slice(second + 1);
  return {
    id,
    entry: {
      message: JSON.parse(json) as ChatMessage,
      json,
      tokens: Number(entry.slice(0, first)),
      tokensEstimated: entry.slice(first + 1, second) === "1",
      idempotencyKey: read.string(fields.key, "the field key"),
    },
    generation: fields.gen === undefined || fields.gen === "-" ? null : fields.gen,
  };
}
