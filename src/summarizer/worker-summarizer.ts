import { Worker, type WorkerOptions } from "node:worker_threads";
import { encodingForModel, shareVocabulary } from "../tokens/index.js";
import { workerEntry } from "../worker-url.js";
import { SummarizerAbortedError, type SummarizerError, SummarizerWorkerError } from "./errors.js";
import type { ExtractiveSummarizerOptions } from "./extractive-summarizer.js";
import type { SummarizeRequest, SummarizeResult, Summarizer } from "./summarizer.js";
import { validateSummarizeRequest } from "./summarizer.js";
import type { WorkerInit, WorkerReply, WorkerRequest } from "./summarizer-worker.js";

export interface WorkerSummarizerOptions {
  /**
   * Tokenizer model the worker counts with (default "gpt-4o"). It must be the model of the
   * `countTokens` callers pass, which the worker cannot receive: the memory manager passes its own.
   */
  model?: string;
  /** Settings of the extractive summarizer in the worker. */
  extractive?: ExtractiveSummarizerOptions;
}

/**
 * The worker thread's nice value. A summary may lag by a few milliseconds; a request should not:
 * when the CPUs are busy, the event loop and the stores on the same machine run first, and the
 * worker still gets about a tenth of a core.
 */
export const WORKER_NICE = 10;

interface Pending {
  resolve(result: SummarizeResult): void;
  reject(error: Error): void;
  started: number;
}

/**
 * The extractive summarizer on a worker thread of its own, so that a job's CPU work (several
 * milliseconds for a large fold) runs beside the requests instead of between them. Same results
 * as `ExtractiveSummarizer` with the same model's counter. The worker starts on the first call,
 * does not keep the process alive while idle, and is started again after it dies.
 */
export class WorkerSummarizer implements Summarizer {
  readonly name = "extractive" as const;
  readonly #init: Omit<WorkerInit, "vocabulary">;
  readonly #pending = new Map<number, Pending>();
  #worker: Worker | null = null;
  #nextId = 1;
  #closed = false;

  /** @throws ValidationError for an unknown model. */
  constructor(options: WorkerSummarizerOptions = {}) {
    const model = options.model ?? "gpt-4o";
    encodingForModel(model);
    this.#init = { model, nice: WORKER_NICE, extractive: options.extractive ?? {} };
  }

  async summarize(request: SummarizeRequest): Promise<SummarizeResult> {
    validateSummarizeRequest(request);
    if (this.#closed) throw new SummarizerAbortedError({ cause: "the summarizer is closed" });
    const worker = this.#worker ?? this.#start();
    const id = this.#nextId++;
    const { signal } = request;
    return new Promise<SummarizeResult>((resolve, reject) => {
      const onAbort = () => {
        // The worker finishes the fold anyway (it is short); its answer is dropped.
        this.#settle(id);
        reject(new SummarizerAbortedError({ cause: signal?.reason }));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const cleanup = () => signal?.removeEventListener("abort", onAbort);
      this.#pending.set(id, {
        resolve: (result) => {
          cleanup();
          resolve(result);
        },
        reject: (error) => {
          cleanup();
          reject(error);
        },
        started: performance.now(),
      });
      // A call in flight keeps the process alive until it is answered; an idle worker does not.
      if (this.#pending.size === 1) worker.ref();
      const message: WorkerRequest = {
        id,
        previousSummary: request.previousSummary,
        messages: request.messages,
        maxSummaryTokens: request.maxSummaryTokens,
      };
      worker.postMessage(message);
    });
  }

  /** Ends the worker; calls in flight fail with SummarizerAbortedError. */
  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#worker;
    this.#worker = null;
    this.#failAll(new SummarizerAbortedError({ cause: "the summarizer is closed" }));
    await worker?.terminate();
  }

  /**
   * Starts the thread. No heap limit of its own: V8 ends the whole process, not just the worker,
   * when some allocations (ICU's) pass a worker's limit; a job's input is bounded instead.
   */
  protected createWorker(entry: string, options: WorkerOptions): Worker {
    return new Worker(entry, options);
  }

  #start(): Worker {
    const worker = this.createWorker(workerEntry(import.meta.url, "summarizer-worker"), {
      eval: true,
      // The rank table is loaded here, where the service counts with it anyway, and shared.
      workerData: {
        ...this.#init,
        vocabulary: shareVocabulary(encodingForModel(this.#init.model)),
      } satisfies WorkerInit,
    });
    worker.unref();
    worker.on("message", (reply: WorkerReply) => {
      const pending = this.#settle(reply.id);
      if (!pending) return;
      if (!reply.ok) {
        pending.reject(new SummarizerWorkerError(`the summarizer worker failed: ${reply.message}`));
        return;
      }
      pending.resolve({
        text: reply.text,
        summarizer: "extractive",
        model: null,
        inputTokens: reply.inputTokens,
        outputTokens: reply.outputTokens,
        merged: reply.merged,
        latencyMs: performance.now() - pending.started,
      });
    });
    const died = (cause: unknown) => {
      if (this.#worker !== worker) return;
      this.#worker = null;
      this.#failAll(new SummarizerWorkerError(`the summarizer worker stopped: ${String(cause)}`, { cause }));
    };
    worker.on("error", died);
    worker.on("exit", (code) => died(`exit code ${code}`));
    this.#worker = worker;
    return worker;
  }

  #settle(id: number): Pending | undefined {
    const pending = this.#pending.get(id);
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#worker?.unref();
    return pending;
  }

  #failAll(error: SummarizerError): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const call of pending) call.reject(error);
  }
}
