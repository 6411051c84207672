/**
 * The document is a contract: every operation is driven with real requests (against real
 * PostgreSQL and Redis), successes and each error it declares, and every answer is checked
 * against what /openapi.json declares for that operation and status code. A status the
 * document does not declare fails, and so does a declared status no request produced.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyInstance } from "fastify";
import lightMyRequest from "light-my-request";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { PostgresLegacyStore } from "../../src/legacy/legacy-store.js";
import { createMemoryManager } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { ApiKeyring, createMemoryService } from "../../src/service/index.js";
import { SummaryStore } from "../../src/summary/summary-store.js";
import { TABLE_SQL } from "../legacy/phase-support.js";
import { recordingLogger } from "../support/fixtures.js";
import { freePort } from "../support/processes.js";
import { useTestServers } from "../support/servers.js";
import { openTestService, type TestService } from "./harness.js";
import {
  type Exchange,
  exchangeProblems,
  fetchDocument,
  type OpenApiDocument,
  operationFor,
  operationsOf,
  type SchemaCheck,
  schemaChecker,
} from "./openapi-contract.js";

const KEY = "openapi-live-key-0123456789abcdef";
/** A key of the tenant the legacy table migrates into ("default"). */
const LEGACY_KEY = "openapi-live-legacy-key-0123456789";
const keys = () =>
  ApiKeyring.fromPairs([
    { tenant: "acme", key: KEY },
    { tenant: "default", key: LEGACY_KEY },
  ]);
const authed = { authorization: `Bearer ${KEY}` };

const LIVE = "live-session";
const GHOST = "never-written";
const DOOMED = "to-erase";
const TOO_LONG = "x".repeat(300);
const v1 = (session: string, path = "") => `/v1/sessions/${session}${path ? `/${path}` : ""}`;
const BIG = "x".repeat(8000);

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
interface Scenario {
  method: Method;
  url: string;
  status: number;
  body?: unknown;
  /** A raw body and its content type, instead of `body` as JSON. */
  raw?: { payload: string; contentType: string };
  /** Without the API key. */
  anonymous?: boolean;
  /** Another API key than the tenant acme's. */
  key?: string;
  /** Arranges an unexpected failure of the next call (for the 500 answers). */
  fault?: (service: TestService) => void;
}

/** Every /v1 operation once, for the answers every one of them gives alike (429, 503). */
const EVERY_V1_OPERATION: Omit<Scenario, "status">[] = [
  { method: "GET", url: "/v1/sessions" },
  { method: "GET", url: "/v1/search?q=laptop" },
  { method: "DELETE", url: "/v1/users/nobody" },
  { method: "POST", url: v1(LIVE, "messages"), body: { role: "user", content: "hi" } },
  { method: "GET", url: v1(LIVE, "messages") },
  { method: "GET", url: v1(LIVE, "context") },
  { method: "GET", url: v1(LIVE, "buffer") },
  { method: "DELETE", url: v1(LIVE, "buffer") },
  { method: "GET", url: v1(LIVE, "config") },
  { method: "PUT", url: v1(LIVE, "config"), body: { max_buffer_messages: 50 } },
  { method: "GET", url: v1(LIVE, "stats") },
  { method: "GET", url: v1(LIVE, "summaries") },
  { method: "POST", url: v1(LIVE, "summaries"), body: { summary_text: "A light laptop." } },
  { method: "DELETE", url: v1(LIVE, "summaries") },
  { method: "GET", url: v1(LIVE, "swisper-context") },
  { method: "PUT", url: v1(LIVE, "swisper-context"), body: { current_state: "x" } },
  { method: "GET", url: v1(LIVE) },
  { method: "PATCH", url: v1(LIVE), body: { title: "Laptops" } },
  { method: "DELETE", url: v1(LIVE) },
  { method: "GET", url: v1(LIVE, "export") },
  { method: "POST", url: "/v1/imports", raw: exportOf("everywhere", "Restored") },
];
/** The legacy migration's operations: they answer 404 without a legacy store, so not in the 503 case. */
const LEGACY_OPERATIONS: Omit<Scenario, "status">[] = [
  { method: "GET", url: "/v1/legacy" },
  { method: "POST", url: "/v1/legacy/imports", body: {} },
  { method: "POST", url: "/v1/legacy/verifications", body: {} },
  { method: "GET", url: "/v1/legacy/jobs/00000000-0000-4000-8000-000000000000" },
];
const OPERATIONS_ROUTES: Omit<Scenario, "status">[] = [
  { method: "GET", url: "/live" },
  { method: "GET", url: "/health" },
  { method: "GET", url: "/ready" },
  { method: "GET", url: "/metrics" },
];

// An unexpected error (a bug) inside the named step of the next request: the service answers 500.
const failRead = (service: TestService) =>
  vi.spyOn(service.metrics, "timeRead").mockRejectedValueOnce(new TypeError("injected"));
const failWrite = (service: TestService) =>
  vi.spyOn(service.metrics, "timeWrite").mockRejectedValueOnce(new TypeError("injected"));
const failHealth = (service: TestService) =>
  vi.spyOn(service.memory, "assessHealth").mockImplementationOnce(() => {
    throw new TypeError("injected");
  });
const failMetrics = (service: TestService) =>
  vi.spyOn(service.metrics, "exposition").mockRejectedValueOnce(new TypeError("injected"));
// A summarization step commits a version while a summary is being added: nothing is written.
const raceSummary = () => vi.spyOn(SummaryStore.prototype, "addSummary").mockResolvedValueOnce(false);

const text = (payload: string) => ({ payload, contentType: "text/plain" });

/** An export of one session (`id`) with one message, as JSON Lines. */
function exportOf(id: string, content: string): { payload: string; contentType: string } {
  const time = "2026-01-31T12:00:00.123456Z";
  const lines = [
    { type: "export", format: "swisper-memory-export", version: 1 },
    {
      type: "session",
      tenant: "acme",
      session_id: id,
      title: null,
      user_id: null,
      metadata: {},
      created_at: time,
      updated_at: time,
      buffer_floor_seq: 0,
      message_count: 1,
      summary_count: 0,
    },
    {
      type: "message",
      session_id: id,
      seq: 1,
      idempotency_key: null,
      tokens: 9,
      tokens_estimated: false,
      created_at: time,
      message: { role: "user", content, timestamp: 1795492748 },
    },
    { type: "end", sessions: 1, messages: 1 },
  ];
  return {
    payload: lines.map((line) => JSON.stringify(line)).join("\n"),
    contentType: "application/x-ndjson",
  };
}

/** A read of the session: found, a session id too long, no key, an unknown session, a bug. */
const reads = (path: string): Scenario[] => [
  { method: "GET", url: v1(LIVE, path), status: 200 },
  { method: "GET", url: v1(TOO_LONG, path), status: 400 },
  { method: "GET", url: v1(LIVE, path), anonymous: true, status: 401 },
  { method: "GET", url: v1(GHOST, path), status: 404 },
  { method: "GET", url: v1(LIVE, path), fault: failRead, status: 500 },
];

/** A write: stored, not valid, no key, too large, not JSON, a bug. */
function writes(
  method: Method,
  path: string,
  bodies: { valid: unknown; invalid: unknown },
  stored = 200,
): Scenario[] {
  const url = v1(LIVE, path);
  return [
    { method, url, body: bodies.valid, status: stored },
    { method, url, body: bodies.invalid, status: 400 },
    { method, url, body: bodies.valid, anonymous: true, status: 401 },
    { method, url, body: { padding: BIG }, status: 413 },
    { method, url, raw: text("not JSON"), status: 415 },
    { method, url, body: bodies.valid, fault: failWrite, status: 500 },
  ];
}

/** Successes and every error each operation can give with storage up. */
const MAIN: Scenario[] = [
  ...writes(
    "POST",
    "messages",
    { valid: { role: "user", content: "A bag?", id: "m-1" }, invalid: { role: "robot" } },
    201,
  ),
  {
    method: "POST",
    url: v1(LIVE, "messages"),
    body: { role: "user", content: "A bag?", id: "m-1" },
    status: 200,
  },
  // The listing: a page, bad queries, no key, a bug.
  { method: "GET", url: "/v1/sessions?order=created_desc&limit=1", status: 200 },
  { method: "GET", url: "/v1/sessions", status: 200 },
  { method: "GET", url: "/v1/sessions?limit=0", status: 400 },
  { method: "GET", url: "/v1/sessions?cursor=not-a-cursor", status: 400 },
  { method: "GET", url: "/v1/sessions?order=oldest", status: 400 },
  { method: "GET", url: "/v1/sessions", anonymous: true, status: 401 },
  { method: "GET", url: "/v1/sessions", fault: failRead, status: 500 },
  {
    method: "POST",
    url: `${v1(LIVE, "messages")}?user_id=user-1`,
    body: { role: "user", content: "Mine" },
    status: 201,
  },
  {
    method: "POST",
    url: `${v1(LIVE, "messages")}?user_id=`,
    body: { role: "user", content: "Mine" },
    status: 400,
  },
  // Search: hits, bad queries, no key, a bug.
  { method: "GET", url: "/v1/search?q=light%20laptop&limit=2", status: 200 },
  { method: "GET", url: "/v1/search?q=%21%21%21", status: 400 },
  { method: "GET", url: "/v1/search?q=laptop&cursor=nope", status: 400 },
  { method: "GET", url: "/v1/search?q=laptop", anonymous: true, status: 401 },
  { method: "GET", url: "/v1/search?q=laptop", fault: failRead, status: 500 },
  // Erasing a user: done, not valid, no key, a body sent (it takes none), a bug.
  { method: "DELETE", url: "/v1/users/leaving", status: 200 },
  { method: "DELETE", url: `/v1/users/${TOO_LONG}`, status: 400 },
  { method: "DELETE", url: "/v1/users/leaving", anonymous: true, status: 401 },
  { method: "DELETE", url: "/v1/users/leaving", body: { padding: BIG }, status: 413 },
  { method: "DELETE", url: "/v1/users/leaving", raw: text("please"), status: 415 },
  { method: "DELETE", url: "/v1/users/leaving", fault: failWrite, status: 500 },
  // Export and import: stored, a bad line, no key, a session with other content, too large, not
  // JSON Lines, a bug.
  ...reads("export"),
  { method: "POST", url: "/v1/imports", raw: exportOf("imported", "Restored"), status: 200 },
  { method: "POST", url: "/v1/imports", raw: exportOf("imported", "Restored"), status: 200 },
  { method: "POST", url: "/v1/imports", raw: { ...exportOf("x", "y"), payload: "{}" }, status: 400 },
  { method: "POST", url: "/v1/imports", raw: exportOf("imported", "Restored"), anonymous: true, status: 401 },
  { method: "POST", url: "/v1/imports", raw: exportOf(LIVE, "Other content"), status: 409 },
  { method: "POST", url: "/v1/imports", raw: exportOf("big", BIG), status: 413 },
  { method: "POST", url: "/v1/imports", raw: text("not lines"), status: 415 },
  { method: "POST", url: "/v1/imports", raw: exportOf("failing", "x"), fault: failWrite, status: 500 },
  // The transcript, a page at a time.
  ...reads("messages"),
  { method: "GET", url: `${v1(LIVE, "messages")}?after_seq=2&limit=3`, status: 200 },
  { method: "GET", url: `${v1(LIVE, "messages")}?limit=0`, status: 400 },
  // The session's record: read, and its title, user and metadata set.
  ...reads(""),
  ...writes("PATCH", "", {
    valid: { title: "Laptops", metadata: { channel: "web" } },
    invalid: { title: "" },
  }),
  { method: "PATCH", url: v1(GHOST), body: { title: "Nobody" }, status: 404 },
  ...reads("context"),
  { method: "GET", url: `${v1(LIVE, "context")}?max_tokens=200&model=gpt-4o`, status: 200 },
  { method: "GET", url: `${v1(LIVE, "context")}?max_tokens=0`, status: 400 },
  ...reads("config"),
  ...writes("PUT", "config", { valid: { max_buffer_messages: 40 }, invalid: { summary_trigger_tokens: 0 } }),
  ...reads("stats"),
  ...reads("buffer"),
  { method: "GET", url: `${v1(LIVE, "buffer")}?limit=2`, status: 200 },
  { method: "GET", url: `${v1(LIVE, "buffer")}?limit=-1`, status: 400 },
  ...reads("summaries"),
  { method: "GET", url: `${v1(LIVE, "summaries")}?limit=0`, status: 400 },
  ...writes(
    "POST",
    "summaries",
    { valid: { summary_text: "A light laptop under 1500 CHF." }, invalid: { summary_text: "" } },
    201,
  ),
  {
    method: "POST",
    url: v1(LIVE, "summaries"),
    body: { summary_text: "Raced." },
    fault: raceSummary,
    status: 200,
  },
  ...reads("swisper-context"),
  ...writes("PUT", "swisper-context", {
    valid: { current_state: "compare" },
    invalid: { session_id: "another" },
  }),
  // Erasing the session, emptying its buffer, deleting its summaries: done, not valid, no key,
  // unknown, a body sent (they take none, but one sent is still read, and refused, first), a bug.
  // LIVE keeps its transcript, so the reads above stay 200 whatever the order.
  ...(
    [
      [DOOMED, ""],
      [LIVE, "buffer"],
      [LIVE, "summaries"],
    ] as const
  ).flatMap(([done, path]): Scenario[] => [
    { method: "DELETE", url: v1(done, path), status: 204 },
    { method: "DELETE", url: v1(TOO_LONG, path), status: 400 },
    { method: "DELETE", url: v1(LIVE, path), anonymous: true, status: 401 },
    { method: "DELETE", url: v1(GHOST, path), status: 404 },
    { method: "DELETE", url: v1(LIVE, path), body: { padding: BIG }, status: 413 },
    { method: "DELETE", url: v1(LIVE, path), raw: text("please"), status: 415 },
    { method: "DELETE", url: v1(LIVE, path), fault: failRead, status: 500 },
  ]),

  { method: "GET", url: "/live", status: 200 },
  { method: "GET", url: "/health", status: 200 },
  { method: "GET", url: "/health", fault: failHealth, status: 500 },
  { method: "GET", url: "/ready", status: 200 },
  { method: "GET", url: "/ready", fault: failHealth, status: 500 },
  { method: "GET", url: "/metrics", status: 200 },
  { method: "GET", url: "/metrics", fault: failMetrics, status: 500 },
];

interface Target {
  document: OpenApiDocument;
  check: SchemaCheck;
  inject: (options: lightMyRequest.InjectOptions) => Promise<lightMyRequest.Response>;
}

const servers = useTestServers();
const answered: { document: OpenApiDocument; exchange: Exchange }[] = [];
const closers: (() => Promise<void>)[] = [];

async function targetOf(app: FastifyInstance): Promise<Target> {
  const document = await fetchDocument(app);
  return {
    document,
    check: schemaChecker(document, { closed: true }),
    inject: (options) => app.inject(options),
  };
}

/** Sends a scenario's request; returns what is wrong with the answer (status, or the contract). */
async function drive(target: Target, scenario: Scenario): Promise<string[]> {
  const headers: Record<string, string> = scenario.anonymous
    ? {}
    : { authorization: `Bearer ${scenario.key ?? KEY}` };
  let payload: string | undefined;
  if (scenario.raw) {
    payload = scenario.raw.payload;
    headers["content-type"] = scenario.raw.contentType;
  } else if (scenario.body !== undefined) {
    payload = JSON.stringify(scenario.body);
    headers["content-type"] = "application/json";
  }
  const response = await target.inject({
    method: scenario.method,
    url: scenario.url,
    headers,
    ...(payload !== undefined ? { payload } : {}),
  });
  const exchange: Exchange = {
    method: scenario.method,
    url: scenario.url,
    statusCode: response.statusCode,
    headers: response.headers,
    body: response.body,
  };
  answered.push({ document: target.document, exchange });
  const where = `${scenario.method} ${scenario.url.slice(0, 60)}`;
  const status =
    response.statusCode === scenario.status
      ? []
      : [
          `${where}: answered ${response.statusCode} (${response.body.slice(0, 120)}), expected ${scenario.status}`,
        ];
  return [...status, ...exchangeProblems(target.document, target.check, exchange)];
}

async function driveAll(target: Target, scenarios: Scenario[], service?: TestService): Promise<string[]> {
  const problems: string[] = [];
  for (const scenario of scenarios) {
    if (scenario.fault && service) scenario.fault(service);
    problems.push(...(await drive(target, scenario)));
    vi.restoreAllMocks();
  }
  return problems;
}

async function fillSessions(service: TestService): Promise<void> {
  const post = (session: string, body: unknown) =>
    service.app.inject({
      method: "POST",
      url: v1(session, "messages"),
      headers: authed,
      payload: body as object,
    });
  await service.app.inject({
    method: "PUT",
    url: v1(LIVE, "config"),
    headers: authed,
    payload: {
      summary_trigger_tokens: 60,
      max_buffer_tokens: 300,
      keep_recent_tokens: 20,
      max_summary_tokens: 60,
    },
  });
  await post(LIVE, { role: "system", content: "You help people choose laptops." });
  for (let turn = 0; turn < 4; turn++) {
    await post(LIVE, { role: "user", content: `Turn ${turn}: I want a light laptop under 1500 CHF.` });
  }
  const call = { id: "call_1", type: "function", function: { name: "search", arguments: '{"q":"laptop"}' } };
  await post(LIVE, { role: "assistant", content: null, tool_calls: [call] });
  await post(LIVE, { role: "tool", tool_call_id: "call_1", content: '[{"name":"Air 13","price":1299}]' });
  await service.app.inject({
    method: "PUT",
    url: v1(LIVE, "swisper-context"),
    headers: authed,
    payload: { current_state: "search", preferences: { budget_chf: 1500 } },
  });
  await post(DOOMED, { role: "user", content: "Forget me." });
  await service.app.inject({
    method: "POST",
    url: `${v1("leaving-user-session", "messages")}?user_id=leaving`,
    headers: authed,
    payload: { role: "user", content: "Erase me with my user." },
  });
  await service.memory.waitForIdle();
}

describe("every answer of the service is declared in /openapi.json, with its schema", () => {
  let main: TestService;

  beforeAll(async () => {
    main = await openTestService(servers.database, servers.redis, {
      apiKeys: keys(),
      bodyLimitBytes: 4096,
      importBodyLimitBytes: 4096,
    });
    closers.push(() => main.close());
    await fillSessions(main);
  });

  afterAll(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  it("every operation: successes, 400, 401, 404, 413, 415 and 500", async () => {
    const summaries = await main.memory.forTenant("acme").summaryStore.getSummaryHistory(LIVE, 5);
    expect(summaries.length, "the session has a summary to show").toBeGreaterThan(0);
    expect(await driveAll(await targetOf(main.app), MAIN, main)).toEqual([]);
  });

  it("the legacy operations: 202, 200, 400, 401, 403, 404, 413, 415 and 500", async () => {
    await servers.database.db.exec(TABLE_SQL);
    const store = new PostgresLegacyStore({ database: servers.database.db });
    await store.appendMessage("openapi-legacy", { role: "user", content: "Hello from the old store" });
    const migrated = await openTestService(
      servers.database,
      servers.redis,
      { apiKeys: keys(), bodyLimitBytes: 4096 },
      { legacy: { phase: "off", store } },
    );
    closers.push(() => migrated.close());
    const migration = migrated.memory.legacyMigration!;
    const job = migration.startVerify(migrated.memory, { sessionId: "openapi-legacy" });
    const jobUrl = `/v1/legacy/jobs/${job.id}`;
    const other = "/v1/legacy/jobs/00000000-0000-4000-8000-000000000000";
    const fail = (method: "status" | "startImport" | "startVerify" | "job") => () => {
      vi.spyOn(migration, method).mockImplementationOnce(() => {
        throw new TypeError("injected");
      });
    };
    const posts = (url: string, valid: unknown, invalid: unknown, method: "startImport" | "startVerify") => [
      { method: "POST" as const, url, body: valid, key: LEGACY_KEY, status: 202 },
      { method: "POST" as const, url, body: invalid, key: LEGACY_KEY, status: 400 },
      { method: "POST" as const, url, body: valid, anonymous: true, status: 401 },
      { method: "POST" as const, url, body: valid, status: 403 },
      { method: "POST" as const, url, body: { padding: BIG }, key: LEGACY_KEY, status: 413 },
      { method: "POST" as const, url, raw: text("go"), key: LEGACY_KEY, status: 415 },
      { method: "POST" as const, url, body: valid, key: LEGACY_KEY, fault: fail(method), status: 500 },
    ];
    const scenarios: Scenario[] = [
      { method: "GET", url: "/v1/legacy", key: LEGACY_KEY, status: 200 },
      { method: "GET", url: "/v1/legacy", anonymous: true, status: 401 },
      { method: "GET", url: "/v1/legacy", status: 403 },
      { method: "GET", url: "/v1/legacy", key: LEGACY_KEY, fault: fail("status"), status: 500 },
      ...posts("/v1/legacy/imports", { session_id: "openapi-legacy" }, { dry_run: "yes" }, "startImport"),
      ...posts("/v1/legacy/verifications", { sample: 1 }, { sample: 0 }, "startVerify"),
      { method: "GET", url: jobUrl, key: LEGACY_KEY, status: 200 },
      { method: "GET", url: "/v1/legacy/jobs/not-a-uuid", key: LEGACY_KEY, status: 400 },
      { method: "GET", url: jobUrl, anonymous: true, status: 401 },
      { method: "GET", url: jobUrl, status: 403 },
      { method: "GET", url: other, key: LEGACY_KEY, status: 404 },
      { method: "GET", url: jobUrl, key: LEGACY_KEY, fault: fail("job"), status: 500 },
    ];
    expect(await driveAll(await targetOf(migrated.app), scenarios, migrated)).toEqual([]);
    const target = await targetOf(migrated.app);
    const examples = operationsOf(target.document).flatMap(({ key, operation }) => {
      const [method, template] = key.split(" ") as [Method, string];
      if (!template.startsWith("/v1/legacy")) return [];
      const bodies = Object.values(operation.requestBody?.content["application/json"]?.examples ?? {});
      return bodies.map((example) => ({
        method,
        url: template,
        body: example.value,
        key: LEGACY_KEY,
        status: 202,
      }));
    });
    expect(examples.length).toBeGreaterThanOrEqual(3);
    expect(await driveAll(target, examples)).toEqual([]);
    await migration.close();
    // Without a legacy store, import and verify answer 404.
    const unconfigured: Scenario[] = [
      { method: "POST", url: "/v1/legacy/imports", body: {}, status: 404 },
      { method: "POST", url: "/v1/legacy/verifications", body: {}, status: 404 },
    ];
    expect(await driveAll(await targetOf(main.app), unconfigured)).toEqual([]);
  });

  it("every request body example is accepted as it stands", async () => {
    const target = await targetOf(main.app);
    const scenarios = operationsOf(target.document).flatMap(({ key, operation }) => {
      const [method, template] = key.split(" ") as [Method, string];
      // The legacy operations' examples run against a service with a legacy store (above).
      if (template.startsWith("/v1/legacy")) return [];
      const examples = Object.entries(operation.requestBody?.content["application/json"]?.examples ?? {});
      return examples.flatMap(([name, example]): Scenario[] => {
        const url = template.replace("{session_id}", `example-${name}`);
        const scenario = { method, url, body: example.value, status: method === "POST" ? 201 : 200 };
        // A session's record is updated once it has a message.
        if (method !== "PATCH") return [scenario];
        const first = { role: "user", content: "Hello" };
        return [{ method: "POST", url: `${url}/messages`, body: first, status: 201 }, scenario];
      });
    });
    expect(scenarios.length).toBeGreaterThanOrEqual(5);
    expect(await driveAll(target, scenarios)).toEqual([]);
  });

  it("429 on every /v1 operation once the key's budget is spent", async () => {
    const limited = await openTestService(servers.database, undefined, {
      apiKeys: keys(),
      rateLimitPerMinute: 1,
    });
    closers.push(() => limited.close());
    const target = await targetOf(limited.app);
    await target.inject({ method: "GET", url: v1(GHOST, "config"), headers: authed });
    const scenarios = [...EVERY_V1_OPERATION, ...LEGACY_OPERATIONS].map((scenario) => ({
      ...scenario,
      status: 429,
    }));
    expect(await driveAll(target, scenarios)).toEqual([]);
  });

  it("503 on every /v1 operation, /health and /ready while no storage tier answers", async () => {
    const port = await freePort();
    const memory: MemoryManager = await createMemoryManager({
      database: `postgres://postgres@127.0.0.1:${port}/nothing`,
      redis: false,
      autoMigrate: false,
      logger: recordingLogger(),
      summarization: { idleFinalizeAfterMs: 0 },
    });
    const app = await createMemoryService({ memory });
    closers.push(async () => {
      await app.close();
      await memory.close();
    });
    const scenarios: Scenario[] = [
      ...EVERY_V1_OPERATION.map((scenario) => ({ ...scenario, status: 503 })),
      { method: "GET", url: "/health", status: 503 },
      { method: "GET", url: "/ready", status: 503 },
    ];
    expect(await driveAll(await targetOf(app), scenarios)).toEqual([]);
  });

  it("503 shutting_down on every operation but /live while the service drains", async () => {
    const draining = await openTestService(servers.database, undefined, { apiKeys: keys() });
    let target: Target | undefined;
    const all = [...EVERY_V1_OPERATION, ...LEGACY_OPERATIONS, ...OPERATIONS_ROUTES];
    const scenarios: Scenario[] = all.map((scenario) => ({
      ...scenario,
      status: scenario.url === "/live" ? 200 : 503,
    }));
    // Requests that arrive on an open connection after close() began: the service's own
    // preClose hook (registered first) has started draining when this one runs.
    // (Hooks are added before the app's first request.)
    let problems: Promise<string[]> = Promise.resolve(["the preClose hook did not run"]);
    draining.app.addHook("preClose", async () => {
      const routing = (request: IncomingMessage, response: ServerResponse) =>
        draining.app.routing(request, response);
      problems = driveAll({ ...target!, inject: (options) => lightMyRequest(routing, options) }, scenarios);
      await problems;
    });
    target = await targetOf(draining.app);
    await draining.close();
    expect(await problems).toEqual([]);
  });

  it("every status the document declares was answered at least once", () => {
    const declared = new Set<string>();
    for (const { document } of answered) {
      for (const { key, operation } of operationsOf(document)) {
        for (const status of Object.keys(operation.responses)) declared.add(`${key} ${status}`);
      }
    }
    const seen = new Set(
      answered.map(({ document, exchange }) => {
        const found = operationFor(document, exchange.method, exchange.url);
        return `${found?.key} ${exchange.statusCode}`;
      }),
    );
    expect([...declared].filter((entry) => !seen.has(entry)).sort()).toEqual([]);
  });
});
