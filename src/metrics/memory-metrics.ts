import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { DIVERGENCE_LABELS } from "../legacy/consistency.js";
import type { MemoryContext, RedisStats } from "../manager/memory-manager.js";
import type { JobReport } from "../manager/summarization-job.js";
import type { CircuitBreakerSnapshot } from "../resilience/index.js";
import { CircuitState } from "../resilience/index.js";
import type { CacheStats } from "../tokens/index.js";

export type { JobReport };

/** Reads operations are labelled with one of these (a closed set: no per-session label values). */
export type ReadOperation =
  | "context"
  | "buffer"
  | "config"
  | "stats"
  | "summaries"
  | "swisper_context"
  | "exists"
  | "list_sessions"
  | "session"
  | "transcript"
  | "search"
  | "export";
export type WriteOperation =
  | "add_messages"
  | "set_config"
  | "save_context"
  | "clear"
  | "clear_buffer"
  | "add_summary"
  | "clear_summaries"
  | "update_session"
  | "erase_user"
  | "import";

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
  /** Outbox entries not replayed yet (`MemoryManager.outboxBacklog()`). */
  outbox?: () => number;
  /** Legacy writes queued for retry (phase coexistence); null when not mirroring. */
  legacyQueue?: () => Promise<number | null>;
  /** Legacy writes that failed or timed out since the process started. */
  legacyFailures?: () => number;
  /** Phase gradual: divergences from the legacy store by kind; null in other phases. */
  divergences?: () => ReadonlyMap<string, number> | null;
  /** What this process's retention sweeps erased (`MemoryManager.retentionErased()`). */
  retentionErased?: () => { sessions: number; messages: number };
  /** Writes held by backpressure (`MemoryManager.summarizationBackpressure()`). */
  backpressure?: () => { held: number; timeouts: number };
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
 * prom-client's process metrics that are gauges named `_total`, which Prometheus reserves for
 * counters (`promtool check metrics` rejects them). Each is the sum of the labelled gauge of the
 * same name without `_total`: `sum(<prefix>nodejs_active_handles)`.
 */
const MISNAMED_DEFAULT_METRICS = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

/** Creates instruments in one registry, each name prefixed. */
class InstrumentFactory {
  constructor(
    readonly registry: Registry,
    readonly prefix: string,
  ) {}

  histogram<L extends string = never>(
    suffix: string,
    help: string,
    buckets: number[],
    labelNames: readonly L[] = [],
  ): Histogram<L> {
    return new Histogram({
      name: this.prefix + suffix,
      help,
      buckets,
      labelNames,
      registers: [this.registry],
    });
  }

  counter(suffix: string, help: string): Counter {
    return new Counter({ name: this.prefix + suffix, help, registers: [this.registry] });
  }

  /** A gauge set when scraped; `read` returns undefined to leave it as it is. */
  scrapedGauge(suffix: string, help: string, read: () => number | undefined | Promise<number | undefined>) {
    new Gauge({
      name: this.prefix + suffix,
      help,
      registers: [this.registry],
      async collect() {
        const value = await read();
        if (value !== undefined) this.set(value);
      },
    });
  }

  /**
   * A counter that mirrors a running total kept elsewhere (Redis INFO, a breaker), set when
   * scraped. No sample while the total is unknown: a 0 would read as a counter reset, and the
   * next real value as that many new events (a false alert).
   */
  mirroredCounter<L extends string = never>(
    suffix: string,
    help: string,
    labelNames: readonly L[],
    read: () => Promise<Iterable<[Partial<Record<L, string>>, number]>>,
  ) {
    new Counter({
      name: this.prefix + suffix,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        const totals = [...(await read())];
        this.reset();
        if (labelNames.length === 0 && totals.length === 0) this.remove();
        for (const [labels, total] of totals) this.inc(labels, total);
      },
    });
  }
}

/** spec: buffer and summary metrics, observed on context reads and summarization job steps. */
function contentInstruments(make: InstrumentFactory) {
  return {
    bufferMessages: make.histogram(
      "buffer_messages",
      "Messages in a session's buffer, observed on each context read (spec: buffer_message_count)",
      MESSAGE_COUNT_BUCKETS,
    ),
    bufferTokens: make.histogram(
      "buffer_tokens",
      "Tokens in a session's buffer (chat framing included), observed on each context read (spec: buffer_token_count)",
      TOKEN_COUNT_BUCKETS,
    ),
    bufferTtlRemaining: make.histogram(
      "buffer_ttl_remaining_seconds",
      "Seconds until Redis expires an idle session's buffer, observed on each context read served by Redis (spec: buffer_ttl_remaining)",
      TTL_BUCKETS,
    ),
    sessionSummaries: make.histogram(
      "session_summaries",
      "Summary versions a session has, observed on each context read (spec: summary_count)",
      SUMMARY_COUNT_BUCKETS,
    ),
    summariesGenerated: make.counter(
      "summaries_generated_total",
      "Summaries committed; rate() of it is the specification's summary_generation_rate",
    ),
    summariesMerged: make.counter(
      "summaries_merged_total",
      "Committed summaries that compressed an over-budget summary (the specification's merge); rate() of it is summary_merge_rate",
    ),
    summarizerFailures: make.counter(
      "summarizer_failures_total",
      "Summarization job steps that failed (the buffer is kept and the job retried)",
    ),
  };
}

/** spec: performance metrics, as histograms (p95 = histogram_quantile(0.95, ...)), and HTTP's. */
function latencyInstruments(make: InstrumentFactory) {
  return {
    read: make.histogram("read_latency_seconds", "Latency of memory reads, by operation", LATENCY_BUCKETS, [
      "operation",
    ]),
    write: make.histogram(
      "write_latency_seconds",
      "Latency of memory writes, by operation",
      LATENCY_BUCKETS,
      ["operation"],
    ),
    summarization: make.histogram(
      "summarization_latency_seconds",
      "Duration of summarization job steps, by outcome (committed, nothing, busy, conflict, failed)",
      SUMMARIZATION_BUCKETS,
      ["outcome"],
    ),
    contextPackaging: make.histogram(
      "context_packaging_latency_seconds",
      "Latency of context reads with a token budget (read, then pack the summary and newest messages)",
      LATENCY_BUCKETS,
    ),
    http: make.histogram(
      "http_request_duration_seconds",
      "HTTP request duration, by method, route template and status code",
      LATENCY_BUCKETS,
      ["method", "route", "status_code"],
    ),
  };
}

/**
 * The service's Prometheus instruments: every metric the specification's "Monitoring and Alerting"
 * names, prefixed `swisper_memory_` and named as Prometheus's conventions ask (counters end in
 * `_total`, units in base units, no type word in a name), plus breaker states, token-cache figures,
 * summarizer failures and the outbox. Per-session figures are observed into histograms
 * (distributions over reads), never used as label values: a label per session would grow without
 * bound. deploy/prometheus/rules.yml records the specification's own names from these.
 */
export class MemoryMetrics {
  readonly registry: Registry;
  readonly prefix: string;
  #sources: ScrapeSources;
  #consecutiveFailures = 0;
  #lastError: string | null = null;
  #lastFailureAt: number | null = null;
  readonly #content: ReturnType<typeof contentInstruments>;
  readonly #latency: ReturnType<typeof latencyInstruments>;

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
    const make = new InstrumentFactory(registry, prefix);
    this.#content = contentInstruments(make);
    this.#latency = latencyInstruments(make);
    this.#registerRedisMetrics(make);
    this.#registerBreakerMetrics(make);
    this.#registerProcessMetrics(make);
    if (defaultMetrics) {
      collectDefaultMetrics({ register: registry, prefix });
      for (const name of MISNAMED_DEFAULT_METRICS) registry.removeSingleMetric(prefix + name);
    }
  }

  /** spec: Redis metrics, read from INFO when scraped (see redis_available). */
  #registerRedisMetrics(make: InstrumentFactory): void {
    const stat = (field: keyof RedisStats) => async () => {
      const value = (await this.#redisStats())?.[field];
      return typeof value === "number" ? value : null;
    };
    // Gauges read NaN, not 0, while there is no figure: no Redis, or it did not answer.
    const gauge = (suffix: string, help: string, field: keyof RedisStats) =>
      make.scrapedGauge(suffix, help, async () => (await stat(field)()) ?? Number.NaN);
    const counter = (suffix: string, help: string, field: keyof RedisStats) =>
      make.mirroredCounter(suffix, help, [], async () => {
        const total = await stat(field)();
        return total === null ? [] : [[{}, total]];
      });
    gauge(
      "redis_used_memory_bytes",
      "Bytes of memory Redis uses (INFO used_memory, summed over cluster primaries)",
      "used_memory",
    );
    counter(
      "redis_evicted_keys_total",
      "Keys Redis evicted under maxmemory since it started (INFO evicted_keys)",
      "evicted_keys",
    );
    counter(
      "redis_expired_keys_total",
      "Keys Redis expired since it started (INFO expired_keys)",
      "expired_keys",
    );
    counter(
      "redis_keyspace_hits_total",
      "Key lookups that found the key, since Redis started (INFO keyspace_hits)",
      "keyspace_hits",
    );
    counter(
      "redis_keyspace_misses_total",
      "Key lookups that did not find the key, since Redis started (INFO keyspace_misses)",
      "keyspace_misses",
    );
    gauge("redis_hit_ratio", "Redis keyspace hits / (hits + misses) since it started", "hit_ratio");
    make.scrapedGauge(
      "redis_available",
      "1 when Redis answered INFO at the last scrape, else 0 (also 0 with no Redis configured)",
      async () => ((await this.#redisStats())?.available ? 1 : 0),
    );
  }

  /** spec: "Circuit breaker status", for every breaker (Redis, PostgreSQL, the summarizer). */
  #registerBreakerMetrics(make: InstrumentFactory): void {
    const breakers = () => this.#sources.breakers?.() ?? [];
    new Gauge({
      name: `${make.prefix}circuit_breaker_state`,
      help: "Circuit breaker state, one series per state: 1 for the current one, 0 for the others",
      labelNames: ["breaker", "state"],
      registers: [make.registry],
      collect() {
        this.reset();
        for (const breaker of breakers()) {
          for (const state of BREAKER_STATES) {
            this.set({ breaker: breaker.name, state }, breaker.state === state ? 1 : 0);
          }
        }
      },
    });
    make.mirroredCounter(
      "circuit_breaker_rejections_total",
      "Calls a circuit breaker refused since the process started",
      ["breaker"],
      async () => breakers().map((breaker) => [{ breaker: breaker.name }, breaker.rejections]),
    );
  }

  /** This process's own state beyond the specification: token cache, outbox, availability. */
  #registerProcessMetrics(make: InstrumentFactory): void {
    make.scrapedGauge(
      "token_cache_hit_ratio",
      "Token-count cache hits / lookups since the process started",
      () => this.#sources.tokenCache?.().hit_ratio,
    );
    make.scrapedGauge(
      "token_cache_entries",
      "Entries in the token-count cache",
      () => this.#sources.tokenCache?.().size,
    );
    make.scrapedGauge(
      "outbox_entries",
      "Writes this process acknowledged from the Redis outbox while PostgreSQL was away and has not yet replayed into the transcript",
      () => this.#sources.outbox?.(),
    );
    make.scrapedGauge(
      "legacy_retry_queue_entries",
      "Writes acknowledged in migration phase coexistence or gradual that the legacy session store has not applied yet",
      async () => {
        // Not mirroring: 0 queued. The system of record away: NaN, the figure is unknown.
        const read = this.#sources.legacyQueue;
        if (!read) return undefined;
        return read().then(
          (depth) => depth ?? undefined,
          () => Number.NaN,
        );
      },
    );
    make.mirroredCounter(
      "legacy_write_failures_total",
      "Legacy session store writes that failed or timed out (each queued for retry) since the process started",
      [],
      async () => {
        const failures = this.#sources.legacyFailures?.();
        return failures === undefined ? [] : [[{}, failures]];
      },
    );
    make.mirroredCounter(
      "migration_divergences_total",
      "Divergences between the memory and the legacy session store found by phase gradual's sampled checks",
      ["kind"],
      async () => {
        // Every kind, 0 until seen (also outside phase gradual, where none can be seen).
        const read = this.#sources.divergences;
        if (!read) return [];
        const counts = read();
        return DIVERGENCE_LABELS.map(
          (kind) => [{ kind }, counts?.get(kind) ?? 0] as [{ kind: string }, number],
        );
      },
    );
    // One unlabelled counter a field of a source that answers a few process totals.
    const field =
      <K extends string>(source: (() => Record<K, number>) | undefined, name: K) =>
      async (): Promise<[Record<string, string>, number][]> => {
        const totals = source?.();
        return totals === undefined ? [] : [[{}, totals[name]]];
      };
    make.mirroredCounter(
      "retention_erased_sessions_total",
      "Sessions the retention sweeper of this process erased (idle longer than their retention_days)",
      [],
      () => field(this.#sources.retentionErased, "sessions")(),
    );
    make.mirroredCounter(
      "retention_erased_messages_total",
      "Transcript messages of the sessions the retention sweeper of this process erased",
      [],
      () => field(this.#sources.retentionErased, "messages")(),
    );
    make.mirroredCounter(
      "summarization_held_writes_total",
      "Writes whose acknowledgement waited for their session's summarization (backpressure: more than max_buffer_messages unsummarized outside the buffer)",
      [],
      () => field(this.#sources.backpressure, "held")(),
    );
    make.mirroredCounter(
      "summarization_hold_timeouts_total",
      "Held writes acknowledged when summarization.backpressureTimeoutMs ran out (the summarizer is not keeping pace)",
      [],
      () => field(this.#sources.backpressure, "timeouts")(),
    );
    make.scrapedGauge(
      "available",
      "1 while memory can serve (from Redis or from the system of record), else 0",
      () => {
        const available = this.#sources.available?.();
        return available === undefined ? undefined : available ? 1 : 0;
      },
    );
  }

  /** Adds or replaces scrape-time sources. */
  attach(sources: ScrapeSources): void {
    this.#sources = { ...this.#sources, ...sources };
  }

  /** Pass as `createMemoryManager({ summarization: { onJob: metrics.onJob } })`. */
  readonly onJob = (outcome: JobReport, elapsedMs: number): void => {
    this.#latency.summarization.observe({ outcome: outcome.kind }, elapsedMs / 1000);
    if (outcome.kind === "failed") {
      this.#content.summarizerFailures.inc();
      this.#consecutiveFailures++;
      this.#lastError = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
      this.#lastFailureAt = Date.now();
      return;
    }
    if (outcome.kind === "committed") {
      this.#consecutiveFailures = 0;
      this.#content.summariesGenerated.inc();
      if (outcome.summary.metadata.merged === true) this.#content.summariesMerged.inc();
    }
  };

  /** The buffer and summary figures of one context read. */
  observeContext(context: MemoryContext): void {
    const info = context.buffer_info;
    this.#content.bufferMessages.observe(info.message_count);
    this.#content.bufferTokens.observe(info.total_tokens);
    if (info.ttl_remaining !== null) this.#content.bufferTtlRemaining.observe(info.ttl_remaining);
    this.#content.sessionSummaries.observe(context.summary?.version ?? 0);
  }

  /** Runs a read and records its latency (also when it fails). */
  timeRead<T>(operation: ReadOperation, read: () => Promise<T>): Promise<T> {
    return timed(this.#latency.read.labels(operation), read);
  }

  /** Runs a write and records its latency (also when it fails). */
  timeWrite<T>(operation: WriteOperation, write: () => Promise<T>): Promise<T> {
    return timed(this.#latency.write.labels(operation), write);
  }

  /** Runs a budgeted context read and records it as context packaging (and as a read). */
  timeContextPackaging<T>(read: () => Promise<T>): Promise<T> {
    return timed(this.#latency.contextPackaging, () => this.timeRead("context", read));
  }

  observeHttp(method: string, route: string, statusCode: number, seconds: number): void {
    this.#latency.http.observe({ method, route, status_code: String(statusCode) }, seconds);
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

  // One INFO round trip per scrape, shared by the Redis gauges and counters.
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
