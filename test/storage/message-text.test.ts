import { readFileSync } from "node:fs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { seededRandom } from "../../src/cli/chat-workload.js";
import type { Database } from "../../src/storage/database.js";
import { inEveryDatabase, type Opener } from "../sessions/deployments.js";
import { useTestServers } from "../support/servers.js";

// memory_message_text is what both search indexes and the session listing read of a message.
// Migration 015 rewrote it in PL/pgSQL without rebuilding those indexes, which is sound only if
// it answers exactly what migration 014's SQL body answered, for every shape a message can take.
const servers = useTestServers();

/**
 * Migration 014's body of memory_message_text, read from its file, as a scalar subquery over
 * `message` (the function's parameter, here a column of the query).
 */
function bodyOf014(): string {
  const file = readFileSync(
    new URL("../../src/storage/migrations/014_message_text_nul.sql", import.meta.url),
    "utf8",
  );
  const definition = file.slice(file.indexOf("FUNCTION memory_message_text(message json)"));
  const body = /AS \$\$([\s\S]*?)\$\$/.exec(definition)?.[1];
  if (!body?.includes("string_agg")) throw new Error("memory_message_text's body not found in migration 014");
  return `(${body})`;
}

const MESSAGES: unknown[] = [
  { role: "user", content: "plain text" },
  { role: "user", content: "" },
  { role: "assistant", content: "  spaced\n\tout  " },
  { role: "user", content: "nul\u0000here and\u0000\u0000twice" },
  { role: "assistant", content: "a literal \\u0000 and \\\\\u0000 stays" },
  { role: "user", content: "日本語のテキスト、スペースなし" },
  { role: "user", content: [{ type: "text", text: "one part" }] },
  {
    role: "user",
    content: [
      { type: "text", text: "first" },
      { type: "image_url", image_url: { url: "https://example.com/a.png" } },
      { type: "text", text: "second\u0000part" },
    ],
  },
  { role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/b.png" } }] },
  { role: "user", content: [] },
  { role: "user", content: [{ type: "text" }] },
  { role: "tool", content: null },
  { role: "user", content: 42 },
  { role: "user", content: { text: "an object" } },
  { role: "user" },
];

function messageTextSuite(open: Opener): void {
  let db: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    const opened = await open();
    db = opened.db;
    close = opened.close;
  });
  afterAll(async () => {
    await close();
  });

  it("answers what migration 014's SQL body answered, for every shape of message", async () => {
    const { rows } = await db.query<{ json: string; now: string | null; before: string | null }>(
      `SELECT json, memory_message_text(message) AS now, ${bodyOf014()} AS before
       FROM unnest($1::text[]) AS json CROSS JOIN LATERAL (SELECT json::json AS message) AS parsed`,
      [MESSAGES.map((message) => JSON.stringify(message))],
    );
    expect(rows).toHaveLength(MESSAGES.length);
    for (const row of rows)
      expect({ json: row.json, text: row.now }).toEqual({ json: row.json, text: row.before });
    // Not vacuous: the shapes give texts, nulls and the NUL-stripped text alike.
    const texts = rows.map((row) => row.now);
    expect(texts).toContain("first secondpart");
    expect(texts).toContain("nulhere andtwice");
    expect(texts.filter((text) => text === null).length).toBeGreaterThan(3);
  });

  // The append statement keeps a session's title and preview from memory_user_head (migration
  // 016), the start of the text on one line, not the whole of it: both must be what the whole
  // text's line (memory_user_text, which the listing's backfill reads) gives.
  it("gives memory_user_head the title and preview of the whole text, for every kind of text", async () => {
    const messages = [...MESSAGES, ...generatedMessages(400)];
    const { rows } = await db.query<{
      json: string;
      whole: string | null;
      head: string | null;
      title_whole: string | null;
      title_head: string | null;
      preview_whole: string | null;
      preview_head: string | null;
      is_start: boolean | null;
      long_prefix: boolean;
    }>(
      `SELECT json, whole, head,
              memory_title(whole) AS title_whole, memory_title(head) AS title_head,
              memory_preview(whole) AS preview_whole, memory_preview(head) AS preview_head,
              starts_with(whole, head) AS is_start,
              coalesce(length(memory_one_line(left(memory_message_text(message), 80))) < 65
                AND length(whole) >= 65, false) AS long_prefix
       FROM unnest($1::text[]) AS json
       CROSS JOIN LATERAL (SELECT json::json AS message) AS parsed
       CROSS JOIN LATERAL (SELECT memory_user_text(message) AS whole, memory_user_head(message) AS head) AS texts`,
      [messages.map((message) => JSON.stringify(message))],
    );
    expect(rows).toHaveLength(messages.length);
    for (const row of rows) {
      const seen = {
        json: row.json,
        null: row.head === null,
        title: row.title_head,
        preview: row.preview_head,
        start: row.head === null || row.is_start,
      };
      expect(seen).toEqual({
        json: row.json,
        null: row.whole === null,
        title: row.title_whole,
        preview: row.preview_whole,
        start: true,
      });
    }
    // Not vacuous: short and long lines, no line, and texts whose first 80 characters make fewer
    // than 65 on one line (the head then reads further) are all among them.
    expect(rows.filter((row) => row.whole === null).length).toBeGreaterThan(20);
    expect(
      rows.filter((row) => (row.whole?.length ?? 0) > 65 && row.head !== row.whole).length,
    ).toBeGreaterThan(50);
    expect(rows.filter((row) => row.long_prefix).length).toBeGreaterThan(20);
  });
}

const WHITESPACE = [" ", "  ", "\t", "\n", "\n\n", " \r\n ", "\u00a0", "\u2003", "\u3000", "\f\v"];
const WORDS = ["a", "chat", "Überraschung", "日本語", "😀emoji", "x".repeat(70), "end.", "nul\u0000byte"];

/** Messages of every role and length, whose texts mix words with runs of every kind of space. */
function generatedMessages(count: number): unknown[] {
  const random = seededRandom(16);
  const next = (n: number) => Math.floor(random() * n);
  const text = () => {
    const pieces: string[] = [];
    const parts = next(4) === 0 ? next(4) : next(60) + next(300);
    for (let i = 0; i < parts; i++) {
      // Now and then a long run of whitespace, so that a cut can fall inside it.
      if (next(25) === 0) pieces.push((WHITESPACE[next(WHITESPACE.length)] as string).repeat(next(120) + 1));
      else pieces.push(next(3) === 0 ? (WHITESPACE[next(WHITESPACE.length)] as string) : " ");
      pieces.push(WORDS[next(WORDS.length)] as string);
    }
    return pieces.join("");
  };
  return Array.from({ length: count }, () => {
    const role = ["user", "user", "user", "assistant"][next(4)];
    const content =
      next(5) === 0
        ? [
            { type: "text", text: text() },
            { type: "image_url", image_url: { url: "u" } },
            { type: "text", text: text() },
          ]
        : text();
    return { role, content };
  });
}

inEveryDatabase("memory_message_text", servers, messageTextSuite);
