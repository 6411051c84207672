import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryManager } from "../../src/manager/create-memory-manager.js";
import type { MemoryContext } from "../../src/manager/memory-manager.js";
import { type FakeOpenAIServer, startFakeOpenAIServer } from "../support/fake-openai-server.js";
import { freePort } from "../support/processes.js";
import { killServed, type Served, serve, waitUntilReady } from "../support/serve-process.js";
import { FaultServers, quietLogger, sleep, until } from "./support/environment.js";
import {
  checkTranscripts,
  NOTHING_WRONG,
  printFigures,
  readTranscript,
  storageFigures,
} from "./support/invariants.js";
import { type Acknowledgement, type Client, startTraffic, WriteLog } from "./support/traffic.js";

// The service is stateless apart from its caches: three `swisper-memory serve` processes on one
// Redis and one PostgreSQL, with an OpenAI-compatible summarizer (a local fake) and a low summary
// trigger, take the same sessions' writes round-robin (each session's consecutive writes go to
// the three in turn; the sessions are written concurrently). Afterwards every acknowledged message
// is stored once, in order, at the seq it was told, with no gap; the summary versions of each
// session cover [1..k] with no gap and no overlap, and the summarizer was asked once per version
// (never the same range twice, whichever instance ran it); every instance serves the same context,
// equal to the transcript's; and one API key's rate limit is counted once across the three.

const INSTANCES = 3;
const SESSIONS = 24;
const WRITERS = 8;
const WRITES = 720;
const RATE_LIMIT = 300;
const TENANT = "acme";
/** One key per writer, so that the traffic stays under the rate limit; one more for the limit's test. */
const KEYS = Array.from({ length: WRITERS + 1 }, (_, i) => `three-instances-key-${i}-0123456789abcdef`);
const LIMIT_KEY = KEYS[WRITERS]!;
/**
 * Keys the checks read with after the traffic, one per session: polling until summarization is
 * quiet reads every session many times, which would spend the writers' budgets on a slow machine.
 */
const OBSERVER_KEYS = Array.from(
  { length: SESSIONS },
  (_, i) => `three-instances-observer-${i}-0123456789abcdef`,
);
/** Low, so that every session is summarized several times during the traffic. */
const CONFIG = { summary_trigger_tokens: 200, max_buffer_tokens: 400, keep_recent_tokens: 100 };

let servers: FaultServers;
let summarizer: FakeOpenAIServer;
const instances: { served: Served; url: string }[] = [];

beforeAll(async () => {
  [servers, summarizer] = await Promise.all([FaultServers.start(), startFakeOpenAIServer()]);
  summarizer.setBehaviour({ kind: "answer", content: "The user is shopping for a light laptop." });
  const ports = await Promise.all(Array.from({ length: INSTANCES }, () => freePort()));
  for (const port of ports) {
    const served = serve({
      PORT: String(port),
      HOST: "127.0.0.1",
      DATABASE_URL: servers.postgres.url,
      REDIS_URL: servers.redis.url,
      MEMORY_KEY_PREFIX: servers.keyPrefix,
      MEMORY_API_KEYS: [...KEYS, ...OBSERVER_KEYS].map((key) => `${TENANT}:${key}`).join(","),
      MEMORY_RATE_LIMIT_PER_MINUTE: String(RATE_LIMIT),
      MEMORY_SUMMARIZER: "openai",
      OPENAI_BASE_URL: summarizer.url,
      OPENAI_API_KEY: "fake-summarizer-key",
      MEMORY_SUMMARY_MODEL: "fake-model-1",
      MEMORY_IDLE_FINALIZE_SECONDS: "0",
      LOG_LEVEL: "warn",
    });
    instances.push({ served, url: `http://127.0.0.1:${port}` });
  }
  await Promise.all(instances.map(({ served, url }) => waitUntilReady(url, served, 90_000)));
});

afterAll(async () => {
  await Promise.all(instances.map(({ served }) => killServed(served)));
  await summarizer?.close();
  await servers?.stop();
});

function headers(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}`, "content-type": "application/json" };
}

const sessionPath = (session: string) => `/v1/sessions/${encodeURIComponent(session)}`;

/**
 * The HTTP client of a round-robin load balancer: session s's n-th request goes to instance
 * (s + n) mod 3, so that each session's consecutive writes land on all three in turn.
 */
function roundRobinClient(sessions: readonly string[], served: number[]): Client {
  const turns = new Map<string, number>();
  const route = (session: string) => {
    const index = sessions.indexOf(session);
    const turn = turns.get(session) ?? index;
    turns.set(session, turn + 1);
    const instance = turn % INSTANCES;
    served[instance]!++;
    return { base: instances[instance]!.url, key: KEYS[index % WRITERS]! };
  };
  return {
    name: "round-robin",
    async write(session, message) {
      const { base, key } = route(session);
      const response = await fetch(`${base}${sessionPath(session)}/messages`, {
        method: "POST",
        headers: headers(key),
        body: JSON.stringify(message),
      });
      const body = await response.text();
      if (response.status === 200 || response.status === 201) {
        const { messages } = JSON.parse(body) as { messages: Acknowledgement[] };
        return { kind: "ack", ack: messages[0]!, status: response.status };
      }
      if (response.status === 503)
        return {
          kind: "unavailable",
          status: 503,
          retryAfter: response.headers.get("retry-after"),
          error: body,
        };
      return { kind: "unexpected", status: response.status, error: body };
    },
    async read(session) {
      const { base, key } = route(session);
      const response = await fetch(`${base}${sessionPath(session)}/context`, { headers: headers(key) });
      if (response.status === 200)
        return { kind: "context", context: (await response.json()) as MemoryContext };
      if (response.status === 404) return { kind: "missing" };
      return { kind: "unexpected", status: response.status, error: await response.text() };
    },
    async erase() {
      return { ok: false, error: "not used here" };
    },
  };
}

async function getContext(base: string, session: string, key: string): Promise<MemoryContext> {
  const response = await fetch(`${base}${sessionPath(session)}/context`, { headers: headers(key) });
  if (response.status !== 200) throw new Error(`context of ${session} at ${base}: ${response.status}`);
  return (await response.json()) as MemoryContext;
}

/** Summary versions of one session whose range does not follow the one before (gap or overlap). */
async function coverageBreaches(session: string): Promise<{ versions: number; breaches: string[] }> {
  const { rows } = await servers.pool.query<{ version: number; first_seq: string; last_seq: string }>(
    "SELECT version, first_seq, last_seq FROM memory_summaries WHERE tenant = $1 AND session_id = $2 ORDER BY version",
    [TENANT, session],
  );
  const breaches: string[] = [];
  let covered = 0;
  for (const [index, row] of rows.entries()) {
    const [first, last] = [Number(row.first_seq), Number(row.last_seq)];
    if (row.version !== index + 1) breaches.push(`${session}: version ${row.version} is number ${index + 1}`);
    if (first !== covered + 1)
      breaches.push(`${session}: v${row.version} covers ${first}..${last} after ${covered}`);
    covered = last;
  }
  return { versions: rows.length, breaches };
}

/** The first message id of each summarizer request's "New messages" (ids are unique in the test). */
function firstIdsSummarized(tag: string): string[] {
  return summarizer.requests.map((request) => {
    const prompt = request.body?.messages?.map((message) => message.content).join("\n") ?? "";
    const fresh = prompt.slice(prompt.indexOf("New messages:"));
    return new RegExp(`\\b${tag}-\\d+\\b`).exec(fresh)?.[0] ?? "(none)";
  });
}

describe("three service processes on one Redis and one PostgreSQL", () => {
  it("count one API key's requests once across the three: its rate limit is shared", async () => {
    const statuses: number[] = [];
    const allowedPerInstance = Array.from({ length: INSTANCES }, () => 0);
    let withoutRetryAfter = 0;
    for (let i = 0; i < 2 * RATE_LIMIT; i++) {
      const instance = i % INSTANCES;
      const response = await fetch(`${instances[instance]!.url}${sessionPath("limit-probe")}/config`, {
        headers: headers(LIMIT_KEY),
      });
      await response.arrayBuffer();
      statuses.push(response.status);
      if (response.status === 429 && !response.headers.get("retry-after")) withoutRetryAfter++;
      if (response.status !== 429) allowedPerInstance[instance]!++;
      await sleep(2);
    }
    const allowed = statuses.filter((status) => status !== 429).length;
    printFigures("three service processes, one key's rate limit", {
      limit: RATE_LIMIT,
      sent: statuses.length,
      allowed,
      allowedPerInstance: allowedPerInstance.join("/"),
      limited: statuses.length - allowed,
    });
    // Counted per instance, each would let RATE_LIMIT through (3x in all). Shared, they let through
    // the limit, plus at most what the others counted since an instance's last sync (100 ms).
    expect(allowed).toBeGreaterThanOrEqual(RATE_LIMIT);
    expect(allowed).toBeLessThanOrEqual(RATE_LIMIT * 1.2);
    expect(statuses.filter((status) => ![200, 404, 429].includes(status))).toEqual([]);
    expect(withoutRetryAfter).toBe(0);
  });

  it("store every write once, in order, summarize each range once, and serve the same contexts", async () => {
    const sessions = Array.from({ length: SESSIONS }, (_, i) => `three-${i}`);
    // The low trigger, set through the first instance; every instance reads it from PostgreSQL.
    for (const [index, session] of sessions.entries()) {
      const response = await fetch(`${instances[0]!.url}${sessionPath(session)}/config`, {
        method: "PUT",
        headers: headers(KEYS[index % WRITERS]!),
        body: JSON.stringify(CONFIG),
      });
      expect(response.status).toBe(200);
    }
    const served = Array.from({ length: INSTANCES }, () => 0);
    const log = new WriteLog("tri");
    const traffic = startTraffic(roundRobinClient(sessions, served), sessions, log, {
      writers: WRITERS,
      words: 20,
      maxWrites: WRITES,
    });
    await traffic.done;

    // Quiet: every buffer below its trigger (no job due) and the summarizer asked nothing for 1.5 s.
    let asked = -1;
    let stableSince = Date.now();
    await until(
      async () => {
        if (summarizer.requests.length !== asked) {
          asked = summarizer.requests.length;
          stableSince = Date.now();
          return false;
        }
        if (Date.now() - stableSince < 1500) return false;
        for (const [index, session] of sessions.entries()) {
          const { buffer_info: info } = await getContext(instances[0]!.url, session, OBSERVER_KEYS[index]!);
          if (info.total_tokens >= info.summary_trigger_tokens) {
            // Check again after another quiet 1.5 s, not at once.
            stableSince = Date.now();
            return false;
          }
        }
        return true;
      },
      "summarization is quiet",
      60_000,
    );

    // Every instance serves the same context, equal to what the transcript alone says.
    const reference = await createMemoryManager({
      database: servers.postgres.url,
      redis: false,
      tenant: TENANT,
      logger: quietLogger(),
      summarization: { idleFinalizeAfterMs: 0 },
    });
    const contextDifferences: string[] = [];
    try {
      for (const [index, session] of sessions.entries()) {
        const expected = await reference.getContext(session);
        const want = JSON.stringify([expected.buffer_messages, expected.current_summary]);
        for (const [instance, { url }] of instances.entries()) {
          const actual = await getContext(url, session, OBSERVER_KEYS[index]!);
          const got = JSON.stringify([actual.buffer_messages, actual.current_summary]);
          if (got !== want)
            contextDifferences.push(`${session} at instance ${instance}: differs from the transcript`);
          if (actual.buffer_info.source !== "redis")
            contextDifferences.push(
              `${session} at instance ${instance}: served from ${actual.buffer_info.source}`,
            );
        }
      }
    } finally {
      await reference.close();
    }

    // Stop all three (each drains its requests and summarization jobs), then read what they left.
    for (const { served: child } of instances) child.child.kill("SIGTERM");
    const exits = await Promise.all(instances.map(({ served: child }) => child.exited));
    const errorLines = instances.flatMap(({ served: child }) =>
      child.stdout
        .join("")
        .split("\n")
        .filter((line) => line.startsWith("{") && (JSON.parse(line) as { level: number }).level >= 50),
    );

    const { figures, examples } = await checkTranscripts(servers.pool, log, TENANT);
    const gaps: string[] = [];
    const coverage: string[] = [];
    let versions = 0;
    for (const session of sessions) {
      const seqs = (await readTranscript(servers.pool, session, TENANT)).map((row) => row.seq);
      if (seqs.some((seq, i) => seq !== i + 1)) gaps.push(`${session}: seqs ${seqs.join(",")}`);
      const found = await coverageBreaches(session);
      versions += found.versions;
      coverage.push(...found.breaches);
    }
    const firstIds = firstIdsSummarized("tri");
    const summarizedTwice = firstIds.filter((id, i) => firstIds.indexOf(id) !== i);
    printFigures(
      "three service processes",
      {
        ...figures,
        servedPerInstance: served.join("/"),
        summaryVersions: versions,
        summarizerRequests: summarizer.requests.length,
        rangesSummarizedTwice: summarizedTwice.length,
        coverageBreaches: coverage.length,
        sessionsWithGaps: gaps.length,
        contextDifferences: contextDifferences.length,
        errorLogLines: errorLines.length,
      },
      [...examples, ...gaps, ...coverage, ...summarizedTwice, ...contextDifferences, ...errorLines],
    );
    expect(served.every((count) => count >= WRITES / INSTANCES - SESSIONS)).toBe(true);
    expect(storageFigures(figures)).toEqual({ acknowledged: WRITES, ...NOTHING_WRONG });
    expect(gaps).toEqual([]);
    expect(examples).toEqual([]);
    // Several summaries a session, each range summarized by exactly one instance, exactly once.
    expect(versions).toBeGreaterThanOrEqual(SESSIONS * 3);
    expect(coverage).toEqual([]);
    expect(summarizedTwice).toEqual([]);
    expect(summarizer.requests.length).toBe(versions);
    expect(contextDifferences).toEqual([]);
    expect(exits).toEqual([0, 0, 0]);
    expect(errorLines).toEqual([]);
  });
});
