import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryMetrics } from "../../src/metrics/index.js";
import { describeWithRedis, useTestServers } from "../support/servers.js";
import { call, chatWorkload, DEPLOYMENTS, openTestService, type TestService } from "./harness.js";
import { type MetricFamily, parsePrometheusText } from "./prometheus-text.js";

// Issue 12, "Metrics": the /metrics exposition follows Prometheus's naming conventions as
// `promtool check metrics` (Debian's prometheus package; CI installs it) enforces them, and the
// rules in deploy/prometheus/rules.yml read only metrics the service exports.

const PROMTOOL = process.env.PROMTOOL ?? "promtool";
const RULES = new URL("../../deploy/prometheus/rules.yml", import.meta.url);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs promtool with `input` on stdin. A missing promtool fails the test, saying how to get it. */
function promtool(args: readonly string[], input: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", (error: NodeJS.ErrnoException) => {
      reject(
        error.code === "ENOENT"
          ? new Error(
              `promtool not found ("${PROMTOOL}"): install it (Debian/Ubuntu: apt-get install prometheus) or set PROMTOOL to its path`,
            )
          : error,
      );
    });
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.on("error", () => {}); // a promtool that exits early closes its stdin: its exit code says why
    child.stdin.end(input);
  });
}

/** The family a series name belongs to (`x_bucket` of histogram `x` is `x`), if exported. */
function familyOf(families: Map<string, MetricFamily>, series: string): MetricFamily | undefined {
  const exact = families.get(series);
  if (exact) return exact;
  const base = series.replace(/_(bucket|sum|count)$/, "");
  const family = families.get(base);
  return family?.type === "histogram" ? family : undefined;
}

/** Every `swisper_memory_*` series name rules.yml mentions (recorded `swisper_memory:*` names excluded). */
async function seriesInRules(): Promise<string[]> {
  const text = await readFile(RULES, "utf8");
  return [...new Set(text.match(/\bswisper_memory_[a-zA-Z0-9_]+/g) ?? [])].sort();
}

const servers = useTestServers();

for (const deployment of DEPLOYMENTS) {
  const suite = deployment.needsRedis ? describeWithRedis : describe;
  suite(`/metrics against promtool (${deployment.name})`, () => {
    let service: TestService;
    let text: string;
    let families: Map<string, MetricFamily>;

    beforeAll(async () => {
      // As `serve` exports them: the Node.js process metrics are checked too.
      service = await openTestService(servers.database, deployment.needsRedis ? servers.redis : undefined, {
        metrics: new MemoryMetrics({ defaultMetrics: true }),
      });
      await chatWorkload(service.app, ["promtool-alpha", "promtool-beta"]);
      await service.memory.waitForIdle();
      const response = await call(service.app, "GET", "/metrics");
      expect(response.statusCode).toBe(200);
      text = response.body;
      families = parsePrometheusText(text);
    });
    afterAll(async () => {
      await service.close();
    });

    it("passes `promtool check metrics` with no problem", async () => {
      const run = await promtool(["check", "metrics"], text);
      expect(run.stderr).toBe("");
      expect(run.code).toBe(0);
    });

    // The figures below need every component, Redis included: asked of the full deployment only.
    if (!deployment.needsRedis) return;

    // So that promtool saw a sample of each (Node.js's metrics come and go with its handles).
    it("has samples in every family of the service's own", () => {
      const own = new MemoryMetrics().registry.getMetricsAsArray().map((metric) => metric.name);
      expect(own.length).toBeGreaterThan(20);
      const empty = own.filter((name) => (families.get(name)?.samples.length ?? 0) === 0);
      expect(empty).toEqual([]);
    });

    it("exports every metric deploy/prometheus/rules.yml reads", async () => {
      const series = await seriesInRules();
      expect(series.length).toBeGreaterThan(10);
      const missing = series.filter((name) => familyOf(families, name) === undefined);
      expect(missing).toEqual([]);
    });
  });
}
