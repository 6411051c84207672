import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionRef } from "../../src/buffer/keys.js";
import { type Database, PgliteDatabase, PostgresDatabase } from "../../src/storage/database.js";
import { migrate } from "../../src/storage/migrator.js";
import {
  type AppendTotals,
  type BufferCaps,
  Transcript,
  type TranscriptEntry,
} from "../../src/storage/transcript.js";
import { createTestDatabase, type TestDatabase, uniqueName } from "../support/servers.js";

// A write without Redis answers whether the session needs a summary from the totals its append
// statement reports. Those must be the buffer a read right after the write finds, whatever came
// before: summaries, a cleared buffer, config overrides, caps, other sessions in the same
// statement, and a writer of the same session committing while the append starts.
const CAPS: BufferCaps = { maxMessages: 8, maxTokens: 60 };

function entry(content: string, tokens: number, id?: string): TranscriptEntry {
  const message = id ? { role: "user" as const, content, id } : { role: "user" as const, content };
  return { message, json: JSON.stringify(message), tokens, tokensEstimated: tokens % 5 === 0 };
}

/** What a read after the write says, in the shape the append answers. */
async function totalsRead(transcript: Transcript, ref: SessionRef): Promise<AppendTotals> {
  const snapshot = await transcript.readSnapshot(ref, CAPS, 0);
  return {
    lastSeq: snapshot.lastSeq,
    coveredSeq: snapshot.summary?.last_seq ?? 0,
    configOverrides: snapshot.configOverrides,
    buffer: snapshot.buffer,
  };
}

/** A small deterministic generator, so that a failure replays. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

async function summarize(db: Database, ref: SessionRef, lastSeq: number, version: number): Promise<void> {
  await db.query(
    `INSERT INTO memory_summaries (tenant, session_id, version, summary_text, first_seq, last_seq, tokens)
     VALUES ($1, $2, $3, 'summary', 1, $4, 5)`,
    [ref.tenant, ref.sessionId, version, lastSeq],
  );
}

async function configure(db: Database, ref: SessionRef, config: Record<string, number>): Promise<void> {
  await db.query(
    `INSERT INTO memory_session_configs (tenant, session_id, config, set_keys)
     VALUES ($1, $2, $3::jsonb, ARRAY(SELECT jsonb_object_keys($3::jsonb)))
     ON CONFLICT (tenant, session_id) DO UPDATE SET config = excluded.config, set_keys = excluded.set_keys`,
    [ref.tenant, ref.sessionId, JSON.stringify(config)],
  );
}

function totalsSuite(
  open: () => Promise<{ db: Database; close: () => Promise<void> }>,
  concurrency: number,
): void {
  let db: Database;
  let close: () => Promise<void>;
  let transcript: Transcript;
  beforeAll(async () => {
    ({ db, close } = await open());
    transcript = new Transcript(db, { appendConcurrency: concurrency });
  });
  afterAll(async () => {
    await close();
  });

  it("answers the totals a read after the write finds, through summaries, clears and config", async () => {
    const next = random(7);
    const sessions = Array.from({ length: 4 }, (_, index) => ({
      tenant: "t",
      sessionId: uniqueName(`s${index}`),
    }));
    const versions = new Map<SessionRef, number>();
    let answered = 0;
    let overCaps = 0;
    for (let step = 0; step < 120; step++) {
      const ref = sessions[Math.floor(next() * sessions.length)] as SessionRef;
      const roll = next();
      const last = (await totalsRead(transcript, ref)).lastSeq;
      if (roll < 0.1 && last > 0) {
        const version = (versions.get(ref) ?? 0) + 1;
        versions.set(ref, version);
        await summarize(db, ref, Math.max(1, last - Math.floor(next() * 4)), version);
      } else if (roll < 0.15) {
        await transcript.raiseBufferFloor(ref);
      } else if (roll < 0.2) {
        await configure(db, ref, next() < 0.5 ? { max_buffer_messages: 3 } : { max_buffer_tokens: 20 });
      }
      const entries = Array.from({ length: 1 + Math.floor(next() * (next() < 0.8 ? 3 : 12)) }, (_, index) =>
        entry(`${step}.${index}`, 1 + Math.floor(next() * 15)),
      );
      const { totals } = await transcript.appendEntries(ref, entries, CAPS);
      expect(totals).not.toBeNull();
      expect(totals).toEqual(await totalsRead(transcript, ref));
      answered += 1;
      if ((totals?.lastSeq ?? 0) - (totals?.buffer.count ?? 0) > (totals?.coveredSeq ?? 0)) overCaps += 1;
    }
    // Not vacuous: the caps and the summaries both shaped the answers.
    expect(answered).toBe(120);
    expect(overCaps).toBeGreaterThan(10);
    expect([...versions.values()].some((version) => version > 1)).toBe(true);
  });

  it("answers each session of a shared statement its own totals", async () => {
    const refs = Array.from({ length: 6 }, (_, index) => ({
      tenant: "t",
      sessionId: uniqueName(`shared${index}`),
    }));
    const results = await Promise.all(
      refs.flatMap((ref) =>
        [1, 2].map((call) => transcript.appendEntries(ref, [entry(`${call}`, 7 * call)], CAPS)),
      ),
    );
    expect(transcript.appendStats().batches).toBeLessThan(transcript.appendStats().appends);
    let answered = 0;
    for (const [index, ref] of refs.entries()) {
      // The second append of a session commits in the statement of the first or after it: its
      // totals are the session as it is now (or none, where it started before the first committed).
      const second = results[2 * index + 1]?.totals ?? null;
      if (second === null) continue;
      expect(second).toEqual(await totalsRead(transcript, ref));
      answered += 1;
    }
    expect(answered).toBeGreaterThan(refs.length / 2);
  });

  it("answers a buffer after the summary, the cleared part and within the session's caps", async () => {
    const ref = { tenant: "t", sessionId: uniqueName("bounds") };
    const ten = (from: number) => Array.from({ length: 5 }, (_, index) => entry(`${from + index}`, 2));
    await transcript.appendEntries(ref, ten(1), CAPS);
    await summarize(db, ref, 3, 1);
    expect((await transcript.appendEntries(ref, [entry("6", 2)], CAPS)).totals?.buffer).toEqual({
      count: 3,
      tokens: 6,
      firstSeq: 4,
      estimated: 0,
    });
    await transcript.raiseBufferFloor(ref);
    expect((await transcript.appendEntries(ref, [entry("7", 5)], CAPS)).totals?.buffer).toEqual({
      count: 1,
      tokens: 5,
      firstSeq: 7,
      estimated: 1,
    });
    await configure(db, ref, { max_buffer_messages: 2 });
    const capped = await transcript.appendEntries(ref, ten(8), CAPS);
    expect(capped.totals).toEqual({
      lastSeq: 12,
      coveredSeq: 3,
      configOverrides: { max_buffer_messages: 2 },
      buffer: { count: 2, tokens: 4, firstSeq: 11, estimated: 0 },
    });
  });

  it("answers nothing when every message was already stored", async () => {
    const ref = { tenant: "t", sessionId: uniqueName("again") };
    const first = await transcript.appendEntries(ref, [entry("once", 3, "id-1")], CAPS);
    expect(first.totals?.buffer.count).toBe(1);
    const again = await transcript.appendEntries(ref, [entry("once", 3, "id-1")], CAPS);
    expect(again.seqs[0]?.duplicate).toBe(true);
    expect(again.totals).toBeNull();
  });
}

describe("append totals on PostgreSQL", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });
  totalsSuite(async () => ({ db: database.db, close: async () => {} }), 2);

  it("answers no totals when a writer of the session commits while the append waits for it", async () => {
    const transcript = new Transcript(database.db);
    const ref = { tenant: "t", sessionId: uniqueName("race") };
    await transcript.appendEntries(ref, [entry("first", 4)], CAPS);
    // Another writer of the session takes its row lock and appends a message, as an append does.
    if (!(database.db instanceof PostgresDatabase)) throw new Error("the test database is not PostgreSQL");
    const other = await database.db.pool.connect();
    try {
      await other.query("BEGIN");
      const { rows } = await other.query<{ seq: string }>(
        `UPDATE memory_sessions SET next_seq = next_seq + 1 WHERE tenant = $1 AND session_id = $2
         RETURNING next_seq - 1 AS seq`,
        [ref.tenant, ref.sessionId],
      );
      await other.query(
        `INSERT INTO memory_messages (tenant, session_id, seq, message, tokens)
         VALUES ($1, $2, $3, '{"role":"user","content":"theirs"}', 9)`,
        [ref.tenant, ref.sessionId, rows[0]?.seq],
      );
      let settled = false;
      const mine = transcript.appendEntries(ref, [entry("mine", 4)], CAPS).finally(() => {
        settled = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Not vacuous: the append started before the other writer committed, and waited for it.
      expect(settled).toBe(false);
      await other.query("COMMIT");
      const { seqs, totals } = await mine;
      expect(seqs[0]?.seq).toBe(3);
      const after = await totalsRead(transcript, ref);
      expect(after.buffer.tokens).toBe(4 + 9 + 4);
      // Its snapshot lacked the other writer's message: it must say nothing rather than be wrong.
      expect(totals === null || JSON.stringify(totals) === JSON.stringify(after)).toBe(true);
    } finally {
      other.release();
    }
  });
});

describe("append totals on PGlite", () => {
  totalsSuite(async () => {
    const db = new PgliteDatabase();
    const run = await migrate(db);
    if (run.error) throw run.error;
    return { db, close: () => db.close() };
  }, 1);
});
