import { ValidationError } from "../errors.js";

export interface GroupCommitOptions<Item, Result> {
  /** Commits `items` in one round trip; resolves with one result per item, in order. */
  commit(items: readonly Item[]): Promise<readonly Result[]>;
  /** How much of a batch an item takes (for example its message count). */
  weight(item: Item): number;
  /**
   * Batches in flight at once (default 4). Below it every item goes out at once, alone; at it,
   * items queue and leave together in the next batch, so a busier store gets fewer, larger
   * commits instead of a longer queue of single ones.
   */
  concurrency?: number;
  /** Most weight in one batch (default 1000); a heavier item still goes, alone. */
  maxBatchWeight?: number;
  /**
   * Whether a failed batch's error is every item's (an outage). Any other error fails only the
   * item that caused it: the batch's items are then committed one by one.
   */
  sharedFailure(error: unknown): boolean;
}

interface Pending<Item, Result> {
  item: Item;
  resolve(result: Result): void;
  reject(error: unknown): void;
}

/**
 * Group commit: concurrent writes share one statement and one transaction when the store is
 * busy. Each submitted item resolves only once its batch committed, so acknowledging after
 * `submit` still means durable.
 */
export class GroupCommit<Item, Result> {
  readonly #options: GroupCommitOptions<Item, Result>;
  readonly #concurrency: number;
  readonly #maxBatchWeight: number;
  readonly #queue: Pending<Item, Result>[] = [];
  #inFlight = 0;
  #batches = 0;
  #items = 0;

  constructor(options: GroupCommitOptions<Item, Result>) {
    const { concurrency = 4, maxBatchWeight = 1000 } = options;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
      throw new ValidationError("concurrency", "must be a positive integer");
    }
    if (!Number.isSafeInteger(maxBatchWeight) || maxBatchWeight < 1) {
      throw new ValidationError("maxBatchWeight", "must be a positive integer");
    }
    this.#options = options;
    this.#concurrency = concurrency;
    this.#maxBatchWeight = maxBatchWeight;
  }

  /** Resolves with the item's result once the batch carrying it committed. */
  submit(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#pump();
    });
  }

  /** Batches committed and the items they carried, since construction. */
  stats(): { batches: number; items: number } {
    return { batches: this.#batches, items: this.#items };
  }

  #pump(): void {
    while (this.#inFlight < this.#concurrency && this.#queue.length > 0) {
      this.#inFlight++;
      void this.#run(this.#takeBatch()).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }

  #takeBatch(): Pending<Item, Result>[] {
    let weight = 0;
    let count = 0;
    for (const pending of this.#queue) {
      const next = this.#options.weight(pending.item);
      // The first item always goes, whatever it weighs.
      if (count > 0 && weight + next > this.#maxBatchWeight) break;
      weight += next;
      count++;
    }
    return this.#queue.splice(0, count);
  }

  async #run(batch: Pending<Item, Result>[]): Promise<void> {
    let results: readonly Result[];
    try {
      results = await this.#options.commit(batch.map((pending) => pending.item));
    } catch (error) {
      if (batch.length === 1 || this.#options.sharedFailure(error)) {
        for (const pending of batch) pending.reject(error);
        return;
      }
      // One item broke the statement: the others must not fail with it. One by one, in this
      // batch's slot, so that the retry does not exceed the concurrency.
      for (const pending of batch) await this.#run([pending]);
      return;
    }
    this.#batches++;
    this.#items += batch.length;
    // `commit` answers one result per item, in order.
    // biome-ignore lint/style/noNonNullAssertion: the commit function's contract, checked by its tests
    for (const [index, pending] of batch.entries()) pending.resolve(results[index]!);
  }
}
