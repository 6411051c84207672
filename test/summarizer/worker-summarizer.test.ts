import { readdirSync, readFileSync } from "node:fs";
import type { Worker, WorkerOptions } from "node:worker_threads";
import { afterAll, describe, expect, it } from "vitest";
import { chatTurn, seededRandom } from "../../src/cli/chat-workload.js";
import { ValidationError } from "../../src/errors.js";
import {
  ExtractiveSummarizer,
  type SummarizeRequest,
  type SummarizeResult,
  SummarizerAbortedError,
  SummarizerWorkerError,
  WorkerSummarizer,
} from "../../src/summarizer/index.js";
import { WORKER_NICE } from "../../src/summarizer/worker-summarizer.js";
import { TokenCounter } from "../../src/tokens/index.js";
import type { StoredMessage } from "../../src/types.js";

const tokenCounter = new TokenCounter({ model: "gpt-4o" });
const countTokens = (text: string) => tokenCounter.countTokens(text);

/** `turns` chat turns of the benchmark's workload, as stored messages. */
function conversation(seed: number, turns: number): StoredMessage[] {
  const random = seededRandom(seed);
  return Array.from({ length: turns }, (_, turn) => chatTurn(random, turn)).flatMap((pair, turn) =>
    pair.map((message, index) => ({
      ...message,
      seq: turn * 2 + index + 1,
      tokens: countTokens(String(message.content)),
      timestamp: 1_700_000_000 + turn * 2 + index,
    })),
  );
}

function request(messages: StoredMessage[], overrides: Partial<SummarizeRequest> = {}): SummarizeRequest {
  return { previousSummary: null, messages, maxSummaryTokens: 400, countTokens, ...overrides };
}

/** The nice value in a /proc stat file (its 19th field). */
function niceOf(statFile: string): number {
  const stat = readFileSync(statFile, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
}

/** Threads of this process running at `nice`. */
function threadsAtNice(nice: number): number {
  return readdirSync("/proc/self/task").filter((task) => {
    try {
      return niceOf(`/proc/self/task/${task}/stat`) === nice;
    } catch (error) {
      // A thread that ended between the listing and the read (a helper thread, a closed worker's)
      // runs at no priority any more.
      if (["ENOENT", "ESRCH"].includes((error as NodeJS.ErrnoException).code ?? "")) return false;
      throw error;
    }
  }).length;
}

const opened: WorkerSummarizer[] = [];
function open(summarizer = new WorkerSummarizer({ model: "gpt-4o" })): WorkerSummarizer {
  opened.push(summarizer);
  return summarizer;
}

afterAll(async () => {
  for (const summarizer of opened) await summarizer.close();
});

describe("WorkerSummarizer", () => {
  it.runIf(process.platform === "linux")(
    "runs its thread at a lower priority than the event loop",
    async () => {
      const before = threadsAtNice(WORKER_NICE);
      const callerNice = niceOf("/proc/thread-self/stat");
      const threaded = new WorkerSummarizer({ model: "gpt-4o" });
      await threaded.summarize(request(conversation(4, 3)));
      expect(threadsAtNice(WORKER_NICE)).toBe(before + 1);
      // Only the worker's thread: the caller's keeps its priority.
      expect(niceOf("/proc/thread-self/stat")).toBe(callerNice);
      await threaded.close();
      expect(threadsAtNice(WORKER_NICE)).toBe(before);
    },
  );

  it("writes the same summaries as the extractive summarizer in this thread, counted the same", async () => {
    const threaded = open();
    const inProcess = new ExtractiveSummarizer();
    let previous: string | null = null;
    for (const seed of [1, 2, 3]) {
      const messages = conversation(seed, 12);
      const [expected, actual]: SummarizeResult[] = await Promise.all([
        inProcess.summarize(request(messages, { previousSummary: previous })),
        threaded.summarize(request(messages, { previousSummary: previous })),
      ]);
      expect(actual).toMatchObject({
        text: expected.text,
        summarizer: "extractive",
        model: null,
        inputTokens: expected.inputTokens,
        outputTokens: expected.outputTokens,
        merged: expected.merged,
      });
      expect(actual.latencyMs).toBeGreaterThan(0);
      previous = actual.text;
    }
  });

  it("answers concurrent calls each with its own summary", async () => {
    const threaded = open();
    const inputs = [4, 5, 6, 7].map((seed) => conversation(seed, 6));
    const results = await Promise.all(inputs.map((messages) => threaded.summarize(request(messages))));
    const expected = await Promise.all(
      inputs.map((messages) => new ExtractiveSummarizer().summarize(request(messages))),
    );
    expect(results.map((result) => result.text)).toEqual(expected.map((result) => result.text));
  });

  it("rejects a bad request before the worker sees it, and an unknown model at construction", async () => {
    const threaded = open();
    await expect(threaded.summarize(request([], { maxSummaryTokens: 0 }))).rejects.toBeInstanceOf(
      ValidationError,
    );
    expect(() => new WorkerSummarizer({ model: "no-such-model" })).toThrow(ValidationError);
  });

  it("fails an aborted call with SummarizerAbortedError and keeps serving", async () => {
    const threaded = open();
    const controller = new AbortController();
    const call = threaded.summarize(request(conversation(8, 4), { signal: controller.signal }));
    controller.abort(new Error("job cancelled"));
    const error = await call.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SummarizerAbortedError);
    expect((error as SummarizerAbortedError).cause).toEqual(new Error("job cancelled"));
    const next = await threaded.summarize(request(conversation(8, 4)));
    expect(next.text.length).toBeGreaterThan(0);
  });

  it("fails calls in flight when closed, and every call after", async () => {
    const threaded = open();
    const inFlight = expect(threaded.summarize(request(conversation(9, 4)))).rejects.toBeInstanceOf(
      SummarizerAbortedError,
    );
    await threaded.close();
    await inFlight;
    await expect(threaded.summarize(request(conversation(9, 4)))).rejects.toBeInstanceOf(
      SummarizerAbortedError,
    );
  });

  it("fails the calls of a worker that dies with SummarizerWorkerError, then starts a new one", async () => {
    const started: Worker[] = [];
    class Observed extends WorkerSummarizer {
      protected override createWorker(entry: string, options: WorkerOptions): Worker {
        const worker = super.createWorker(entry, options);
        started.push(worker);
        return worker;
      }
    }
    const threaded = open(new Observed({ model: "gpt-4o" }));
    const calls = [1, 2].map((seed) => threaded.summarize(request(conversation(seed, 4))));
    // The thread ends before it can answer (it is still loading).
    await started[0]!.terminate();
    for (const call of calls) {
      const error = await call.catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(SummarizerWorkerError);
      expect((error as SummarizerWorkerError).retryable).toBe(true);
    }
    const after = await threaded.summarize(request(conversation(1, 4)));
    expect(after.text).toBe((await new ExtractiveSummarizer().summarize(request(conversation(1, 4)))).text);
    expect(started).toHaveLength(2);
  });
});
