import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import { createMemoryManager } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager, SessionPage } from "../../src/manager/memory-manager.js";
import type { SessionOrder } from "../../src/schemas/sessions.js";
import { PgliteDatabase } from "../../src/storage/database.js";
import { migrate } from "../../src/storage/migrator.js";
import { recordingLogger } from "../support/fixtures.js";
import { uniqueName, useTestServers } from "../support/servers.js";

const servers = useTestServers();

async function openOn(
  database: PgliteDatabase | typeof servers.database.db,
  redis = false,
): Promise<MemoryManager> {
  return createMemoryManager({
    database,
    redis: redis && servers.redis ? servers.redis.redis : false,
    ...(redis && servers.redis ? { keyPrefix: servers.redis.keyPrefix } : {}),
    logger: recordingLogger(),
    autoMigrate: false,
    summarization: { idleFinalizeAfterMs: 0 },
  });
}

/** Every page of a listing, in order. */
async function listAll(
  memory: MemoryManager,
  order: SessionOrder,
  limit: number,
): Promise<SessionPage["sessions"]> {
  const all: SessionPage["sessions"] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await memory.listSessions({ order, limit, ...(cursor ? { cursor } : {}) });
    all.push(...page.sessions);
    if (page.next_cursor === null) return all;
    cursor = page.next_cursor;
  }
}

const LONG_QUESTION =
  "I want to buy a light laptop for university, ideally under 1500 CHF, with a long battery life and a good keyboard";

/** What every deployment lists alike: the embedded database, and PostgreSQL with Redis. */
function listingSuite(open: () => Promise<MemoryManager>): void {
  let memory: MemoryManager;
  beforeAll(async () => {
    memory = (await open()).forTenant(uniqueName("list"));
  });
  afterAll(async () => {
    await memory.close();
  });

  it("lists each session with its title, last user message, counts and flags", async () => {
    await memory.addMessages("a", [
      { role: "system", content: "You help people choose laptops." },
      { role: "user", content: `  ${LONG_QUESTION}  ` },
      { role: "assistant", content: "What is your budget?" },
    ]);
    await memory.addMessage("a", {
      role: "user",
      content: [{ type: "text", text: "Under 1500 CHF, and light. Also it should have a matte screen." }],
    });
    await memory.saveContext("a", { session_id: "a", current_state: "search" });
    await memory.addMessage("b", { role: "assistant", content: "Hello!" });
    await memory.summaryStore.addSummary("b", "A greeting.");
    const { sessions, next_cursor } = await memory.listSessions();
    expect(next_cursor).toBeNull();
    expect(sessions.map((session) => session.session_id)).toEqual(["b", "a"]);
    const [b, a] = sessions;
    expect(a).toMatchObject({
      title: "I want to buy a light laptop for university, ideally under 1500",
      user_id: null,
      message_count: 4,
      last_user_message: "Under 1500 CHF, and light. Also it should have a",
      has_summary: false,
      has_context: true,
    });
    expect(a!.title!.length).toBeLessThanOrEqual(64);
    expect(a!.last_user_message).toHaveLength(48);
    expect(Date.parse(a!.updated_at)).toBeGreaterThanOrEqual(Date.parse(a!.created_at));
    expect(b).toMatchObject({ title: null, last_user_message: null, message_count: 1, has_summary: true });
    // The first user message stays the title; a later one does not replace it.
    await memory.addMessage("a", { role: "user", content: "Another question" });
    const again = await memory.listSessions({ order: "updated_desc" });
    expect(again.sessions[0]).toMatchObject({
      session_id: "a",
      title: a!.title,
      last_user_message: "Another question",
    });
  });

  it("takes the title and preview from user messages with text, skipping blank ones in a batch", async () => {
    await memory.addMessages("blanks", [
      { role: "user", content: " \n\t " },
      { role: "assistant", content: "Did you mean to ask something?" },
      { role: "user", content: "Which   laptop\nis lightest?" },
      { role: "user", content: "Thanks, and under 1000?" },
      { role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/a.png" } }] },
      { role: "user", content: "   " },
    ]);
    const session = await memory.getSession("blanks");
    expect(session).toMatchObject({
      title: "Which laptop is lightest?",
      last_user_message: "Thanks, and under 1000?",
    });
  });

  it("pages through a listing with cursors, in both orders, and filters by update time", async () => {
    const other = memory.forTenant(uniqueName("paged"));
    for (let index = 0; index < 7; index++)
      await other.addMessage(`s${index}`, { role: "user", content: `q ${index}` });
    const created = await listAll(other, "created_desc", 3);
    expect(created.map((session) => session.session_id)).toEqual(["s6", "s5", "s4", "s3", "s2", "s1", "s0"]);
    await other.addMessage("s0", { role: "user", content: "back again" });
    const updated = await listAll(other, "updated_desc", 2);
    expect(updated.map((session) => session.session_id)).toEqual(["s0", "s6", "s5", "s4", "s3", "s2", "s1"]);
    const since = await other.listSessions({ updated_since: updated[0]!.updated_at });
    expect(since.sessions.map((session) => session.session_id)).toContain("s0");
    expect(since.sessions.length).toBeLessThan(7);
    const future = await other.listSessions({ updated_since: "2999-01-01T00:00:00Z" });
    expect(future).toEqual({ sessions: [], next_cursor: null });
  });

  it("never lists another tenant's sessions", async () => {
    const mine = memory.forTenant(uniqueName("mine"));
    const theirs = memory.forTenant(uniqueName("theirs"));
    await mine.addMessage("shared-id", { role: "user", content: "mine" });
    await theirs.addMessage("shared-id", { role: "user", content: "theirs" });
    await theirs.addMessage("only-theirs", { role: "user", content: "theirs" });
    const { sessions } = await mine.listSessions();
    expect(sessions.map((session) => [session.session_id, session.last_user_message])).toEqual([
      ["shared-id", "mine"],
    ]);
  });

  it("refuses bad cursors and limits, naming the field", async () => {
    const bad = async (options: Record<string, unknown>, field: string) => {
      const error = await memory.listSessions(options as never).catch((caught: unknown) => caught);
      expect(error, JSON.stringify(options)).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe(field);
    };
    await bad({ limit: 0 }, "limit");
    await bad({ limit: 101 }, "limit");
    await bad({ limit: 2.5 }, "limit");
    await bad({ cursor: "not a cursor!" }, "cursor");
    await bad({ cursor: Buffer.from("[1,2]").toString("base64url") }, "cursor");
    await bad({ cursor: Buffer.from('["c","yesterday","a"]').toString("base64url") }, "cursor");
    await bad({ order: "oldest" }, "order");
    await bad({ updated_since: "yesterday" }, "updated_since");
    const page = await memory.listSessions({ limit: 1, order: "created_desc" });
    expect(page.next_cursor).not.toBeNull();
    // A cursor continues the order it was given for.
    await bad({ cursor: page.next_cursor, order: "updated_desc" }, "cursor");
  });
}

describe("listSessions on PostgreSQL (with Redis where it answers)", () => {
  listingSuite(() => openOn(servers.database.db, true));

  it("pages stay exact over 2,000 sessions while writes go on (created_desc: no duplicate, no gap)", async () => {
    const memory = (await openOn(servers.database.db, true)).forTenant(uniqueName("many"));
    try {
      const ids = Array.from({ length: 2000 }, (_, index) => `s-${String(index).padStart(4, "0")}`);
      for (let start = 0; start < ids.length; start += 200) {
        await Promise.all(
          ids
            .slice(start, start + 200)
            .map((id) => memory.addMessage(id, { role: "user", content: `hello ${id}` })),
        );
      }
      let writing = true;
      let written = 0;
      const writer = (async () => {
        while (writing) {
          const id = ids[Math.floor(Math.random() * ids.length)]!;
          await Promise.all([
            memory.addMessage(id, { role: "user", content: `more ${written}` }),
            memory.addMessage(`new-${written}`, { role: "user", content: "new" }),
          ]);
          written++;
        }
      })();
      const created = await listAll(memory, "created_desc", 37);
      const updated = await listAll(memory, "updated_desc", 41);
      writing = false;
      await writer;
      expect(written, "writes went on while the listings paged").toBeGreaterThan(0);
      for (const listing of [created, updated]) {
        const seen = listing.map((session) => session.session_id);
        expect(new Set(seen).size, "no session repeats").toBe(seen.length);
      }
      const createdIds = new Set(created.map((session) => session.session_id));
      expect(
        ids.filter((id) => !createdIds.has(id)),
        "no session of before the listing is skipped",
      ).toEqual([]);
      for (let index = 1; index < created.length; index++) {
        expect(created[index - 1]!.created_at >= created[index]!.created_at).toBe(true);
      }
      // A page reads one index range in order: no sort of the tenant's sessions.
      await servers.database.db.query("ANALYZE memory_sessions");
      for (const column of ["created_at", "updated_at"]) {
        const { rows } = await servers.database.db.query<{ "QUERY PLAN": string }>(
          `EXPLAIN SELECT session_id FROM memory_sessions s WHERE s.tenant = '${memory.tenant}'
             AND (s.${column}, s.session_id) < (now(), 'z') ORDER BY s.${column} DESC, s.session_id DESC LIMIT 21`,
        );
        const plan = rows.map((row) => row["QUERY PLAN"]).join("\n");
        expect(plan).toMatch(/Index (Only )?Scan using memory_sessions_by_(created|updated)/);
        expect(plan).not.toMatch(/Sort/);
      }
    } finally {
      await memory.close();
    }
  }, 120_000);
});

describe("listSessions on the embedded database (PGlite)", () => {
  listingSuite(async () => {
    const db = new PgliteDatabase();
    const run = await migrate(db);
    if (run.error) throw run.error;
    const memory = await openOn(db);
    const close = memory.close.bind(memory);
    memory.close = async () => {
      await close();
      await db.close();
    };
    return memory;
  });
});
