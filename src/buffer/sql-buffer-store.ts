import type { TranscriptEntry } from "../storage/transcript.js";
import {
  type AppendOutcome,
  type BufferState,
  BufferStore,
  outcomeFromAppendTotals,
  outcomeFromState,
  stateFromSnapshot,
} from "./buffer-store.js";
import type { SessionRef } from "./keys.js";

/**
 * The buffer served from the system of record alone: the same caps applied to the transcript in
 * one query. Used when no Redis is configured and while Redis is unavailable; its answers equal
 * the Redis store's.
 */
export class SqlBufferStore extends BufferStore {
  readonly source = "database" as const;

  forTenant(tenant: string): SqlBufferStore {
    return new SqlBufferStore({ ...this.deps, tenant });
  }

  async appendEntries(ref: SessionRef, entries: readonly TranscriptEntry[]): Promise<AppendOutcome> {
    const { defaults } = this.deps;
    const caps = { maxMessages: defaults.maxMessages, maxTokens: defaults.maxTokens };
    // The append answers the buffer's totals itself unless a concurrent writer of the session
    // committed while it started (or every message was a duplicate): then they are read after.
    const { seqs, totals } = await this.deps.transcript.appendEntries(ref, entries, caps);
    if (totals) return outcomeFromAppendTotals(seqs, totals, defaults);
    return outcomeFromState(seqs, await this.readState(ref, 0));
  }

  async readState(ref: SessionRef, limit?: number): Promise<BufferState> {
    const { maxMessages, maxTokens } = this.deps.defaults;
    // Only the messages asked for are read whole: a write's answer (limit 0) reads none.
    const snapshot = await this.deps.transcript.readSnapshot(ref, { maxMessages, maxTokens }, limit);
    return stateFromSnapshot(snapshot, this.deps.defaults, "database");
  }

  async clearRef(ref: SessionRef): Promise<void> {
    await this.deps.transcript.raiseBufferFloor(ref);
  }
}
