import type { ReplyReader } from "../../storage/redis-reply.js";
import type { BufferDefaults } from "../buffer-store.js";

/** The buffer after a write: its running totals and the settings in force for the session. */
export interface BufferTotals {
  messageCount: number;
  totalTokens: number;
  /** Seq of the oldest buffered entry, 0 when the buffer is empty. */
  firstSeq: number;
  /** The session's highest seq. */
  lastSeq: number;
  summaryTriggerTokens: number;
  /** The highest seq the current summary covers, 0 without one. */
  coveredSeq: number;
  maxMessages: number;
}

/** ARGV[2..5] of the scripts that write the buffer: what a session without overrides gets. */
export function defaultsArgs(defaults: BufferDefaults): string[] {
  const { ttlSeconds, maxMessages, maxTokens, summaryTriggerTokens } = defaults;
  return [String(ttlSeconds), String(maxMessages), String(maxTokens), String(summaryTriggerTokens)];
}

/** Items 1 to 7 of the "ok" reply of append-5.lua and outbox-append-4.lua. */
export function readTotals(read: ReplyReader, items: readonly unknown[]): BufferTotals {
  return {
    messageCount: read.integer(items[1], "message_count"),
    totalTokens: read.integer(items[2], "total_tokens"),
    firstSeq: read.integer(items[3], "first_seq"),
    lastSeq: read.integer(items[4], "last_seq"),
    summaryTriggerTokens: read.integer(items[5], "summary_trigger_tokens"),
    coveredSeq: read.integer(items[6], "covered_seq"),
    maxMessages: read.integer(items[7], "max_buffer_messages"),
  };
}
