import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionRef } from "../../src/buffer/keys.js";
import { ValidationError } from "../../src/errors.js";
import { type Database, PgliteDatabase } from "../../src/storage/database.js";
import { GroupCommit } from "../../src/storage/group-commit.js";
import { migrate } from "../../src/storage/migrator.js";
import { Transcript, type TranscriptEntry } from "../../src/storage/transcript.js";
import type { ChatMessage } from "../../src/types.js";
import { createTestDatabase, type TestDatabase, uniqueName } from "../support/servers.js";

function entry(content: string, id?: string): TranscriptEntry {
  const message: ChatMessage = id ? { role: "user", content, id } : { role: "user", content };
  return { message, json: JSON.stringify(message), tokens: 4, tokensEstimated: false };
}

async function storedContents(db: Database, ref: SessionRef): Promise<{ seq: number; content: string }[]> {
  const { rows } = await db.query<{ seq: number; content: string }>(
    `SELECT seq, message->>'content' AS content FROM memory_messages
     WHERE tenant = $1 AND session_id = $2 ORDER BY seq`,
    [ref.tenant, ref.sessionId],
  );
  return rows.map((row) => ({ seq: Number(row.seq), content: row.content }));
}

/** An append that holds the only slot while the test queues the appends that must share a batch. */
function occupy(transcript: Transcript): Promise<unknown> {
  return transcript.append({ tenant: "t", sessionId: uniqueName("blocker") }, [entry("first")]);
}

/**
 * Concurrent appends of many sessions: all stored, each session's seqs 1..n without holes, each
 * append's messages consecutive and in order, the seqs returned equal to the rows stored.
 */
async function appendConcurrently(db: Database, transcript: Transcript): Promise<void> {
  const sessions = Array.from({ length: 24 }, (_, index) => ({
    tenant: index % 3 === 0 ? "other" : "t",
    sessionId: uniqueName(`s${index}`),
  }));
  const appends = sessions.flatMap((ref) =>
    Array.from({ length: 6 }, (_, call) => {
      const entries = Array.from({ length: 1 + (call % 3) }, (_, part) =>
        entry(`${ref.sessionId}/${call}/${part}`),
      );
      return transcript.append(ref, entries).then((seqs) => ({ ref, call, entries, seqs }));
    }),
  );
  const results = await Promise.all(appends);
  for (const ref of sessions) {
    const rows = await storedContents(db, ref);
    const mine = results.filter((result) => result.ref === ref);
    const total = mine.reduce((sum, result) => sum + result.entries.length, 0);
    expect(rows.map((row) => row.seq)).toEqual(Array.from({ length: total }, (_, index) => index + 1));
    for (const { call, entries, seqs } of mine) {
      expect(seqs.map((seq) => seq.duplicate)).toEqual(entries.map(() => false));
      seqs.forEach((seq, part) => {
        expect(seq.seq).toBe(seqs[0]!.seq + part);
        expect(rows[seq.seq - 1]!.content).toBe(`${ref.sessionId}/${call}/${part}`);
      });
    }
  }
}

describe("Transcript appends (group commit)", () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  it("commits concurrent appends of many sessions in shared statements, every seq in place", async () => {
    const transcript = new Transcript(database.db, { appendConcurrency: 2 });
    await appendConcurrently(database.db, transcript);
    const { batches, appends } = transcript.appendStats();
    expect(appends).toBe(24 * 6);
    // Two in flight at most: the rest left in shared statements.
    expect(batches).toBeLessThan(appends / 2);
  });

  it("stores a key that two appends of one batch both carry once, the second as a duplicate", async () => {
    const transcript = new Transcript(database.db, { appendConcurrency: 1 });
    const ref = { tenant: "t", sessionId: uniqueName("dup") };
    const elsewhere = { tenant: "t", sessionId: uniqueName("dup-other") };
    const blocker = occupy(transcript);
    const [first, second, other] = await Promise.all([
      transcript.append(ref, [entry("once", "msg-1"), entry("after")]),
      transcript.append(ref, [entry("once again", "msg-1")]),
      transcript.append(elsewhere, [entry("same key, other session", "msg-1")]),
      blocker,
    ]);
    expect(transcript.appendStats().batches).toBe(2);
    expect(first).toEqual([
      { seq: 1, duplicate: false },
      { seq: 2, duplicate: false },
    ]);
    expect(second).toEqual([{ seq: 1, duplicate: true }]);
    expect(other).toEqual([{ seq: 1, duplicate: false }]);
    expect(await storedContents(database.db, ref)).toEqual([
      { seq: 1, content: "once" },
      { seq: 2, content: "after" },
    ]);
    // Across batches the stored row answers: the retried write is a duplicate too.
    expect(await transcript.append(ref, [entry("retried", "msg-1")])).toEqual([{ seq: 1, duplicate: true }]);
  });

  it("fails only the append the server rejects; the others of its batch are stored", async () => {
    const transcript = new Transcript(database.db, { appendConcurrency: 1 });
    const good = { tenant: "t", sessionId: uniqueName("good") };
    // PostgreSQL text cannot hold a NUL character: the server rejects the whole statement.
    const bad = { tenant: "t", sessionId: `bad\u0000${uniqueName("nul")}` };
    const blocker = occupy(transcript);
    const outcomes = await Promise.allSettled([
      transcript.append(good, [entry("one")]),
      transcript.append(bad, [entry("never")]),
      transcript.append(good, [entry("two")]),
      blocker,
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual([
      "fulfilled",
      "rejected",
      "fulfilled",
      "fulfilled",
    ]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: "22021" });
    expect((await storedContents(database.db, good)).map((row) => row.content)).toEqual(["one", "two"]);
  });

  it("never deadlocks when concurrent batches touch the same sessions in opposite orders", async () => {
    const transcript = new Transcript(database.db, { appendConcurrency: 4 });
    const a = { tenant: "t", sessionId: uniqueName("a") };
    const b = { tenant: "t", sessionId: uniqueName("b") };
    const rounds = 40;
    for (let round = 0; round < rounds; round++) {
      const [x, y] = round % 2 === 0 ? [a, b] : [b, a];
      await Promise.all([
        transcript.append(x, [entry(`${round}x`)]),
        transcript.append(y, [entry(`${round}y`)]),
        transcript.append(y, [entry(`${round}y2`)]),
        transcript.append(x, [entry(`${round}x2`)]),
      ]);
    }
    expect((await storedContents(database.db, a)).map((row) => row.seq)).toEqual(
      Array.from({ length: rounds * 2 }, (_, index) => index + 1),
    );
    expect((await storedContents(database.db, b)).length).toBe(rounds * 2);
  });

  it("rejects a concurrency or batch size below one with a typed error", () => {
    expect(() => new Transcript(database.db, { appendConcurrency: 0 })).toThrow(ValidationError);
    const commit = async (items: readonly number[]) => items;
    const options = { commit, weight: () => 1, sharedFailure: () => true };
    expect(() => new GroupCommit({ ...options, maxBatchWeight: 0 })).toThrow(ValidationError);
    expect(() => new GroupCommit({ ...options, concurrency: 1.5 })).toThrow(ValidationError);
  });

  it("commits an item heavier than a whole batch, alone", async () => {
    const batches: number[][] = [];
    const group = new GroupCommit({
      commit: async (items: readonly number[]) => {
        batches.push([...items]);
        return items;
      },
      weight: (item: number) => item,
      maxBatchWeight: 10,
      sharedFailure: () => true,
    });
    expect(await Promise.all([group.submit(25), group.submit(3)])).toEqual([25, 3]);
    expect(batches.flat()).toEqual([25, 3]);
    expect(batches.every((batch) => batch.length > 0)).toBe(true);
  });
});

describe("Transcript appends on PGlite (one statement at a time)", () => {
  let db: PgliteDatabase;

  beforeAll(async () => {
    db = new PgliteDatabase();
    const run = await migrate(db);
    if (run.error) throw run.error;
  });
  afterAll(async () => {
    await db.close();
  });

  it("keeps every seq in place while appends share statements", async () => {
    const transcript = new Transcript(db, { appendConcurrency: 1 });
    await appendConcurrently(db, transcript);
    expect(transcript.appendStats().batches).toBeLessThan(24 * 6);
  });
});
