import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeWithRedis, useTestServers } from "../support/servers.js";
import { call, chatWorkload, DEPLOYMENTS, openTestService, type TestService } from "./harness.js";
import { type MetricFamily, type MetricType, parsePrometheusText, sampleValue } from "./prometheus-text.js";

/**
 * Every metric the Memory Manager API specification's "Monitoring and Alerting" names, and the
 * family that exports it (deploy/prometheus/rules.yml records each under its own name).
 */
const SPEC_METRICS: Record<string, { family: string; type: MetricType }> = {
  buffer_message_count: { family: "swisper_memory_buffer_messages", type: "histogram" },
  buffer_token_count: { family: "swisper_memory_buffer_tokens", type: "histogram" },
  buffer_ttl_remaining: { family: "swisper_memory_buffer_ttl_remaining_seconds", type: "histogram" },
  summary_count: { family: "swisper_memory_session_summaries", type: "histogram" },
  // The specification's rates are rate() of counters.
  summary_generation_rate: { family: "swisper_memory_summaries_generated_total", type: "counter" },
  summary_merge_rate: { family: "swisper_memory_summaries_merged_total", type: "counter" },
  redis_used_memory: { family: "swisper_memory_redis_used_memory_bytes", type: "gauge" },
  redis_evicted_keys: { family: "swisper_memory_redis_evicted_keys_total", type: "counter" },
  redis_expired_keys: { family: "swisper_memory_redis_expired_keys_total", type: "counter" },
  redis_hit_ratio: { family: "swisper_memory_redis_hit_ratio", type: "gauge" },
  // The p95 figures are read from histograms: histogram_quantile(0.95, rate(..._bucket[5m])).
  read_latency_p95: { family: "swisper_memory_read_latency_seconds", type: "histogram" },
  write_latency_p95: { family: "swisper_memory_write_latency_seconds", type: "histogram" },
  summarization_latency: { family: "swisper_memory_summarization_latency_seconds", type: "histogram" },
  context_packaging_latency: {
    family: "swisper_memory_context_packaging_latency_seconds",
    type: "histogram",
  },
};
const REDIS_FAMILIES = Object.entries(SPEC_METRICS)
  .filter(([spec]) => spec.startsWith("redis_"))
  .map(([, { family }]) => family);

const servers = useTestServers();

for (const deployment of DEPLOYMENTS) {
  const suite = deployment.needsRedis ? describeWithRedis : describe;
  suite(`/metrics (${deployment.name})`, () => {
    let service: TestService;
    let families: Map<string, MetricFamily>;
    let text: string;
    let contentType: string | undefined;
    const sessions = ["metrics-alpha", "metrics-beta"];

    beforeAll(async () => {
      service = await openTestService(servers.database, deployment.needsRedis ? servers.redis : undefined);
      await chatWorkload(service.app, sessions);
      await service.memory.waitForIdle();
      const response = await call(service.app, "GET", "/metrics");
      expect(response.statusCode).toBe(200);
      text = response.body;
      contentType = String(response.headers["content-type"]);
      families = parsePrometheusText(text);
    });
    afterAll(async () => {
      await service.close();
    });

    const samples = (name: string) => families.get(name)?.samples ?? [];
    const value = (name: string, labels: Record<string, string> = {}) => sampleValue(families, name, labels);

    it("serves the Prometheus text format (parsed strictly)", () => {
      expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(families.size).toBeGreaterThan(20);
      for (const name of families.keys()) expect(name.startsWith("swisper_memory_")).toBe(true);
    });

    it.each(Object.entries(SPEC_METRICS))(
      "exports the specification's %s as %o",
      (_spec, { family, type }) => {
        expect(families.get(family)?.type).toBe(type);
        expect(families.get(family)?.help).not.toBe("");
        if (deployment.needsRedis || !REDIS_FAMILIES.includes(family)) {
          expect(samples(family).length).toBeGreaterThan(0);
        } else if (type === "gauge") {
          // No Redis: no figure rather than a made-up zero.
          expect(value(family)).toBeNaN();
        } else {
          // A counter has no sample at all: NaN or 0 would read as a reset.
          expect(samples(family)).toEqual([]);
        }
      },
    );

    it("counts what the workload did", () => {
      // Each GET context (21 per session) is one observation of the buffer figures.
      expect(value("swisper_memory_buffer_messages")).toBe(2 * 11);
      expect(value("swisper_memory_session_summaries")).toBe(2 * 11);
      expect(value("swisper_memory_summaries_generated_total")).toBeGreaterThan(0);
      expect(value("swisper_memory_summaries_merged_total")).toBeGreaterThanOrEqual(0);
      expect(value("swisper_memory_summarization_latency_seconds", { outcome: "committed" })).toBe(
        value("swisper_memory_summaries_generated_total"),
      );
      expect(value("swisper_memory_write_latency_seconds", { operation: "add_messages" })).toBe(2 * 20);
      expect(value("swisper_memory_context_packaging_latency_seconds")).toBe(2 * 10);
      expect(value("swisper_memory_read_latency_seconds", { operation: "context" })).toBe(2 * 11);
      expect(value("swisper_memory_read_latency_seconds", { operation: "stats" })).toBe(2);
      expect(value("swisper_memory_summarizer_failures_total")).toBe(0);
      expect(value("swisper_memory_token_cache_hit_ratio")).toBeGreaterThanOrEqual(0);
      expect(value("swisper_memory_available")).toBe(1);
      expect(
        value("swisper_memory_http_request_duration_seconds", {
          method: "POST",
          route: "/v1/sessions/:session_id/messages",
          status_code: "201",
        }),
      ).toBe(2 * 20);
      // No PostgreSQL outage: nothing waits in the outbox.
      expect(value("swisper_memory_outbox_entries")).toBe(0);
      // The summaries kept pace with the chat: no write waited for one (backpressure).
      expect(value("swisper_memory_summarization_held_writes_total")).toBe(0);
      expect(value("swisper_memory_summarization_hold_timeouts_total")).toBe(0);
      if (deployment.needsRedis) {
        expect(value("swisper_memory_redis_used_memory_bytes")).toBeGreaterThan(0);
        expect(value("swisper_memory_redis_hit_ratio")).toBeGreaterThanOrEqual(0);
        expect(value("swisper_memory_redis_hit_ratio")).toBeLessThanOrEqual(1);
        // The context reads looked their sessions' keys up in Redis.
        expect(value("swisper_memory_redis_keyspace_hits_total")).toBeGreaterThan(0);
        expect(value("swisper_memory_redis_keyspace_misses_total")).toBeGreaterThanOrEqual(0);
        expect(value("swisper_memory_buffer_ttl_remaining_seconds")).toBe(2 * 11);
      } else {
        expect(value("swisper_memory_redis_available")).toBe(0);
        expect(samples("swisper_memory_redis_keyspace_hits_total")).toEqual([]);
      }
    });

    it("reports each circuit breaker's state, one series per state", () => {
      const series = samples("swisper_memory_circuit_breaker_state");
      const breakers = new Set(series.map((sample) => sample.labels.breaker));
      // Only the components the deployment runs on: no Redis breaker without Redis.
      const expected = deployment.needsRedis
        ? ["postgres", "redis", "summarizer"]
        : ["postgres", "summarizer"];
      expect([...breakers].sort()).toEqual(expected);
      for (const breaker of breakers) {
        const states = series.filter((sample) => sample.labels.breaker === breaker);
        expect(states.map((sample) => sample.labels.state).sort()).toEqual(["closed", "half_open", "open"]);
        expect(states.find((sample) => sample.value === 1)?.labels.state).toBe("closed");
        expect(states.reduce((sum, sample) => sum + sample.value, 0)).toBe(1);
      }
    });

    it("counts each circuit breaker's rejections (none without an outage)", () => {
      const series = samples("swisper_memory_circuit_breaker_rejections_total");
      // Only the components the deployment runs on: no Redis breaker without Redis.
      expect(series.map((sample) => sample.labels.breaker).sort()).toEqual(
        deployment.needsRedis ? ["postgres", "redis", "summarizer"] : ["postgres", "summarizer"],
      );
      for (const sample of series) expect(sample.value).toBe(0);
    });

    it("never puts a session id in a label value (per-session figures stay in /stats)", () => {
      for (const family of families.values()) {
        for (const sample of family.samples) {
          for (const labelValue of Object.values(sample.labels)) {
            for (const id of sessions) expect(labelValue).not.toContain(id);
          }
        }
      }
    });
  });
}

describe("the strict exposition parser", () => {
  it.each([
    ["a bad metric name", "9metric 1\n"],
    ["an unquoted label value", "m{a=b} 1\n"],
    ["a bad escape", 'm{a="\\x"} 1\n'],
    ["a bad value", "m 1,5\n"],
    ["no final newline", "m 1"],
    ["a duplicate series", 'm{a="1"} 1\nm{a="1"} 2\n'],
    ["a TYPE after samples", "m 1\n# TYPE m gauge\n"],
    ["a split family", '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="y"} 2\n'],
    [
      "a histogram whose +Inf bucket is not its count",
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n',
    ],
  ])("rejects %s", (_name, text) => {
    expect(() => parsePrometheusText(text)).toThrow();
  });

  it("reads labelled histograms", () => {
    const families = parsePrometheusText(
      '# HELP h_seconds a histogram\n# TYPE h_seconds histogram\nh_seconds_bucket{le="0.1",op="a"} 1\n' +
        'h_seconds_bucket{le="+Inf",op="a"} 2\nh_seconds_sum{op="a"} 0.3\nh_seconds_count{op="a"} 2\n',
    );
    expect(sampleValue(families, "h_seconds", { op: "a" })).toBe(2);
    expect(families.get("h_seconds")?.help).toBe("a histogram");
  });
});
