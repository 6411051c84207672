import { afterAll, beforeAll, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { uniqueName, useTestServers } from "../support/servers.js";
import { inEveryDatabase, type Opener } from "./deployments.js";

const servers = useTestServers();
const PLANTED = "синий кит плывёт на север";

function searchSuite(open: Opener): void {
  let memory: MemoryManager;
  let other: MemoryManager;
  let close: () => Promise<void>;
  beforeAll(async () => {
    const opened = await open();
    memory = opened.memory.forTenant(uniqueName("search"));
    other = opened.memory.forTenant(uniqueName("search_other"));
    close = opened.close;
    await memory.addMessages(
      "ru",
      [
        { role: "user", content: "Здравствуйте! Мне нужен лёгкий ноутбук." },
        { role: "assistant", content: `Вот история: ${PLANTED}, а потом домой.` },
        { role: "user", content: "東京 タワー の 近く に ある ホテル" },
      ],
      { user_id: "ivan" },
    );
    for (let index = 0; index < 7; index++) {
      await memory.addMessage(`en-${index}`, {
        role: index % 2 === 0 ? "user" : "assistant",
        content: `A light laptop <b>number ${index}</b> & a bag`,
      });
    }
    // The same words in another tenant: never found from this one.
    await other.addMessage("ru", { role: "assistant", content: `Чужая история: ${PLANTED}.` });
  });
  afterAll(async () => {
    await close();
  });

  it("finds a planted phrase in a non-Latin session, with its session, seq and a highlighted snippet", async () => {
    const found = await memory.searchMessages({ q: `"${PLANTED}"` });
    expect(found.next_cursor).toBeNull();
    expect(found.results).toHaveLength(1);
    expect(found.results[0]).toMatchObject({ session_id: "ru", seq: 2, role: "assistant" });
    expect(found.results[0]!.snippet).toContain("<mark>синий</mark>");
    expect(found.results[0]!.snippet).toContain("<mark>север</mark>");
    expect(found.results[0]!.rank).toBeGreaterThan(0);
    const japanese = await memory.searchMessages({ q: "タワー" });
    expect(japanese.results.map((hit) => [hit.session_id, hit.seq])).toEqual([["ru", 3]]);
    // Words in another order are not the phrase.
    expect((await memory.searchMessages({ q: '"север на плывёт"' })).results).toEqual([]);
  });

  it("never returns another tenant's message", async () => {
    const mine = await memory.searchMessages({ q: "история", limit: 100 });
    const theirs = await other.searchMessages({ q: "история", limit: 100 });
    expect(mine.results.map((hit) => hit.snippet)).toEqual([expect.stringContaining("Вот")]);
    expect(theirs.results.map((hit) => hit.snippet)).toEqual([expect.stringContaining("Чужая")]);
  });

  it("filters by session, user and role, and pages with a cursor", async () => {
    expect((await memory.searchMessages({ q: "laptop", role: "user" })).results).toHaveLength(4);
    expect((await memory.searchMessages({ q: "laptop", session_id: "en-3" })).results).toHaveLength(1);
    expect((await memory.searchMessages({ q: "история", user_id: "ivan" })).results).toHaveLength(1);
    expect((await memory.searchMessages({ q: "laptop", user_id: "ivan" })).results).toEqual([]);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await memory.searchMessages({
        q: "light laptop",
        limit: 3,
        ...(cursor ? { cursor } : {}),
      });
      seen.push(...page.results.map((hit) => hit.session_id));
      if (page.next_cursor === null) break;
      cursor = page.next_cursor;
    }
    expect(seen.sort()).toEqual(Array.from({ length: 7 }, (_, index) => `en-${index}`));
  });

  it("escapes the message's own markup in the snippet", async () => {
    const [hit] = (await memory.searchMessages({ q: "number 3" })).results;
    expect(hit!.snippet).toContain("&lt;b&gt;<mark>number</mark>");
    const [bag] = (await memory.searchMessages({ q: "bag", session_id: "en-3" })).results;
    expect(bag!.snippet).toContain("&amp; a <mark>bag</mark>");
    for (const snippet of [hit!.snippet, bag!.snippet]) {
      expect(snippet.replaceAll(/<\/?mark>/g, "")).not.toMatch(/[<>]/);
    }
  });

  it("refuses bad queries, limits and cursors, naming the field", async () => {
    const page = await memory.searchMessages({ q: "laptop", limit: 1 });
    for (const [options, field] of [
      [{ q: "" }, "q"],
      [{ q: "!!! ???" }, "q"],
      [{ q: "x".repeat(1001) }, "q"],
      [{}, "q"],
      [{ q: "laptop", limit: 0 }, "limit"],
      [{ q: "laptop", limit: 101 }, "limit"],
      [{ q: "laptop", role: "robot" }, "role"],
      [{ q: "laptop", cursor: "%%%" }, "cursor"],
      [{ q: "laptop", cursor: Buffer.from('[-1,"x"]').toString("base64url") }, "cursor"],
      // A cursor continues the search it was given for.
      [{ q: "bag", cursor: page.next_cursor }, "cursor"],
    ] as const) {
      const error = await memory.searchMessages(options as never).catch((caught: unknown) => caught);
      expect(error, JSON.stringify(options).slice(0, 60)).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe(field);
    }
  });
}

inEveryDatabase("searchMessages", servers, searchSuite);

it("reads the GIN index on PostgreSQL", async () => {
  if (!servers.database.url) return;
  const { rows } = await servers.database.db.transaction(async (tx) => {
    await tx.query("SET LOCAL enable_seqscan = off");
    return tx.query<{ "QUERY PLAN": string }>(
      `EXPLAIN SELECT m.seq FROM memory_messages m
       WHERE to_tsvector('simple'::regconfig, coalesce(memory_message_text(m.message), ''))
             @@ websearch_to_tsquery('simple'::regconfig, 'laptop')`,
    );
  });
  expect(rows.map((row) => row["QUERY PLAN"]).join("\n")).toContain("memory_messages_search");
});
