/**
 * Migration phase `gradual`: a sample of context reads is followed, off the request path, by the
 * comparison `legacy verify` makes for that session (messages in order, then the context). Each
 * divergence is counted by kind and logged with the session id, so that the cut-over waits until
 * none are seen.
 */
import type { Logger } from "../logger.js";
import type { MemoryManager } from "../manager/memory-manager.js";
import type { Database } from "../storage/database.js";
import type { LegacySessionStore } from "./legacy-store.js";
import { type DivergenceKind, verifyLegacySessions } from "./verify.js";

/** The metric's label values, one per divergence kind (a message count differs with one of them). */
export const DIVERGENCE_LABELS = [
  "missing_message",
  "extra_message",
  "different_content",
  "different_order",
  "context_differs",
] as const;
export type DivergenceLabel = (typeof DIVERGENCE_LABELS)[number];

const LABEL_OF: Partial<Record<DivergenceKind, DivergenceLabel>> = {
  "missing message": "missing_message",
  "extra message": "extra_message",
  "different content": "different_content",
  "different order": "different_order",
  "context differs": "context_differs",
};

export interface ConsistencyCheckOptions {
  legacy: LegacySessionStore;
  database: Database;
  /** Fraction of context reads checked, 0 to 1. */
  sampleRate: number;
  timeZone: string;
  logger?: Logger;
  /** Whether the session still has legacy writes on their way (then it is not compared). */
  pending(sessionId: string): Promise<boolean>;
}

export class ConsistencyCheck {
  readonly #options: ConsistencyCheckOptions;
  readonly #counts = new Map<DivergenceLabel, number>(DIVERGENCE_LABELS.map((label) => [label, 0]));
  readonly #running = new Set<Promise<void>>();
  #closed = false;

  constructor(options: ConsistencyCheckOptions) {
    this.#options = options;
  }

  /** Divergences seen since the process started, by kind. */
  counts(): ReadonlyMap<DivergenceLabel, number> {
    return this.#counts;
  }

  /** Called on a context read: maybe schedules a comparison, never waits for it. */
  sample(memory: MemoryManager, sessionId: string): void {
    if (this.#closed || Math.random() >= this.#options.sampleRate) return;
    const run = new Promise<void>((resolve) => setImmediate(resolve))
      .then(async () => {
        await this.check(memory, sessionId);
      })
      .catch((error: unknown) => {
        this.#options.logger?.warn(
          { session_id: sessionId, err: String(error) },
          "consistency check failed to run",
        );
      })
      .finally(() => this.#running.delete(run));
    this.#running.add(run);
  }

  /** Compares one session now; returns the labels of the divergences found (counted and logged). */
  async check(memory: MemoryManager, sessionId: string): Promise<DivergenceLabel[]> {
    // Writes still queued for the legacy store would read as divergences that are not.
    if (await this.#options.pending(sessionId)) return [];
    const { legacy, database, timeZone, logger } = this.#options;
    const found: DivergenceLabel[] = [];
    const result = await verifyLegacySessions({ legacy, memory, database, timeZone, sessionId });
    if (result.sessions === 0) {
      // No legacy row: every message the memory holds is missing from the legacy store.
      if ((await memory.getContext(sessionId)).message_count > 0) found.push("missing_message");
    }
    for (const verdict of result.diverging) {
      for (const divergence of verdict.divergences) {
        const label = LABEL_OF[divergence.kind];
        if (label) found.push(label);
      }
    }
    for (const label of found) {
      this.#counts.set(label, (this.#counts.get(label) ?? 0) + 1);
      logger?.warn({ session_id: sessionId, kind: label }, "the legacy store diverges from the memory");
    }
    return found;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#running]);
  }
}
