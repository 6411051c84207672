import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Environment } from "../../src/cli/command.js";
import { openMemory } from "../../src/cli/open-memory.js";
import { convertSession } from "../../src/legacy/import.js";
import { PostgresLegacyStore } from "../../src/legacy/legacy-store.js";
import { PostgresDatabase } from "../../src/storage/database.js";
import { cli } from "../cli/run-cli.js";
import {
  type GeneratedLegacySession,
  generateLegacySessions,
  insertLegacySessions,
} from "../support/legacy-sessions.js";
import { useTestServers } from "../support/servers.js";
import { TEST_REDIS_URL } from "../support/urls.js";

// `swisper-memory legacy import` and `legacy verify`, in-process, from a real swisper_sessions
// table into the test's own database (and Redis key prefix). The history is judged by what the
// transcript holds afterwards: every valid element exactly once, in order.

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TABLE_SQL = readFileSync(new URL("./swisper_sessions.sql", import.meta.url), "utf8");

/** A few thousand sessions of 0-30 elements with hostile ones mixed in, one of 5,000. */
const SESSIONS = generateLegacySessions({
  sessions: 2_500,
  length: (index) => (index === 7 ? 5000 : (index * 13) % 31),
  hostile: true,
});

describe.skipIf(!inject("postgresAvailable"))("swisper-memory legacy", () => {
  const servers = useTestServers();
  let env: Environment;
  let db: PostgresDatabase;

  beforeAll(async () => {
    db = new PostgresDatabase({ connectionString: servers.database.url });
    await db.exec(TABLE_SQL);
    await insertLegacySessions(db, SESSIONS);
    // The legacy table may live in the memory's own database: LEGACY_DATABASE_URL = DATABASE_URL.
    env = {
      DATABASE_URL: servers.database.url,
      LEGACY_DATABASE_URL: servers.database.url,
      MEMORY_IDLE_FINALIZE_SECONDS: "0",
    };
    if (servers.redis) {
      env.REDIS_URL = TEST_REDIS_URL;
      env.MEMORY_KEY_PREFIX = servers.redis.keyPrefix;
    }
  });
  afterAll(async () => {
    await db?.close();
  });

  /** Each session's transcript (role, content) in seq order, for one tenant. */
  async function transcripts(tenant: string): Promise<Map<string, { role: string; content: string }[]>> {
    const { rows } = await db.query<{ session_id: string; role: string; content: string }>(
      `SELECT session_id, message ->> 'role' AS role, message ->> 'content' AS content
       FROM memory_messages WHERE tenant = $1 ORDER BY session_id, seq`,
      [tenant],
    );
    const bySession = new Map<string, { role: string; content: string }[]>();
    for (const row of rows) {
      const messages = bySession.get(row.session_id) ?? [];
      messages.push({ role: row.role, content: row.content });
      bySession.set(row.session_id, messages);
    }
    return bySession;
  }

  async function expectEveryValidElementOnce(tenant: string, sessions: readonly GeneratedLegacySession[]) {
    const stored = await transcripts(tenant);
    for (const session of sessions) {
      expect(stored.get(session.sessionId) ?? [], session.sessionId).toEqual(session.expected);
    }
  }

  const validCount = SESSIONS.reduce((sum, session) => sum + session.expected.length, 0);

  function invalidCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const session of SESSIONS) {
      for (const [reason, count] of Object.entries(session.invalid))
        counts[reason] = (counts[reason] ?? 0) + count;
    }
    return counts;
  }

  async function importJson(...args: string[]) {
    const result = await cli(env, "legacy", "import", "--json", ...args);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as Record<string, unknown>;
  }

  it("imports every valid element once, in order, and a second run stores nothing again", async () => {
    const first = await importJson("--time-zone", "Europe/Zurich");
    expect(first).toMatchObject({
      sessions: SESSIONS.length,
      messagesRead: validCount,
      messagesStored: validCount,
      duplicatesSkipped: 0,
      skippedByReason: invalidCounts(),
      contextsSaved: SESSIONS.filter((session) => session.sessionMetadata.contract_context).length,
    });
    const second = await importJson("--time-zone", "Europe/Zurich");
    expect(second).toMatchObject({ messagesStored: 0, duplicatesSkipped: validCount });
    await expectEveryValidElementOnce("default", SESSIONS);
    await expectNoContextSkipsHistory("default");
  }, 120_000);

  /**
   * The import loads without waiting for summaries, then summarizes: once it returns, no session's
   * context skips a message (each is in the summary or the buffer), the 5,000-message one included.
   */
  async function expectNoContextSkipsHistory(tenant: string) {
    const opened = await openMemory(env, { tenant });
    try {
      const skipping: string[] = [];
      for (const session of SESSIONS.filter((s) => s.expected.length > 0)) {
        const { summary, buffer_info: info } = await opened.memory.getContext(session.sessionId);
        if ((summary?.last_seq ?? 0) < info.first_seq - 1) skipping.push(session.sessionId);
      }
      expect(skipping).toEqual([]);
    } finally {
      await opened.close();
    }
  }

  it("turns local times into epoch seconds in the zone, keeps unknown keys and the contract context", async () => {
    const { rows } = await db.query<{ message: Record<string, unknown> }>(
      `SELECT message FROM memory_messages WHERE tenant = 'default' AND message::jsonb -> 'metadata' ? 'name' LIMIT 1`,
    );
    const message = rows[0]?.message;
    expect(message?.metadata).toEqual({ name: "swisper", metadata: { source: "web" }, extra: [1, 2] });
    const opened = await openMemory(env);
    try {
      // A session whose first element is a valid message with its ISO local time.
      const first = SESSIONS.find((session) => {
        const head = session.chatHistory[0] as { content?: unknown; timestamp?: unknown } | undefined;
        return typeof head?.timestamp === "string" && head.content === session.expected[0]?.content;
      }) as GeneratedLegacySession;
      const [element] = first.chatHistory as { timestamp: string }[];
      const { rows: stored } = await db.query<{ timestamp: number }>(
        `SELECT (message ->> 'timestamp')::float8 AS timestamp FROM memory_messages
         WHERE tenant = 'default' AND session_id = $1 ORDER BY seq LIMIT 1`,
        [first.sessionId],
      );
      // 2025-06-03 is summer time in Zurich: UTC+2.
      const utc = Date.parse(`${element?.timestamp.slice(0, 23)}Z`) / 1000 - 2 * 3600;
      expect(stored[0]?.timestamp).toBeCloseTo(utc, 2);
      const withContext = SESSIONS[3] as GeneratedLegacySession;
      expect(await opened.memory.loadContext(withContext.sessionId)).toMatchObject({
        session_id: withContext.sessionId,
        current_state: "search",
        contract_template: "contracts/laptop.yaml",
      });
    } finally {
      await opened.close();
    }
  });

  it("resumes an import that stopped halfway, even inside a session, and stores nothing twice", async () => {
    const partial = await importJson("--tenant", "resume", "--max-sessions", "100", "--batch-size", "7");
    expect(partial.sessions).toBe(100);
    // A crash after the first batch of a later session: its first messages are already stored.
    const crashed = SESSIONS[150] as GeneratedLegacySession;
    const legacy = new PostgresLegacyStore({ database: db });
    const row = await legacy.readSession(crashed.sessionId);
    const opened = await openMemory(env, { tenant: "resume" });
    try {
      if (!row) throw new Error("the generated session is missing");
      await opened.memory.addMessages(crashed.sessionId, convertSession(row, "UTC").messages.slice(0, 3));
    } finally {
      await opened.close();
    }
    const rest = await importJson("--tenant", "resume", "--batch-size", "7");
    expect(rest.sessions).toBe(SESSIONS.length);
    expect(Number(partial.messagesStored) + Number(rest.messagesStored) + 3).toBe(validCount);
    await expectEveryValidElementOnce("resume", SESSIONS);
  }, 120_000);

  it("reports and skips a message the library refuses, and stores the rest of its batch", async () => {
    const history = [
      { role: "user", content: "before", timestamp: "2025-06-03T14:07:55.123456" },
      { role: "assistant", content: "x".repeat(300 * 1024), timestamp: "2025-06-03T14:07:56.123456" },
      { role: "user", content: "after", timestamp: "2025-06-03T14:07:57.123456" },
    ];
    await db.query("INSERT INTO swisper_sessions (session_id, chat_history) VALUES ('oversize', $1::jsonb)", [
      JSON.stringify(history),
    ]);
    try {
      const result = await cli(env, "legacy", "import", "--tenant", "big", "--session", "oversize", "--json");
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain("skipped oversize[1]: refused by the library: message.content");
      expect(JSON.parse(result.stdout)).toMatchObject({
        messagesStored: 2,
        skippedByReason: { "refused by the library: message.content": 1 },
      });
      expect((await transcripts("big")).get("oversize")).toEqual([
        { role: "user", content: "before" },
        { role: "user", content: "after" },
      ]);
    } finally {
      await db.query("DELETE FROM swisper_sessions WHERE session_id = 'oversize'");
    }
  });

  it("resumes an import whose process was killed (SIGKILL) halfway, and stores nothing twice", async () => {
    const countStored = async () => {
      const { rows } = await db.query<{ count: number }>(
        "SELECT count(*)::int AS count FROM memory_messages WHERE tenant = 'killed'",
      );
      return rows[0]?.count ?? 0;
    };
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "legacy", "import", "--tenant", "killed", "--batch-size", "20"],
      { cwd: ROOT, env: { ...process.env, ...env }, stdio: "ignore" },
    );
    const exited = new Promise((resolve) => child.once("exit", resolve));
    try {
      const deadline = Date.now() + 60_000;
      while ((await countStored()) < validCount / 4 && Date.now() < deadline) await sleep(10);
    } finally {
      child.kill("SIGKILL");
      await exited;
    }
    const atKill = await countStored();
    // Killed halfway: some stored, not all (else this test would prove nothing).
    expect(atKill).toBeGreaterThan(0);
    expect(atKill).toBeLessThan(validCount);
    const rest = await importJson("--tenant", "killed");
    expect(rest.messagesStored).toBe(validCount - atKill);
    await expectEveryValidElementOnce("killed", SESSIONS);
  }, 120_000);

  it("writes nothing in a dry run", async () => {
    const dry = await importJson("--tenant", "dry", "--dry-run");
    expect(dry).toMatchObject({ sessions: SESSIONS.length, messagesRead: validCount, messagesStored: 0 });
    expect((await transcripts("dry")).size).toBe(0);
  }, 60_000);

  it("verifies: exit 0 when all agree, 1 naming the session after a legacy element is deleted", async () => {
    const agree = await cli(env, "legacy", "verify");
    expect(agree.code, agree.stdout).toBe(0);
    expect(agree.stdout).toContain(`${SESSIONS.length} sessions checked: ${SESSIONS.length} agree`);
    const sampled = await cli(env, "legacy", "verify", "--sample", "10", "--json");
    expect(JSON.parse(sampled.stdout)).toEqual({ sessions: 10, diverging: [] });

    const changed = SESSIONS.find((session) => session.expected.length > 5) as GeneratedLegacySession;
    const deleted = changed.chatHistory.findIndex((element) => {
      const candidate = element as { role?: unknown; content?: unknown };
      return candidate.role === "user" && typeof candidate.content === "string";
    });
    await db.query(
      "UPDATE swisper_sessions SET chat_history = chat_history - $2::int WHERE session_id = $1",
      [changed.sessionId, deleted],
    );
    const diverge = await cli(env, "legacy", "verify");
    expect(diverge.code).toBe(1);
    expect(diverge.stdout).toContain(`session ${changed.sessionId}:`);
    expect(diverge.stdout).toContain("extra message");
    expect(diverge.stdout).toContain(`${SESSIONS.length - 1} agree, 1 diverge`);
    const one = await cli(env, "legacy", "verify", "--session", changed.sessionId, "--json");
    expect(one.code).toBe(1);
    expect(JSON.parse(one.stdout).diverging[0]).toMatchObject({
      sessionId: changed.sessionId,
      divergences: expect.arrayContaining([{ kind: "extra message", detail: expect.any(String) }]),
    });
  }, 120_000);

  it("refuses a bad command line (exit 2) and an unknown session (exit 1)", async () => {
    const zone = await cli(env, "legacy", "import", "--time-zone", "Mars/Olympus");
    expect(zone.code).toBe(2);
    expect(zone.stderr).toContain("--time-zone 'Mars/Olympus' is not an IANA time zone");
    expect((await cli(env, "legacy", "export")).code).toBe(2);
    expect((await cli(env, "legacy", "verify", "--dry-run")).code).toBe(2);
    const unknown = await cli(env, "legacy", "import", "--session", "no-such-session");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("no session 'no-such-session' in swisper_sessions");
  });

  it("names LEGACY_DATABASE_URL when it is missing", async () => {
    const { LEGACY_DATABASE_URL: _unset, ...without } = env;
    const result = await cli(without, "legacy", "import");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("LEGACY_DATABASE_URL is not set");
  });
});
