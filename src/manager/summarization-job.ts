import type { SessionRef } from "../buffer/keys.js";
import { MemoryError } from "../errors.js";
import type { Logger } from "../logger.js";
import { errorCode } from "../resilience/transition-log.js";
import type { Transcript } from "../storage/transcript.js";
import type { Summarizer } from "../summarizer/index.js";
import type { LeaseManager } from "../summary/leases.js";
import type { SummaryStore } from "../summary/summary-store.js";
import type { SummaryRecord } from "../types.js";
import { type FoldMode, planFold } from "./fold-plan.js";
import { resolveStoredConfig, type SessionConfig } from "./session-config.js";

/** The summary a summarizer returned was over `max_summary_tokens` even after compression. */
export class SummaryOverBudgetError extends MemoryError {
  readonly code = "summary_over_budget";
}

/** The job lost its lease while the summarizer ran (it took longer than the lease). */
export class LeaseLostError extends MemoryError {
  readonly code = "lease_lost";
}

/** What one run of a job did. */
export type JobOutcome =
  | { kind: "committed"; summary: SummaryRecord; more: boolean; summarizerMs: number }
  | { kind: "nothing" }
  | { kind: "busy"; retryAfterMs: number }
  | { kind: "conflict" };

/** What the scheduler reports after each job step: its outcome, or the error that failed it. */
export type JobReport = JobOutcome | { kind: "failed"; error: unknown };

export interface SummarizationJobDependencies {
  transcript: Transcript;
  summaryStore: SummaryStore;
  leases: LeaseManager;
  summarizer: Summarizer;
  countTokens(text: string): number;
  /** The config every session starts from; a session's stored overrides apply over it. */
  defaults: Readonly<SessionConfig>;
  /** Most messages one job reads and folds (default 400). */
  maxInputMessages?: number;
  /** About the most tokens one job reads and folds (default 24000). */
  maxInputTokens?: number;
  /** Milliseconds between lease extensions (default: a third of the lease). */
  heartbeatMs: number;
  logger: Logger;
}

/**
 * One summarization step for one session: take the lease, read the oldest unsummarized messages
 * from the transcript, fold them with the previous summary, commit the version with its exact
 * range if the lease's fencing token and the coverage are still current, then publish it (which
 * trims exactly that range from the Redis buffer). A job that loses its lease commits nothing.
 */
export async function runSummarizationJob(
  deps: SummarizationJobDependencies,
  ref: SessionRef,
  mode: FoldMode,
  signal: AbortSignal,
): Promise<JobOutcome> {
  const held = await leaseAndRead(deps, ref);
  if ("retryAfterMs" in held) return { kind: "busy", retryAfterMs: held.retryAfterMs };
  const { lease, input } = held;
  const lost = new AbortController();
  const heartbeat = keepLease(lease, lost, deps.heartbeatMs);
  try {
    return await foldAndCommit(deps, ref, mode, { lease, input, signal, lost: lost.signal });
  } finally {
    clearInterval(heartbeat);
    // Unreleased, the lease expires after its TTL and the session's next job waits that long.
    await lease
      .release()
      .catch((error: unknown) =>
        deps.logger.warn(
          { tenant: ref.tenant, session: ref.sessionId, code: errorCode(error) },
          "could not release a summarization lease; it expires on its own",
        ),
      );
  }
}

type Lease = NonNullable<Awaited<ReturnType<LeaseManager["acquire"]>>["lease"]>;
type JobInput = Awaited<ReturnType<Transcript["readJobInput"]>>;

/** Takes the lease and reads the job's input under it, or says when to retry. */
async function leaseAndRead(
  deps: SummarizationJobDependencies,
  ref: SessionRef,
): Promise<{ lease: Lease; input: JobInput } | { retryAfterMs: number }> {
  const limits = { maxMessages: deps.maxInputMessages ?? 400, maxTokens: deps.maxInputTokens ?? 24_000 };
  let attempt = await deps.leases.acquire(ref, 0);
  if (!attempt.lease) return { retryAfterMs: attempt.retryAfterMs };
  // Read under the lease, so that no other job commits between this read and this job's commit.
  let input = await deps.transcript.readJobInput(ref, limits);
  if (attempt.lease.token <= input.fencingToken) {
    // The lease store lost its counter (a Redis restart without persistence): take a token above
    // every committed one, or a commit of this job would be refused as stale.
    await attempt.lease.release();
    attempt = await deps.leases.acquire(ref, input.fencingToken);
    if (!attempt.lease) return { retryAfterMs: attempt.retryAfterMs };
    input = await deps.transcript.readJobInput(ref, limits);
  }
  return { lease: attempt.lease, input };
}

/** Extends the lease every `heartbeatMs`; aborts `lost` once the job cannot prove it holds it. */
function keepLease(lease: Lease, lost: AbortController, heartbeatMs: number): NodeJS.Timeout {
  const heartbeat = setInterval(() => {
    lease.extend().then(
      (held) => {
        if (!held) lost.abort(new LeaseLostError("the summarizer lease expired while the job ran"));
      },
      () => {
        // Lease store unreachable: the job cannot prove it still holds the lease.
        lost.abort(new LeaseLostError("the summarizer lease could not be extended"));
      },
    );
  }, heartbeatMs);
  heartbeat.unref();
  return heartbeat;
}

/** Folds the oldest unsummarized messages into a new version and commits it under the lease. */
async function foldAndCommit(
  deps: SummarizationJobDependencies,
  ref: SessionRef,
  mode: FoldMode,
  job: { lease: Lease; input: JobInput; signal: AbortSignal; lost: AbortSignal },
): Promise<JobOutcome> {
  const { input, lease, lost } = job;
  const config = resolveStoredConfig(deps.defaults, input.configOverrides);
  const coveredSeq = input.summary?.last_seq ?? 0;
  const windowIsComplete = (input.messages.at(-1)?.seq ?? coveredSeq) >= input.lastSeq;
  const foldCount = planFold(input.messages, windowIsComplete, config, mode);
  const folded = input.messages.slice(0, foldCount);
  const lastFolded = folded.at(-1);
  if (!lastFolded || input.generation === null) return { kind: "nothing" };
  const result = await deps.summarizer.summarize({
    previousSummary: input.summary?.summary_text ?? null,
    messages: folded,
    maxSummaryTokens: config.max_summary_tokens,
    countTokens: deps.countTokens,
    signal: AbortSignal.any([job.signal, lost]),
  });
  // Only a lost lease stops a finished fold from committing; a shutdown lets it commit.
  if (lost.aborted) throw lost.reason;
  const tokens = deps.countTokens(result.text);
  if (tokens > config.max_summary_tokens) {
    throw new SummaryOverBudgetError(`summary has ${tokens} tokens, budget ${config.max_summary_tokens}`);
  }
  const summary = await deps.summaryStore.commit(ref, {
    summaryText: result.text,
    tokens,
    previousLastSeq: coveredSeq,
    lastSeq: lastFolded.seq,
    fencingToken: lease.token,
    generation: input.generation,
    metadata: {
      summarizer: result.summarizer,
      model: result.model,
      input_tokens: result.inputTokens,
      output_tokens: result.outputTokens,
      latency_ms: Math.round(result.latencyMs),
      merged: result.merged,
      messages: folded.length,
      mode,
    },
  });
  if (!summary) return { kind: "conflict" };
  // What is left in the window decides whether another step is due; a cut window always has more.
  const more = !windowIsComplete || planFold(input.messages.slice(foldCount), true, config, "trigger") > 0;
  return { kind: "committed", summary, more, summarizerMs: result.latencyMs };
}
