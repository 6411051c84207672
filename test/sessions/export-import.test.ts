import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImportConflictError, ImportLineError } from "../../src/errors.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { createTestDatabase, createTestRedis, uniqueName, useTestServers } from "../support/servers.js";
import { type OpenedMemory, onPglite, onPostgres } from "./deployments.js";

// Export, then import into a fresh database (another deployment): the second export is the same
// bytes as the first. Everything a session has goes through: summarized messages with their
// summary versions and ranges, non-Latin text, metadata, config, SwisperContext, idempotency keys.

const servers = useTestServers();

async function collect(lines: AsyncIterable<string>): Promise<string> {
  let text = "";
  for await (const line of lines) text += `${line}\n`;
  return text;
}

async function* linesOf(text: string): AsyncGenerator<string> {
  for (const line of text.split("\n")) yield line;
}

/** A fresh deployment: its own PostgreSQL database and (where Redis answers) its own key prefix. */
async function freshDeployment(): Promise<{ memory: MemoryManager; close(): Promise<void> }> {
  const database = await createTestDatabase();
  const redis = servers.redis ? await createTestRedis() : undefined;
  const opened = await onPostgres({ database, redis })();
  return {
    memory: opened.memory,
    async close() {
      await opened.close();
      await redis?.cleanup();
      await database.drop();
    },
  };
}

/** Writes sessions with everything an export carries. */
async function fill(memory: MemoryManager): Promise<void> {
  await memory.setSessionConfig("summarized", {
    summary_trigger_tokens: 60,
    max_buffer_tokens: 300,
    keep_recent_tokens: 20,
    max_summary_tokens: 60,
  });
  for (let turn = 0; turn < 14; turn++) {
    await memory.addMessages(
      "summarized",
      [
        { role: "user", content: `Turn ${turn}: I want a light laptop under 1500 CHF.`, id: `u-${turn}` },
        { role: "assistant", content: `Noted (${turn}).`, metadata: { turn, "2": "b", "1": "a" } },
      ],
      { user_id: "user-7" },
    );
  }
  await memory.waitForIdle();
  await memory.summaryStore.addSummary("summarized", "Корректура: Nutzer will einen leichten Laptop.", {
    by: "operator",
  });
  await memory.addMessages("nonlatin", [
    { role: "user", content: "我想买一台轻便的笔记本电脑 — ノートパソコン 🙂", id: "zh-1" },
    { role: "assistant", content: [{ type: "text", text: "Хорошо, бюджет?" }] },
    {
      role: "assistant",
      content: null,
      tool_calls: [
        { id: "call-1", type: "function", function: { name: "search", arguments: '{"q":"läptöp"}' } },
      ],
    },
    { role: "tool", tool_call_id: "call-1", content: "3 results\tläptöp\u0000 (a NUL kept)" },
  ]);
  await memory.updateSession("nonlatin", {
    title: "Ноутбук",
    metadata: { channel: "web", nested: { a: [1, 2] } },
  });
  await memory.saveContext("nonlatin", {
    session_id: "nonlatin",
    current_state: "search",
    preferences: { budget_chf: 1500, wünsche: ["leicht"] },
    zeta: 1,
    alpha: 2,
  });
  await memory.saveContext("context-only", { session_id: "context-only", current_state: "start" });
  await memory.bufferStore.clearBuffer("nonlatin");
}

describe.each([
  ["PostgreSQL (with Redis where it answers)", () => onPostgres(servers)()],
  ["the embedded database (PGlite)", onPglite],
])(
  "export and import, from %s into a fresh PostgreSQL database",
  (_name, open: () => Promise<OpenedMemory>) => {
    let source: OpenedMemory;
    let memory: MemoryManager;
    let first: string;
    beforeAll(async () => {
      source = await open();
      memory = source.memory.forTenant(uniqueName("export"));
      await fill(memory);
      first = await collect(memory.exportSessions());
    });
    afterAll(async () => {
      await source.close();
    });

    it("exports every session with its messages, versions, config and context", () => {
      const lines = first
        .trimEnd()
        .split("\n")
        .map((line) => JSON.parse(line));
      expect(lines[0]).toEqual({ type: "export", format: "swisper-memory-export", version: 1 });
      expect(lines.at(-1)).toEqual({ type: "end", sessions: 3, messages: 32 });
      const sessions = lines.filter((line) => line.type === "session");
      expect(sessions.map((line) => line.session_id)).toEqual(["context-only", "nonlatin", "summarized"]);
      for (const session of sessions) expect(session.tenant).toBe(memory.tenant);
      const summaries = lines.filter((line) => line.type === "summary");
      expect(summaries.length).toBeGreaterThan(1);
      expect(summaries.at(-1)).toMatchObject({
        summary_text: "Корректура: Nutzer will einen leichten Laptop.",
      });
      expect(lines.find((line) => line.type === "config")).toMatchObject({
        session_id: "summarized",
        config: {
          summary_trigger_tokens: 60,
          max_buffer_tokens: 300,
          keep_recent_tokens: 20,
          max_summary_tokens: 60,
        },
      });
      expect(lines.find((line) => line.type === "message" && line.session_id === "nonlatin")).toMatchObject({
        seq: 1,
        idempotency_key: "zh-1",
        message: { content: "我想买一台轻便的笔记本电脑 — ノートパソコン 🙂" },
      });
      expect(sessions.find((line) => line.session_id === "nonlatin")).toMatchObject({
        title: "Ноутбук",
        metadata: { channel: "web", nested: { a: [1, 2] } },
        buffer_floor_seq: 4,
      });
    });

    it("imports into a fresh database; exporting that gives the same bytes; importing twice stores nothing twice", async () => {
      const target = await freshDeployment();
      try {
        const into = target.memory.forTenant(memory.tenant);
        const totals = await into.importSessions(linesOf(first));
        expect(totals).toEqual({
          sessions: 3,
          sessions_imported: 3,
          sessions_unchanged: 0,
          messages_imported: 32,
          summaries_imported: totals.summaries_imported,
        });
        expect(await collect(into.exportSessions())).toBe(first);
        const again = await into.importSessions(linesOf(first));
        expect(again).toMatchObject({
          sessions: 3,
          sessions_imported: 0,
          sessions_unchanged: 3,
          messages_imported: 0,
        });
        expect(await collect(into.exportSessions())).toBe(first);
        // The restored session reads as the original: buffer, summary, transcript, listing.
        for (const id of ["summarized", "nonlatin"]) {
          const [before, after] = await Promise.all([memory.getContext(id), into.getContext(id)]);
          expect(after.buffer_messages).toEqual(before.buffer_messages);
          expect(after.summary).toEqual(before.summary);
          expect(await into.getSession(id)).toEqual(await memory.getSession(id));
        }
        expect(await into.loadContext("nonlatin")).toEqual(await memory.loadContext("nonlatin"));
        // An idempotency key keeps working after the restore.
        const [resent] = await into.addMessages("summarized", { role: "user", content: "again", id: "u-3" });
        expect(resent).toMatchObject({ duplicate: true, seq: 7 });
      } finally {
        await target.close();
      }
    });
  },
);

describe("import into another tenant, conflicts and bad lines", () => {
  let source: OpenedMemory;
  let memory: MemoryManager;
  let exported: string;
  beforeAll(async () => {
    source = await onPostgres(servers)();
    memory = source.memory.forTenant(uniqueName("src"));
    await memory.addMessages("a", [
      { role: "user", content: "hello" },
      { role: "assistant", content: "hi" },
    ]);
    await memory.addMessage("b", { role: "user", content: "other" });
    exported = await collect(memory.exportSessions());
  });
  afterAll(async () => {
    await source.close();
  });

  it("one session's export; another tenant's sessions never appear", async () => {
    const other = source.memory.forTenant(uniqueName("other"));
    await other.addMessage("a", { role: "user", content: "secret of the other tenant" });
    const one = await collect(memory.exportSession("a"));
    expect(one).not.toContain("secret");
    expect(
      one
        .trimEnd()
        .split("\n")
        .map((line) => JSON.parse(line).type),
    ).toEqual(["export", "session", "message", "message", "end"]);
    expect(await collect(memory.exportSessions())).not.toContain("secret");
    expect(await collect(memory.exportSession("none"))).toBe(
      '{"type":"export","format":"swisper-memory-export","version":1}\n{"type":"end","sessions":0,"messages":0}\n',
    );
  });

  it("maps sessions to the importing tenant; keepTenants keeps the file's", async () => {
    const target = source.memory.forTenant(uniqueName("dst"));
    expect(await target.importSessions(linesOf(exported))).toMatchObject({ sessions_imported: 2 });
    expect((await target.getTranscript("a")).messages.map((message) => message.content)).toEqual([
      "hello",
      "hi",
    ]);
    const renamed = (await collect(target.exportSessions())).replaceAll(
      `"tenant":"${target.tenant}"`,
      `"tenant":"${memory.tenant}"`,
    );
    expect(renamed).toBe(exported);
    // Into the file's own tenant, where the sessions are: the same content, nothing written.
    expect(await source.memory.importSessions(linesOf(exported), { keepTenants: true })).toMatchObject({
      sessions_unchanged: 2,
    });
  });

  it("refuses a session that exists with other content, changing nothing", async () => {
    const target = source.memory.forTenant(uniqueName("conflict"));
    await target.addMessage("b", { role: "user", content: "different" });
    const error = await target.importSessions(linesOf(exported)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ImportConflictError);
    expect((error as ImportConflictError).sessionId).toBe("b");
    expect((error as ImportConflictError).line).toBe(5);
    // Session a, before the conflict, was imported; b is as it was.
    expect((await target.getTranscript("b")).messages.map((message) => message.content)).toEqual([
      "different",
    ]);
    expect((await target.getTranscript("a")).messages).toHaveLength(2);
  });

  it("names the line and field of a bad line, and stores nothing of its session", async () => {
    const lines = exported.trimEnd().split("\n");
    const bad = async (edit: (lines: string[]) => string[], line: number, field: string) => {
      const target = source.memory.forTenant(uniqueName("bad"));
      const error = await target
        .importSessions(linesOf(edit([...lines]).join("\n")))
        .catch((caught: unknown) => caught);
      expect(error, field).toBeInstanceOf(ImportLineError);
      expect((error as ImportLineError).line, field).toBe(line);
      expect((error as ImportLineError).field, field).toBe(field);
      expect((error as ImportLineError).message).toContain(`line ${line}: ${field}: `);
      expect(await target.getSession("a"), field).toBeNull();
      expect((await target.getTranscript("a")).messages, field).toEqual([]);
    };
    const patch = (index: number, change: (line: Record<string, unknown>) => void) => (all: string[]) => {
      const line = JSON.parse(all[index] as string);
      change(line);
      all[index] = JSON.stringify(line);
      return all;
    };
    await bad(
      patch(3, (line) => ((line.message as Record<string, unknown>).role = "robot")),
      4,
      "message.role",
    );
    await bad(
      patch(2, (line) => (line.seq = 5)),
      3,
      "seq",
    );
    await bad(
      patch(1, (line) => (line.message_count = 3)),
      2,
      "message_count",
    );
    await bad(
      patch(0, (line) => (line.version = 2)),
      1,
      "version",
    );
    await bad(
      patch(2, (line) => (line.created_at = "yesterday")),
      3,
      "created_at",
    );
    await bad(
      patch(3, (line) => (line.session_id = "b")),
      4,
      "session_id",
    );
    await bad((all) => all.map((line, index) => (index === 2 ? "{not json" : line)), 3, "json");
    await bad((all) => all.slice(0, 4), 5, "type");
    await bad(
      patch(2, (line) => (line.type = "note")),
      3,
      "type",
    );
    const twice = (all: string[]) => {
      const lines = all.map((line) => JSON.parse(line));
      lines[2].idempotency_key = "k";
      lines[3].idempotency_key = "k";
      return lines.map((line) => JSON.stringify(line));
    };
    await bad(twice, 4, "idempotency_key");
    // What a write refuses, an import refuses too (the default limits: 256 KiB of content, 512 KiB
    // a message as stored), though the line itself is far within what an import reads.
    await bad(
      patch(2, (line) => ((line.message as Record<string, unknown>).content = "x".repeat(256 * 1024 + 1))),
      3,
      "message.content",
    );
    await bad(
      patch(
        3,
        (line) => ((line.message as Record<string, unknown>).metadata = { blob: "y".repeat(600 * 1024) }),
      ),
      4,
      "message",
    );
  });
});

describe("export and import across page boundaries", () => {
  let source: OpenedMemory;
  beforeAll(async () => {
    source = await onPostgres(servers)();
  });
  afterAll(async () => {
    await source.close();
  });

  it("a 2,500-message session and 450 sessions with only a context, each once and in order", async () => {
    const memory = source.memory.forTenant(uniqueName("pages"));
    for (let start = 0; start < 2500; start += 500) {
      const batch = Array.from({ length: 500 }, (_, index) => ({
        role: "user" as const,
        content: `Message ${start + index}`,
      }));
      await memory.addMessages("long", batch);
    }
    // Context-only sessions, written in one statement: more than one page of session ids.
    await source.db.query(
      `INSERT INTO memory_context_snapshots (tenant, session_id, context)
       SELECT $1, 'ctx-' || lpad(i::text, 4, '0'), json_build_object('session_id', 'ctx-' || lpad(i::text, 4, '0'))
       FROM generate_series(1, 450) AS i`,
      [memory.tenant],
    );
    const exported = await collect(memory.exportSessions());
    const lines = exported
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line));
    const sessions = lines.filter((line) => line.type === "session").map((line) => line.session_id);
    expect(sessions).toHaveLength(451);
    expect(sessions).toEqual([...new Set(sessions)].sort());
    const seqs = lines.filter((line) => line.type === "message").map((line) => line.seq);
    expect(seqs).toEqual(Array.from({ length: 2500 }, (_, index) => index + 1));
    const target = source.memory.forTenant(uniqueName("pages-to"));
    expect(await target.importSessions(linesOf(exported))).toMatchObject({
      sessions_imported: 451,
      messages_imported: 2500,
    });
    const again = (await collect(target.exportSessions())).replaceAll(
      `"tenant":"${target.tenant}"`,
      `"tenant":"${memory.tenant}"`,
    );
    expect(again).toBe(exported);
  });
});
