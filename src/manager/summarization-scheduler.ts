import type { SessionRef } from "../buffer/keys.js";
import type { Logger } from "../logger.js";
import { CircuitOpenError } from "../resilience/errors.js";
import type { FoldMode } from "./fold-plan.js";
import type { JobOutcome } from "./summarization-job.js";

export interface SchedulerOptions {
  /** Runs one job step for a session. */
  runJob(ref: SessionRef, mode: FoldMode, signal: AbortSignal): Promise<JobOutcome>;
  logger: Logger;
  /** Jobs running at once in this process (default 2). */
  concurrency?: number;
  /** First retry delay after a failure, in ms; doubles per failure (default 1000). */
  backoffBaseMs?: number;
  /** Longest retry delay, in ms (default 60000). */
  backoffMaxMs?: number;
  /** Failures in a row after which a session's job is dropped until its next write (default 8). */
  maxAttempts?: number;
  /** Told about every finished job step, for metrics. */
  onOutcome?(outcome: JobOutcome | { kind: "failed"; error: unknown }, elapsedMs: number): void;
  /** Longest a held write waits for its session's summarization, in ms (default 5000). */
  holdTimeoutMs?: number;
}

/** How a held write's wait ended. */
export type HoldOutcome = "caught_up" | "not_progressing" | "timeout";

interface Entry {
  ref: SessionRef;
  mode: FoldMode;
  state: "queued" | "running" | "waiting";
  /** Requested again while running: run once more after this step. */
  again: boolean;
  failures: number;
  timer?: NodeJS.Timeout;
  controller?: AbortController;
  /** Writes held until this session's summarization catches up or stops progressing. */
  holders: ((outcome: HoldOutcome) => void)[];
}

/** Counts of the scheduler's work, for stats and metrics. */
export interface SchedulerStats {
  queued: number;
  running: number;
  waiting: number;
  committed: number;
  failed: number;
  dropped: number;
  /** Writes held for their session's summarization (backpressure), and those that timed out. */
  held: number;
  holdTimeouts: number;
}

/**
 * Runs summarization off the request path: one entry per session (requests while one is queued
 * or running coalesce), a bounded number of jobs at once, exponential backoff with jitter after a
 * failure, and a wait for the lease when another process holds it.
 */
export class SummarizationScheduler {
  readonly #options: SchedulerOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #queue: string[] = [];
  readonly #idleWaiters: (() => void)[] = [];
  #running = 0;
  #closed = false;
  #committed = 0;
  #failed = 0;
  #dropped = 0;
  #held = 0;
  #holdTimeouts = 0;

  constructor(options: SchedulerOptions) {
    this.#options = options;
  }

  /** Asks for a job on the session; a `final` request upgrades a queued `trigger` one. */
  request(ref: SessionRef, mode: FoldMode = "trigger"): void {
    if (this.#closed) return;
    const key = keyOf(ref);
    const entry = this.#entries.get(key);
    if (entry) {
      if (mode === "final") entry.mode = "final";
      if (entry.state === "running") entry.again = true;
      return;
    }
    this.#entries.set(key, { ref, mode, state: "queued", again: false, failures: 0, holders: [] });
    this.#queue.push(key);
    this.#pump();
  }

  /** Jobs running now (a write on the embedded database yields to the event loop meanwhile). */
  get running(): number {
    return this.#running;
  }

  /**
   * Backpressure: resolves when the session's summarization has caught up (no step queued or
   * running), or stops progressing (a step failed, the summarizer's breaker is open, another
   * process holds the lease), or after `holdTimeoutMs`. Request a job first: without one queued
   * or running this resolves at once.
   */
  hold(ref: SessionRef): Promise<HoldOutcome> {
    const entry = this.#entries.get(keyOf(ref));
    if (!entry || entry.state === "waiting") return Promise.resolve("not_progressing");
    this.#held++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        entry.holders = entry.holders.filter((holder) => holder !== release);
        this.#holdTimeouts++;
        resolve("timeout");
      }, this.#options.holdTimeoutMs ?? 5000);
      const release = (outcome: HoldOutcome) => {
        clearTimeout(timer);
        resolve(outcome);
      };
      entry.holders.push(release);
    });
  }

  /**
   * Resolves when the session's job has caught up ("caught_up", also when none is queued) or
   * stopped progressing for now (waiting to retry, or given up): `hold` without its bound, and not
   * counted as backpressure. For callers that asked for the job themselves (bulk loads).
   */
  settled(ref: SessionRef): Promise<HoldOutcome> {
    const entry = this.#entries.get(keyOf(ref));
    if (!entry) return Promise.resolve("caught_up");
    if (entry.state === "waiting") return Promise.resolve("not_progressing");
    return new Promise((resolve) => entry.holders.push(resolve));
  }

  /** Resolves when no job is queued, running or waiting to retry. */
  waitForIdle(): Promise<void> {
    if (this.#entries.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  stats(): SchedulerStats {
    let queued = 0;
    let waiting = 0;
    for (const entry of this.#entries.values()) {
      if (entry.state === "queued") queued++;
      if (entry.state === "waiting") waiting++;
    }
    return {
      queued,
      running: this.#running,
      waiting,
      committed: this.#committed,
      failed: this.#failed,
      dropped: this.#dropped,
      held: this.#held,
      holdTimeouts: this.#holdTimeouts,
    };
  }

  /** Stops taking work, cancels retries, aborts running jobs and waits for them to stop. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const [key, entry] of this.#entries) {
      if (entry.state === "running") entry.controller?.abort();
      else {
        clearTimeout(entry.timer);
        this.#delete(key, entry);
      }
    }
    this.#queue.length = 0;
    await this.waitForIdle();
  }

  #pump(): void {
    const concurrency = this.#options.concurrency ?? 2;
    while (!this.#closed && this.#running < concurrency && this.#queue.length > 0) {
      const key = this.#queue.shift();
      if (key === undefined) break;
      const entry = this.#entries.get(key);
      if (entry?.state === "queued") void this.#run(key, entry);
    }
    this.#settleIdle();
  }

  async #run(key: string, entry: Entry): Promise<void> {
    entry.state = "running";
    entry.again = false;
    entry.controller = new AbortController();
    this.#running++;
    const started = performance.now();
    let outcome: JobOutcome | { kind: "failed"; error: unknown };
    try {
      outcome = await this.#options.runJob(entry.ref, entry.mode, entry.controller.signal);
    } catch (error) {
      outcome = { kind: "failed", error };
    }
    this.#running--;
    this.#options.onOutcome?.(outcome, performance.now() - started);

    if (this.#closed) {
      this.#delete(key, entry);
    } else if (outcome.kind === "failed" && outcome.error instanceof CircuitOpenError) {
      // The summarizer's breaker is open: wait for its trial instead of spending attempts.
      this.#wait(key, entry, Math.max(10, outcome.error.retryAfterMs));
    } else if (outcome.kind === "failed") {
      this.#failed++;
      entry.failures++;
      const maxAttempts = this.#options.maxAttempts ?? 8;
      const error = outcome.error;
      if (entry.failures >= maxAttempts) {
        this.#dropped++;
        this.#delete(key, entry);
        this.#options.logger.error(
          {
            session_id: entry.ref.sessionId,
            tenant: entry.ref.tenant,
            failures: entry.failures,
            error: String(error),
          },
          "summarization keeps failing; giving up until the session's next write",
        );
      } else {
        const delay = this.#backoff(entry.failures);
        this.#options.logger.warn(
          {
            session_id: entry.ref.sessionId,
            tenant: entry.ref.tenant,
            retry_in_ms: delay,
            error: String(error),
          },
          "summarization failed; the buffer is kept and the job retried",
        );
        this.#wait(key, entry, delay);
      }
    } else if (outcome.kind === "busy") {
      // Another process holds the lease: come back when it should be done or have expired.
      this.#wait(key, entry, Math.min(outcome.retryAfterMs + 10, this.#options.backoffMaxMs ?? 60_000));
    } else {
      if (outcome.kind === "committed") this.#committed++;
      entry.failures = 0;
      const again =
        entry.again || (outcome.kind === "committed" && outcome.more) || outcome.kind === "conflict";
      if (again) this.#enqueue(key, entry);
      else this.#delete(key, entry, "caught_up");
    }
    this.#pump();
  }

  #backoff(failures: number): number {
    const base = this.#options.backoffBaseMs ?? 1000;
    const max = this.#options.backoffMaxMs ?? 60_000;
    const exponential = Math.min(max, base * 2 ** (failures - 1));
    // Full jitter keeps many sessions that failed together from retrying together.
    return Math.round(exponential / 2 + (Math.random() * exponential) / 2);
  }

  #wait(key: string, entry: Entry, delayMs: number): void {
    entry.state = "waiting";
    // Holding a write any longer would not make the summary come sooner.
    releaseHolders(entry, "not_progressing");
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (this.#entries.get(key) === entry) this.#enqueue(key, entry);
    }, delayMs);
  }

  #enqueue(key: string, entry: Entry): void {
    entry.state = "queued";
    this.#queue.push(key);
    this.#pump();
  }

  #delete(key: string, entry: Entry, outcome: HoldOutcome = "not_progressing"): void {
    this.#entries.delete(key);
    releaseHolders(entry, outcome);
  }

  #settleIdle(): void {
    if (this.#entries.size > 0) return;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}

function keyOf(ref: SessionRef): string {
  return `${ref.tenant}\u0000${ref.sessionId}`;
}

function releaseHolders(entry: Entry, outcome: HoldOutcome): void {
  for (const release of entry.holders.splice(0)) release(outcome);
}
