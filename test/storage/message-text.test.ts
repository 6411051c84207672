import { readFileSync } from "node:fs";
import { afterAll, beforeAll, expect, it } from "vitest";
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
}

inEveryDatabase("memory_message_text", servers, messageTextSuite);
