import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { SummarizationOptions } from "../manager/create-memory-manager.js";
import type { MemoryContext, RedisStats } from "../manager/memory-manager.js";
import type { CircuitBreakerSnapshot } from "../resilience/index.js";
import { CircuitState } from "../resilience/index.js";
import type { CacheStats } from "../tokens/index.js";

/** What the summarization scheduler reports after each job step (`summarization.onJob`). */
export type JobReport = Parameters<NonNullable<SummarizationOptions["onJob"]>>[0];

/** Reads operations are labelled with one of these (a closed set: no per-session label values). */
export type ReadOperation = "context" | "config" | "stats" | "summaries" | "swisper_context" | "exists";
export type WriteOperation = "add_messages" | "set_config" | "save_context" | "clear";

/** Figures read when Prometheus scrapes, not on the request path. */
export interface ScrapeSources {
  /** The Redis server's INFO figures; unavailable when there is no Redis. */
  redis?: () => Promise<RedisStats>;
  /** The token counter's cache figures. */
  tokenCache?: () => CacheStats;
  /** Circuit breaker snapshots (none until the manager has breakers). */
  breakers?: () => readonly CircuitBreakerSnapshot[];
  /** Whether memory can serve (`MemoryManager.isAvailable()`). */
  available?: () => boolean;
}

export interface MemoryMetricsOptions {
  /** Registry the instruments live in. Default: a new one, so that two services never collide. */
  registry?: Registry;
  /** Prefix of every metric name. Default `swisper_memory_`. */
  prefix?: string;
  /** Also export Node.js process metrics (CPU, memory, event loop lag), prefixed. Default false. */
  defaultMetrics?: boolean;
  /** Scrape-time sources; more can be attached later with `attach`. */
  sources?: ScrapeSources;
}

/** Summarizer health as the metrics saw it: consecutive failures and the last error. */
export interface SummarizerHealth {
  consecutive_failures: number;
  last_error: string | null;
  last_failure_at: string | null;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const SUMMARIZATION_BUCKETS = [0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120];
const MESSAGE_COUNT_BUCKETS = [0, 1, 2, 5, 10, 20, 30, 50, 100, 200, 500, 1000];
const TOKEN_COUNT_BUCKETS = [0, 100, 250, 500, 1000, 2000, 3000, 4000, 6000, 8000, 16000, 32000, 64000];
const TTL_BUCKETS = [60, 300, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400, 604800];
const SUMMARY_COUNT_BUCKETS = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500];
const BREAKER_STATES = Object.values(CircuitState);

/**
 * The service's Prometheus instruments: every metric the specification's "Monitoring and Alerting" names,
 * prefixed `swisper_memory_`, plus breaker states, token-cache hit ratio and summarizer failures.
 * Per-session figures are observed into histograms (distributions over reads), never used as
 * label values: a label per session would grow without bound.
 */
export class MemoryMetrics {
  readonly registry: Registry;
  readonly prefix: string;
  #sources: ScrapeSources;
  #consecutiveFailures = 0;
  #lastError: string | null = null;
  #lastFailureAt: number | null = null;

  readonly #bufferMessageCount: Histogram;
  readonly #bufferTokenCount: Histogram;
  readonly #bufferTtlRemaining: Histogram;
  readonly #summaryCount: Histogram;
  readonly #summaryGeneration: Counter;
  readonly #summaryMerge: Counter;
  readonly #summarizerFailures: Counter;
  readonly #readLatency: Histogram<"operation">;
  readonly #writeLatency: Histogram<"operation">;
  readonly #summarizationLatency: Histogram<"outcome">;
  readonly #contextPackagingLatency: Histogram;
  readonly #httpDuration: Histogram<"method" | "route" | "status_code">;

  constructor(options: MemoryMetricsOptions = {}) {
    const {
      registry = new Registry(),
      prefix = "swisper_memory_",
      defaultMetrics = false,
      sources = {},
    } = options;
    this.registry = registry;
    this.prefix = prefix;
    this.#sources = { ...sources };
    const registers = [registry];
    const name = (suffix: string) => `${prefix}${suffix}`;
    const self = this;

    // spec: buffer metrics. Observed on every context read.
    this.#bufferMessageCount = new Histogram({
      name: name("buffer_message_count"),
      help: "Messages in a session's buffer, observed on each context read",
      buckets: MESSAGE_COUNT_BUCKETS,
      registers,
    });
    this.#bufferTokenCount = new Histogram({
      name: name("buffer_token_count"),
      help: "Tokens in a session's buffer (chat framing included), observed on each context read",
      buckets: TOKEN_COUNT_BUCKETS,
      registers,
    });
    this.#bufferTtlRemaining = new Histogram({
      name: name("buffer_ttl_remaining"),
      help: "Seconds until Redis expires an idle session's buffer, observed on each context read served by Redis",
      buckets: TTL_BUCKETS,
      registers,
    });

    // spec: summary metrics.
    this.#summaryCount = new Histogram({
      name: name("summary_count"),
      help: "Summary versions of a session, observed on each context read",
      buckets: SUMMARY_COUNT_BUCKETS,
      registers,
    });
    this.#summaryGeneration = new Counter({
      name: name("summary_generation_rate"),
      help: "Summaries committed (a counter: rate() of it is the summary generation rate)",
      registers,
    });
    this.#summaryMerge = new Counter({
      name: name("summary_merge_rate"),
      help: "Committed summaries that compressed an over-budget summary, the specification's merge (a counter: use rate())",
      registers,
    });
    this.#summarizerFailures = new Counter({
      name: name("summarizer_failures_total"),
      help: "Summarization job steps that failed (the buffer is kept and the job retried)",
      registers,
    });

    // spec: Redis metrics, read from INFO when scraped (NaN without Redis; see redis_available).
    const redisGauge = (suffix: keyof RedisStats & string, help: string) =>
      new Gauge({
        name: name(`redis_${suffix}`),
        help,
        registers,
        async collect() {
          const value = (await self.#redisStats())?.[suffix];
          // NaN, not 0, while there is no figure: no Redis, or it did not answer.
          this.set(typeof value === "number" ? value : Number.NaN);
        },
      });
    redisGauge("used_memory", "Bytes of memory Redis uses (INFO used_memory, summed over cluster primaries)");
    redisGauge("evicted_keys", "Keys Redis evicted under maxmemory since it started (INFO evicted_keys)");
    redisGauge("expired_keys", "Keys Redis expired since it started (INFO expired_keys)");
    redisGauge("hit_ratio", "Redis keyspace hits / (hits + misses) since it started");
    new Gauge({
      name: name("redis_available"),
      help: "1 when Redis answered INFO at the last scrape, else 0 (also 0 with no Redis configured)",
      registers,
      async collect() {
        this.set((await self.#redisStats())?.available ? 1 : 0);
      },
    });

    // spec: performance metrics, as histograms (p95 = histogram_quantile(0.95, ...)).
    this.#readLatency = new Histogram({
      name: name("read_latency_seconds"),
      help: "Latency of memory reads, by operation",
      labelNames: ["operation"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#writeLatency = new Histogram({
      name: name("write_latency_seconds"),
      help: "Latency of memory writes, by operation",
      labelNames: ["operation"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#summarizationLatency = new Histogram({
      name: name("summarization_latency_seconds"),
      help: "Duration of summarization job steps, by outcome (committed, nothing, busy, conflict, failed)",
      labelNames: ["outcome"],
      buckets: SUMMARIZATION_BUCKETS,
      registers,
    });
    this.#contextPackagingLatency = new Histogram({
      name: name("context_packaging_latency_seconds"),
      help: "Latency of context reads with a token budget (read, then pack the summary and newest messages)",
      buckets: LATENCY_BUCKETS,
      registers,
    });

    // Beyond the specification.
    new Gauge({
      name: name("circuit_breaker_state"),
      help: "Circuit breaker state, one series per state: 1 for the current one, 0 for the others",
      labelNames: ["breaker", "state"],
      registers,
      collect() {
        this.reset();
        for (const breaker of self.#sources.breakers?.() ?? []) {
          for (const state of BREAKER_STATES) {
            this.set({ breaker: breaker.name, state }, breaker.state === state ? 1 : 0);
          }
        }
      },
    });
    new Gauge({
      name: name("circuit_breaker_rejections"),
      help: "Calls a circuit breaker refused since the process started",
      labelNames: ["breaker"],
      registers,
      collect() {
        this.reset();
        for (const breaker of self.#sources.breakers?.() ?? []) {
          this.set({ breaker: breaker.name }, breaker.rejections);
        }
      },
    });
    new Gauge({
      name: name("token_cache_hit_ratio"),
      help: "Token-count cache hits / lookups since the process started",
      registers,
      collect() {
        const stats = self.#sources.tokenCache?.();
        if (stats) this.set(stats.hit_ratio);
      },
    });
    new Gauge({
      name: name("token_cache_entries"),
      help: "Entries in the token-count cache",
      registers,
      collect() {
        const stats = self.#sources.tokenCache?.();
        if (stats) this.set(stats.size);
      },
    });
    new Gauge({
      name: name("available"),
      help: "1 while memory can serve (from Redis or from the system of record), else 0",
      registers,
      collect() {
        const available = self.#sources.available?.();
        if (available !== undefined) this.set(available ? 1 : 0);
      },
    });
    this.#httpDuration = new Histogram({
      name: name("http_request_duration_seconds"),
      help: "HTTP request duration, by method, route template and status code",
      labelNames: ["method", "route", "status_code"],
      buckets: LATENCY_BUCKETS,
      registers,
    });

    if (defaultMetrics) collectDefaultMetrics({ register: registry, prefix });
  }

  /** Adds or replaces scrape-time sources. */
  attach(sources: ScrapeSources): void {
    this.#sources = { ...this.#sources, ...sources };
  }

  /** Pass as `createMemoryManager({ summarization: { onJob: metrics.onJob } })`. */
  readonly onJob = (outcome: JobReport, elapsedMs: number): void => {
    this.#summarizationLatency.observe({ outcome: outcome.kind }, elapsedMs / 1000);
    if (outcome.kind === "failed") {
      this.#summarizerFailures.inc();
      this.#consecutiveFailures++;
      this.#lastError = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
      this.#lastFailureAt = Date.now();
      return;
    }
    if (outcome.kind === "committed") {
      this.#consecutiveFailures = 0;
      this.#summaryGeneration.inc();
      if (outcome.summary.metadata.merged === true) this.#summaryMerge.inc();
    }
  };

  /** The buffer and summary figures of one context read. */
  observeContext(context: MemoryContext): void {
    const info = context.buffer_info;
    this.#bufferMessageCount.observe(info.message_count);
    this.#bufferTokenCount.observe(info.total_tokens);
    if (info.ttl_remaining !== null) this.#bufferTtlRemaining.observe(info.ttl_remaining);
    this.#summaryCount.observe(context.summary?.version ?? 0);
  }

  /** Runs a read and records its latency (also when it fails). */
  timeRead<T>(operation: ReadOperation, read: () => Promise<T>): Promise<T> {
    return timed(this.#readLatency.labels(operation), read);
  }

  /** Runs a write and records its latency (also when it fails). */
  timeWrite<T>(operation: WriteOperation, write: () => Promise<T>): Promise<T> {
    return timed(this.#writeLatency.labels(operation), write);
  }

  /** Runs a budgeted context read and records it as context packaging (and as a read). */
  timeContextPackaging<T>(read: () => Promise<T>): Promise<T> {
    return timed(this.#contextPackagingLatency, () => this.timeRead("context", read));
  }

  observeHttp(method: string, route: string, statusCode: number, seconds: number): void {
    this.#httpDuration.observe({ method, route, status_code: String(statusCode) }, seconds);
  }

  /** What the summarizer's job outcomes say about it. */
  summarizerHealth(): SummarizerHealth {
    return {
      consecutive_failures: this.#consecutiveFailures,
      last_error: this.#lastError,
      last_failure_at: this.#lastFailureAt === null ? null : new Date(this.#lastFailureAt).toISOString(),
    };
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  // One INFO round trip per scrape, shared by the Redis gauges.
  #pendingRedis: Promise<RedisStats> | null = null;
  #redisStats(): Promise<RedisStats> | undefined {
    const source = this.#sources.redis;
    if (!source) return undefined;
    if (!this.#pendingRedis) {
      this.#pendingRedis = source().finally(() => {
        setImmediate(() => {
          this.#pendingRedis = null;
        });
      });
    }
    return this.#pendingRedis;
  }
}

interface Timer {
  observe(seconds: number): void;
}

async function timed<T>(timer: Timer, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    timer.observe((performance.now() - started) / 1000);
  }
}
