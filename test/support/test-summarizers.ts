import {
  ExtractiveSummarizer,
  type SummarizeRequest,
  type SummarizeResult,
  type Summarizer,
} from "../../src/summarizer/index.js";

/** One summarizer call: when it ran and which seqs it was given. */
export interface CallRecord {
  startedAt: number;
  endedAt: number;
  firstSeq: number;
  lastSeq: number;
  failed: boolean;
}

export interface FlakySummarizerOptions {
  /** Milliseconds each call takes (default 0). */
  delayMs?: number;
  /** Every n-th call fails (default: never). */
  failEvery?: number;
  /** Calls before this number fail, then all succeed (default 0). */
  failFirst?: number;
}

/**
 * The real extractive summarizer behind a slow, failing front: for exercising retries, leases and
 * coverage with a summarizer that misbehaves the way a model endpoint does. Records every call.
 */
export class FlakySummarizer implements Summarizer {
  readonly name = "extractive" as const;
  readonly calls: CallRecord[] = [];
  readonly #inner = new ExtractiveSummarizer();
  readonly #options: FlakySummarizerOptions;
  #count = 0;

  constructor(options: FlakySummarizerOptions = {}) {
    this.#options = options;
  }

  async summarize(request: SummarizeRequest): Promise<SummarizeResult> {
    const number = ++this.#count;
    const record: CallRecord = {
      startedAt: performance.now(),
      endedAt: 0,
      firstSeq: request.messages[0]?.seq ?? 0,
      lastSeq: request.messages.at(-1)?.seq ?? 0,
      failed: false,
    };
    this.calls.push(record);
    try {
      if (this.#options.delayMs) await new Promise((resolve) => setTimeout(resolve, this.#options.delayMs));
      const { failEvery, failFirst = 0 } = this.#options;
      if (number <= failFirst || (failEvery !== undefined && number % failEvery === 0)) {
        record.failed = true;
        throw new Error(`summarizer call ${number} failed on purpose`);
      }
      return await this.#inner.summarize(request);
    } finally {
      record.endedAt = performance.now();
    }
  }
}
