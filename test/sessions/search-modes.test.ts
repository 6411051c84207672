import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import { createMemoryManager } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { ApiKeyring } from "../../src/service/index.js";
import { SUBSTRING_SCAN_LIMIT } from "../../src/sessions/substring-search.js";
import { PgliteDatabase } from "../../src/storage/database.js";
import { migrate } from "../../src/storage/migrator.js";
import { call, openTestService, type TestService } from "../service/harness.js";
import { recordingLogger } from "../support/fixtures.js";
import { uniqueName, useTestServers } from "../support/servers.js";
import { inEveryDatabase, type Opener } from "./deployments.js";

const servers = useTestServers();

function modesSuite(open: Opener): void {
  let memory: MemoryManager;
  let other: MemoryManager;
  let close: () => Promise<void>;
  beforeAll(async () => {
    const opened = await open();
    memory = opened.memory.forTenant(uniqueName("modes"));
    other = opened.memory.forTenant(uniqueName("modes_other"));
    close = opened.close;
    await memory.addMessages("ru", [
      { role: "user", content: "Синий кит плывёт на север." },
      { role: "assistant", content: "東京タワーの近くにあるホテル" },
    ]);
    await memory.addMessages("en", [
      { role: "user", content: "I am 100%_sure about the laptops" },
      { role: "user", content: "I am 1000 sure, running late" },
      { role: "user", content: "a back\\slash and <b>bold</b>" },
    ]);
    await other.addMessage("ru", { role: "user", content: "Чужой синий кит плывёт." });
  });
  afterAll(async () => {
    await close();
  });

  it("finds a planted phrase in a non-Latin session in both modes, and no other tenant's", async () => {
    const words = await memory.searchMessages({ q: '"кит плывёт"' });
    const substring = await memory.searchMessages({ q: "ИТ ПЛЫВ", mode: "substring" });
    for (const found of [words, substring]) {
      expect(found.results.map((hit) => [hit.session_id, hit.seq])).toEqual([["ru", 1]]);
      expect(found.scan_limited).toBe(false);
    }
    expect(substring.results[0]!.snippet).toBe("Синий к<mark>ит плыв</mark>ёт на север.");
    // Japanese has no spaces: a part of a run of characters is found by substring only.
    expect((await memory.searchMessages({ q: "タワー", mode: "substring" })).results).toMatchObject([
      { session_id: "ru", seq: 2, snippet: "東京<mark>タワー</mark>の近くにあるホテル" },
    ]);
    expect((await memory.searchMessages({ q: "タワー" })).results).toEqual([]);
    const theirs = await other.searchMessages({ q: "кит плыв", mode: "substring" });
    expect(theirs.results.map((hit) => hit.snippet)).toEqual([expect.stringContaining("Чужой")]);
  });

  it("takes %, _ and \\ literally in substring mode, and escapes the snippet", async () => {
    const hits = async (q: string) =>
      (await memory.searchMessages({ q, mode: "substring" })).results.map((hit) => [hit.session_id, hit.seq]);
    expect(await hits("100%_s")).toEqual([["en", 1]]);
    expect(await hits("0%")).toEqual([["en", 1]]);
    expect(await hits("1_0")).toEqual([]);
    expect(await hits("k\\s")).toEqual([["en", 3]]);
    const [bold] = (await memory.searchMessages({ q: "bold", mode: "substring" })).results;
    expect(bold!.snippet).toBe("a back\\slash and &lt;b&gt;<mark>bold</mark>&lt;/b&gt;");
  });

  it("searches words under another text search configuration (stemming) when asked", async () => {
    expect((await memory.searchMessages({ q: "laptop" })).results).toEqual([]);
    const english = await memory.searchMessages({ q: "laptop run", language: "english" });
    expect(english.results.map((hit) => hit.seq)).toEqual([]);
    expect((await memory.searchMessages({ q: "laptop", language: "english" })).results).toMatchObject([
      { session_id: "en", seq: 1 },
    ]);
  });

  it("refuses a bad mode, language, q, limit or cursor, naming the field", async () => {
    const page = await memory.searchMessages({ q: "sure", mode: "substring", limit: 1 });
    expect(page.next_cursor).not.toBeNull();
    for (const [options, field] of [
      [{ q: "kit", mode: "fuzzy" }, "mode"],
      [{ q: "kit", language: "klingon" }, "language"],
      [{ q: "kit", language: "english; DROP TABLE x" }, "language"],
      [{ q: "%%", mode: "substring" }, "q"],
      [{ q: "kit", mode: "substring", limit: 0 }, "limit"],
      [{ q: "kit", mode: "substring", cursor: "%%%" }, "cursor"],
      // A cursor continues the search it was given for: the same words in the other mode are another.
      [{ q: "sure", cursor: page.next_cursor }, "cursor"],
    ] as const) {
      const error = await memory.searchMessages(options as never).catch((caught: unknown) => caught);
      expect(error, JSON.stringify(options)).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe(field);
    }
  });
}

inEveryDatabase("search modes", servers, modesSuite);

describe("substring search without the trigram index", () => {
  it("reads at most a bounded number of messages and says so", async () => {
    const db = new PgliteDatabase();
    const run = await migrate(db);
    expect(run.error).toBeUndefined();
    await db.query("DROP INDEX memory_messages_substring");
    await db.query(
      `INSERT INTO memory_messages (tenant, session_id, seq, message, tokens)
       SELECT 'bounded', 's' || lpad(n::text, 6, '0'), 1,
              json_build_object('role', 'user', 'content', 'needle ' || n), 3
       FROM generate_series(1, $1::integer + 10) AS n`,
      [SUBSTRING_SCAN_LIMIT],
    );
    const memory = await createMemoryManager({ database: db, redis: false, logger: recordingLogger() });
    try {
      const bounded = memory.forTenant("bounded");
      const found = await bounded.searchMessages({ q: "needle 7", mode: "substring", limit: 3 });
      expect(found.scan_limited).toBe(true);
      expect(found.results.map((hit) => hit.snippet)).toEqual([
        "<mark>needle 7</mark>",
        "<mark>needle 7</mark>0",
        "<mark>needle 7</mark>1",
      ]);
      const one = await bounded.searchMessages({ q: "needle 1", mode: "substring", session_id: "s000001" });
      expect(one.scan_limited).toBe(false);
    } finally {
      await memory.close();
      await db.close();
    }
  }, 120_000);
});

it("reads the trigram index on PostgreSQL", async () => {
  if (!servers.database.url) return;
  const { rows } = await servers.database.db.transaction(async (tx) => {
    await tx.query("SET LOCAL enable_seqscan = off");
    return tx.query<{ "QUERY PLAN": string }>(
      `EXPLAIN SELECT m.seq FROM memory_messages m
       WHERE memory_message_text(m.message) ILIKE '%кит плыв%'`,
    );
  });
  expect(rows.map((row) => row["QUERY PLAN"]).join("\n")).toContain("memory_messages_substring");
});

describe("GET /v1/search modes", () => {
  const KEY = { authorization: "Bearer modes-key-0123456789abcdef" };
  let service: TestService;
  beforeAll(async () => {
    service = await openTestService(servers.database, servers.redis, {
      apiKeys: ApiKeyring.fromPairs([
        { tenant: uniqueName("modes_http"), key: "modes-key-0123456789abcdef" },
      ]),
    });
    await call(service.app, "POST", "/v1/sessions/jp/messages", {
      headers: KEY,
      body: { role: "user", content: "東京タワーの近くにあるホテル" },
    });
  });
  afterAll(async () => {
    await service.close();
  });

  it("searches by substring, and answers 400 naming a bad mode, language, q, limit or cursor", async () => {
    const found = await call(
      service.app,
      "GET",
      `/v1/search?mode=substring&q=${encodeURIComponent("タワー")}`,
      {
        headers: KEY,
      },
    );
    expect(found.statusCode).toBe(200);
    expect(found.json()).toMatchObject({ results: [{ session_id: "jp", seq: 1 }], scan_limited: false });
    for (const [query, field] of [
      ["q=x&mode=fuzzy", "mode"],
      ["q=x&language=klingon", "language"],
      ["q=x&language=a-b", "language"],
      ["q=&mode=substring", "q"],
      ["q=x&mode=substring&limit=1000", "limit"],
      ["q=x&mode=substring&cursor=***", "cursor"],
    ]) {
      const answer = await call(service.app, "GET", `/v1/search?${query}`, { headers: KEY });
      expect(answer.statusCode, query).toBe(400);
      expect(answer.json<{ error: { field: string } }>().error.field, query).toBe(field);
    }
  });
});

it("refuses a search language the database does not have at start-up, naming the variable", async () => {
  const error = await createMemoryManager({
    database: servers.database.db,
    redis: false,
    autoMigrate: false,
    logger: recordingLogger(),
    env: { MEMORY_SEARCH_LANGUAGE: "klingon" },
  }).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(ValidationError);
  expect((error as ValidationError).field).toBe("MEMORY_SEARCH_LANGUAGE");
});
