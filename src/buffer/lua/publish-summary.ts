import { LuaScript } from "../../storage/lua-script.js";
import type { RedisConnection } from "../../storage/redis-client.js";
import type { SummaryRecord } from "../../types.js";
import type { SessionKeys } from "../keys.js";

const script = new LuaScript(new URL("./publish-summary-4.lua", import.meta.url));

export interface PublishSummaryInput {
  summary: SummaryRecord;
  /** The session's generation the summary belongs to: never cached into another one. */
  generation: string;
  /** Seconds the cached copy lives. */
  cacheTtlSeconds: number;
}

/**
 * "published": cached as current, `trimmed` entries it covers left the buffer. "stale": nothing
 * changed (a newer version is cached, or the buffer is another generation's or not proven).
 */
export type PublishSummaryReply = { status: "published"; trimmed: number } | { status: "stale" };

/** Caches a committed summary version and trims the range it covers from the buffer, atomically. */
export async function publishSummaryAndTrim(
  redis: RedisConnection,
  keys: SessionKeys,
  input: PublishSummaryInput,
): Promise<PublishSummaryReply> {
  const { summary } = input;
  const read = await script.run(
    redis,
    [keys.buffer, keys.meta, keys.config, keys.summary],
    [
      String(input.cacheTtlSeconds),
      input.generation,
      String(summary.version),
      summary.summary_text,
      String(summary.first_seq),
      String(summary.last_seq),
      String(summary.tokens),
      summary.created_at,
      JSON.stringify(summary.metadata),
    ],
  );
  const [status, items] = read.variant({ published: 2, stale: 2 });
  return status === "stale" ? { status } : { status, trimmed: read.integer(items[1], "trimmed") };
}
