import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { PostgresLegacyStore } from "../../src/legacy/legacy-store.js";
import { call, type TestService } from "../service/harness.js";
import { generateLegacySessions, insertLegacySessions } from "../support/legacy-sessions.js";
import { useTestServers } from "../support/servers.js";
import { openPhaseService, waitUntil } from "./phase-support.js";

// `legacy status`, `legacy import` and `legacy verify` over HTTP, in phase coexistence: the
// import's jobs store every valid element once, and mirror nothing back into the table they read.

const SESSIONS = generateLegacySessions({
  sessions: 80,
  length: (index) => (index * 7) % 23,
  hostile: true,
  prefix: "http-legacy",
});
const VALID = SESSIONS.reduce((sum, session) => sum + session.expected.length, 0);

interface Job {
  job_id: string;
  state: string;
  sessions_done: number;
  result: Record<string, unknown> | null;
  error: string | null;
}

describe.skipIf(!inject("postgresAvailable"))("the legacy migration over HTTP", () => {
  const servers = useTestServers();
  let service: TestService;
  let legacy: PostgresLegacyStore;

  beforeAll(async () => {
    ({ service, store: legacy } = await openPhaseService(servers.database, { phase: "coexistence" }));
    await insertLegacySessions(servers.database.db, SESSIONS);
  });
  afterAll(async () => {
    await service?.close();
  });

  /** Starts a job and polls it until it finished; returns the finished job. */
  async function run(path: "imports" | "verifications", body: unknown = {}): Promise<Job> {
    const started = await call(service.app, "POST", `/v1/legacy/${path}`, { body });
    expect(started.statusCode, started.body).toBe(202);
    const { job_id: id } = started.json<Job>();
    let job = started.json<Job>();
    await waitUntil(`job ${id} finishes`, async () => {
      job = (await call(service.app, "GET", `/v1/legacy/jobs/${id}`)).json<Job>();
      return job.state !== "running";
    });
    expect(job.error).toBeNull();
    expect(job.state).toBe("succeeded");
    return job;
  }

  async function historyLengths(): Promise<number[]> {
    return Promise.all(
      SESSIONS.map(async (session) => (await legacy.readHistory(session.sessionId))?.length ?? -1),
    );
  }

  it("imports every valid element once, mirrors nothing back, and a second import stores nothing", async () => {
    const before = await historyLengths();
    const first = await run("imports");
    expect(first.sessions_done).toBe(SESSIONS.length);
    expect(first.result).toMatchObject({ sessions: SESSIONS.length, messages_stored: VALID });
    const second = await run("imports");
    expect(second.result).toMatchObject({ messages_stored: 0, duplicates_skipped: VALID });
    // Phase coexistence mirrors the service's writes, never the import's.
    expect(await historyLengths()).toEqual(before);
    expect((await call(service.app, "GET", "/v1/legacy")).json()).toMatchObject({
      phase: "coexistence",
      tenant: "default",
      retry_queue: { total: 0, sessions: [] },
      legacy_store: { configured: true, reachable: true, sessions: SESSIONS.length },
      divergences: null,
    });
  });

  it("verifies: agree while both hold the same, and names the session after an element is deleted", async () => {
    expect((await run("verifications")).result).toMatchObject({ sessions: SESSIONS.length, agree: true });
    const victim = SESSIONS.find((session) => session.expected.length > 3);
    if (!victim) throw new Error("the generated sessions have none longer than 3");
    await servers.database.db.query(
      "UPDATE swisper_sessions SET chat_history = chat_history - 1 WHERE session_id = $1",
      [victim.sessionId],
    );
    const report = (await run("verifications")).result as {
      agree: boolean;
      diverging: { session_id: string; divergences: { kind: string }[] }[];
    };
    expect(report.agree).toBe(false);
    expect(report.diverging.map((verdict) => verdict.session_id)).toEqual([victim.sessionId]);
    const one = await run("verifications", { session_id: victim.sessionId });
    expect(one.result).toMatchObject({ sessions: 1, agree: false });
  });

  it("answers 400 naming the field of a bad request, and 404 for an unknown job", async () => {
    const bad = await call(service.app, "POST", "/v1/legacy/imports", { body: { max_sessions: 0 } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: { code: "invalid_input", field: "body.max_sessions" } });
    const unknown = await call(service.app, "GET", "/v1/legacy/jobs/00000000-0000-4000-8000-000000000000");
    expect(unknown.statusCode).toBe(404);
  });
});
