import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SessionRecords } from "../../src/storage/session-records.js";
import { Transcript } from "../../src/storage/transcript.js";
import { createTestDatabase, type TestDatabase, uniqueName } from "../support/servers.js";

// An erase racing a writer that holds the session row (an append, an outbox replay): before the
// erase locked the row first, its one DELETE statement took its snapshot, then waited for the row,
// and left the writer's messages behind once it committed (the fault suite saw 20 erased messages
// come back after an erase during an outbox replay, 1 session in 50).

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database.drop();
});

async function waitUntilBlocked(admin: pg.Client, query: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await admin.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
      [`%${query}%`],
    );
    if (rows[0]!.n > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error("the erase never waited for the session row");
}

describe.skipIf(!inject("postgresAvailable"))("erasing a session", () => {
  it("removes what a writer holding the session row commits while the erase waits for it", async () => {
    const ref = { tenant: "t", sessionId: uniqueName("erase") };
    const entry = (content: string) => {
      const message = { role: "user" as const, content };
      return { message, json: JSON.stringify(message), tokens: 5, tokensEstimated: false };
    };
    await new Transcript(database.db).append(ref, [entry("one"), entry("two")]);

    const writer = new pg.Client({ connectionString: database.url });
    const admin = new pg.Client({ connectionString: database.url });
    await writer.connect();
    await admin.connect();
    try {
      await writer.query("BEGIN");
      await writer.query("SELECT 1 FROM memory_sessions WHERE tenant = $1 AND session_id = $2 FOR UPDATE", [
        ref.tenant,
        ref.sessionId,
      ]);
      await writer.query(
        `INSERT INTO memory_messages (tenant, session_id, seq, message, tokens) VALUES ($1, $2, 3, '{"role":"user","content":"three"}', 5)`,
        [ref.tenant, ref.sessionId],
      );
      const erasing = new SessionRecords(database.db).erase(ref);
      await waitUntilBlocked(admin, "memory_sessions");
      await writer.query("COMMIT");
      await erasing;
      const { rows } = await admin.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM memory_messages WHERE tenant = $1 AND session_id = $2",
        [ref.tenant, ref.sessionId],
      );
      expect(rows[0]!.n).toBe(0);
    } finally {
      await writer.end();
      await admin.end();
    }
  });
});
