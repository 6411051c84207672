import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Environment } from "../../src/cli/command.js";
import { openMemory } from "../../src/cli/open-memory.js";
import { convertArchivedSession, defaultKeyPrefix } from "../../src/legacy/archived.js";
import { connectRedis, type RedisConnection } from "../../src/storage/redis-client.js";
import { cli } from "../cli/run-cli.js";
import { uniqueName, useTestServers } from "../support/servers.js";
import { TEST_REDIS_URL } from "../support/urls.js";

// `swisper-memory legacy import --from langchain-redis|motorhead` against lists written in a real
// Redis exactly as those servers write them (one raw LPUSH per message, their JSON or text), with
// hostile elements mixed in. Judged by the transcript: every valid message once, oldest first.

type Expected = { role: string; content: string }[];

/** LangChain Python's `json.dumps(message_to_dict(message))`. */
function pythonMessage(type: string, content: unknown, extra: Record<string, unknown> = {}): string {
  const data = {
    content,
    additional_kwargs: {},
    response_metadata: {},
    type,
    name: null,
    id: null,
    ...extra,
  };
  return JSON.stringify({ type, data: type === "human" ? { ...data, example: false } : data });
}

/** LangChain JS's `JSON.stringify(mapChatMessagesToStoredMessages([message])[0])`. */
function jsMessage(type: string, content: unknown, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ type, data: { content, additional_kwargs: {}, response_metadata: {}, ...extra } });
}

/** Python and JS alike: the elements in the order the application added them, hostile ones included. */
function langChainHistory(message: typeof pythonMessage): { elements: string[]; expected: Expected } {
  return {
    elements: [
      message("system", "You are Swisper."),
      message("human", "Grüezi, ich suche einen Laptop"),
      message("ai", "Gerne – 予算はいくらですか？ 🚀"),
      "{not json",
      message("banana", "an unknown type"),
      message("human", [{ type: "text", text: "content blocks" }]),
      message(message === pythonMessage ? "chat" : "generic", "a role of its own", { role: "assistant" }),
      message("human", "Максимум 1500 CHF"),
      message("tool", "42", { tool_call_id: "call-1" }),
    ],
    expected: [
      { role: "system", content: "You are Swisper." },
      { role: "user", content: "Grüezi, ich suche einen Laptop" },
      { role: "assistant", content: "Gerne – 予算はいくらですか？ 🚀" },
      { role: "assistant", content: "a role of its own" },
      { role: "user", content: "Максимум 1500 CHF" },
      { role: "tool", content: "42" },
    ],
  };
}

const LANGCHAIN_INVALID = { "bad JSON": 1, "unknown type": 1, "non-string content": 1 };

describe.skipIf(!inject("postgresAvailable") || !inject("redisAvailable"))("legacy import --from", () => {
  const servers = useTestServers();
  const prefix = `${uniqueName("archived")}:`;
  let source: RedisConnection;
  let env: Environment;

  beforeAll(async () => {
    source = await connectRedis({ url: TEST_REDIS_URL });
    env = { DATABASE_URL: servers.database.url ?? "", MEMORY_IDLE_FINALIZE_SECONDS: "0" };
    env.REDIS_URL = TEST_REDIS_URL;
    env.MEMORY_KEY_PREFIX = servers.redis?.keyPrefix ?? "";
  });
  afterAll(async () => {
    const keys = await source.scanKeys(`${prefix}*`);
    if (keys.length > 0) await source.send(["DEL", ...keys]);
    await source.close();
  });

  /** Adds the elements as the libraries do: one LPUSH per message, so the newest is first. */
  async function lpushEach(key: string, elements: string[]): Promise<void> {
    for (const element of elements) await source.send(["LPUSH", key, element], { key });
  }

  async function transcript(tenant: string, sessionId: string): Promise<Expected> {
    const { rows } = await servers.database.db.query<{ role: string; content: string }>(
      `SELECT message ->> 'role' AS role, message ->> 'content' AS content
       FROM memory_messages WHERE tenant = $1 AND session_id = $2 ORDER BY seq`,
      [tenant, sessionId],
    );
    return rows.map((row) => ({ role: row.role, content: row.content }));
  }

  async function importTwice(expectedCount: number, ...args: string[]) {
    const run = async () => {
      const result = await cli(env, "legacy", "import", "--json", "--redis-url", TEST_REDIS_URL, ...args);
      expect(result.code, result.stderr).toBe(0);
      return { totals: JSON.parse(result.stdout) as Record<string, unknown>, stderr: result.stderr };
    };
    const first = await run();
    expect(first.totals, first.stderr + JSON.stringify(first.totals)).toMatchObject({
      messagesStored: expectedCount,
      duplicatesSkipped: 0,
    });
    const second = await run();
    expect(second.totals).toMatchObject({ messagesStored: 0, duplicatesSkipped: expectedCount });
    return first;
  }

  it("imports LangChain Python's lists (message_store: layout) once, oldest first", async () => {
    const keyPrefix = `${prefix}message_store:`;
    const { elements, expected } = langChainHistory(pythonMessage);
    await lpushEach(`${keyPrefix}py-1`, elements);
    await lpushEach(`${keyPrefix}py-2`, [pythonMessage("human", "second session")]);
    const args = [
      "--from",
      "langchain-redis",
      "--layout",
      "python",
      "--key-prefix",
      keyPrefix,
      "--tenant",
      "py",
    ];
    const { totals, stderr } = await importTwice(expected.length + 1, ...args);
    expect(totals).toMatchObject({ sessions: 2, skippedByReason: LANGCHAIN_INVALID });
    expect(stderr).toContain("skipped py-1[3]: bad JSON");
    expect(await transcript("py", "py-1")).toEqual(expected);
    expect(await transcript("py", "py-2")).toEqual([{ role: "user", content: "second session" }]);
  });

  it("imports one session with --session, and exits 1 naming an unknown one", async () => {
    const keyPrefix = `${prefix}one:`;
    await lpushEach(`${keyPrefix}s-1`, [pythonMessage("human", "one"), pythonMessage("ai", "two")]);
    await lpushEach(`${keyPrefix}s-2`, [pythonMessage("human", "not this one")]);
    const args = ["--from", "langchain-redis", "--key-prefix", keyPrefix, "--tenant", "one"];
    const dry = await cli(
      env,
      "legacy",
      "import",
      "--json",
      "--dry-run",
      "--redis-url",
      TEST_REDIS_URL,
      ...args,
    );
    expect(JSON.parse(dry.stdout)).toMatchObject({ sessions: 2, messagesRead: 3, messagesStored: 0 });
    expect(await transcript("one", "s-1")).toEqual([]);
    const { totals } = await importTwice(2, ...args, "--session", "s-1");
    expect(totals).toMatchObject({ sessions: 1 });
    expect(await transcript("one", "s-1")).toEqual([
      { role: "user", content: "one" },
      { role: "assistant", content: "two" },
    ]);
    expect(await transcript("one", "s-2")).toEqual([]);
    const unknown = await cli(
      env,
      "legacy",
      "import",
      "--redis-url",
      TEST_REDIS_URL,
      ...args,
      "--session",
      "s-9",
    );
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`no session 's-9' under key prefix '${keyPrefix}'`);
  });

  it("imports LangChain JS's lists (the session id as key) once, oldest first", async () => {
    const keyPrefix = `${prefix}js:`;
    const { elements, expected } = langChainHistory(jsMessage);
    await lpushEach(`${keyPrefix}js-1`, elements);
    // A string key under the prefix is not a session.
    await source.send(["SET", `${keyPrefix}not-a-list`, "x"], { key: `${keyPrefix}not-a-list` });
    const args = ["--from", "langchain-redis", "--layout", "js", "--key-prefix", keyPrefix, "--tenant", "js"];
    const { totals } = await importTwice(expected.length, ...args);
    expect(totals).toMatchObject({ sessions: 1, skippedByReason: LANGCHAIN_INVALID });
    // LangChain JS keys by the session id itself: the prefix only picks the sessions.
    expect(await transcript("js", `${keyPrefix}js-1`)).toEqual(expected);
  });

  it("imports Motorhead's lists once, oldest first, and keeps its context", async () => {
    const keyPrefix = `${prefix}mh:`;
    const key = `${keyPrefix}mh-1`;
    // Motorhead LPUSHes each POST's messages in one command, then the next POST's.
    await source.send(["LPUSH", key, "Human: Hi, I'm Jim", "AI: Hallo Jim!"], { key });
    await source.send(["LPUSH", key, "no separator here", "Robot: beep", "Human: time: 10:30, 東京"], {
      key,
    });
    await source.send(["LPUSH", key, "AI: Noted: 10:30."], { key });
    await source.send(["SET", `${key}_context`, "Jim asked about times."], { key: `${key}_context` });
    await source.send(["SET", `${key}_tokens`, "42"], { key: `${key}_tokens` });
    const args = ["--from", "motorhead", "--key-prefix", keyPrefix, "--tenant", "mh"];
    const { totals } = await importTwice(4, ...args);
    expect(totals).toMatchObject({
      sessions: 1,
      contextsSaved: 1,
      skippedByReason: { "no role": 1, "unknown role": 1 },
    });
    // Motorhead keys by the session id itself: the prefix only picks the sessions.
    expect(await transcript("mh", key)).toEqual([
      { role: "user", content: "Hi, I'm Jim" },
      { role: "assistant", content: "Hallo Jim!" },
      { role: "user", content: "time: 10:30, 東京" },
      { role: "assistant", content: "Noted: 10:30." },
    ]);
    const opened = await openMemory(env, { tenant: "mh" });
    try {
      expect(await opened.memory.loadContext(key)).toMatchObject({
        session_id: key,
        motorhead_context: "Jim asked about times.",
      });
    } finally {
      await opened.close();
    }
  });

  it("refuses a bad --from, --redis-url or --layout (exit 2, naming the option)", async () => {
    const bad = async (...args: string[]) => {
      const result = await cli(env, "legacy", "import", ...args);
      expect(result.code).toBe(2);
      return result.stderr;
    };
    expect(await bad("--from", "zep")).toContain("--from 'zep' is not one of");
    expect(await bad("--from", "motorhead")).toContain("--redis-url is required");
    expect(await bad("--from", "motorhead", "--redis-url", "http://x:1")).toContain(
      "--redis-url 'http://x:1'",
    );
    expect(await bad("--from", "motorhead", "--redis-url", "nonsense")).toContain("--redis-url 'nonsense'");
    expect(await bad("--from", "langchain-redis", "--redis-url", TEST_REDIS_URL, "--layout", "go")).toContain(
      "--layout 'go'",
    );
    expect(await bad("--redis-url", TEST_REDIS_URL)).toContain("are for --from");
    const verify = await cli(env, "legacy", "verify", "--from", "motorhead", "--redis-url", TEST_REDIS_URL);
    expect(verify.code).toBe(2);
    const away = await cli(
      env,
      "legacy",
      "import",
      "--from",
      "motorhead",
      "--redis-url",
      "redis://127.0.0.1:1",
    );
    expect(away.code).toBe(1);
    expect(away.stderr).toContain("Redis at 127.0.0.1:1 (--redis-url) is unreachable");
  });

  it("knows each layout's default key prefix", () => {
    expect(defaultKeyPrefix("langchain-redis", "python")).toBe("message_store:");
    expect(defaultKeyPrefix("langchain-redis", "js")).toBe("");
    expect(defaultKeyPrefix("motorhead", "python")).toBe("");
  });
});

describe("convertArchivedSession", () => {
  it("keeps LangChain's non-empty fields in metadata and names a tool message's call", () => {
    const session = convertArchivedSession("langchain-redis", "s", [
      jsMessage("ai", "hi", { additional_kwargs: { function_call: { name: "f" } }, name: null }),
      jsMessage("function", "result", { name: "lookup" }),
    ]);
    expect(session.messages.map(({ id: _id, ...message }) => message)).toEqual([
      {
        role: "assistant",
        content: "hi",
        metadata: {
          import_source: "langchain-redis",
          langchain_type: "ai",
          langchain_additional_kwargs: { function_call: { name: "f" } },
        },
      },
      {
        role: "tool",
        content: "result",
        tool_call_id: "lookup",
        metadata: { import_source: "langchain-redis", langchain_type: "function", langchain_name: "lookup" },
      },
    ]);
  });

  it("derives ids from the source, session, position and text only", () => {
    const ids = (source: "motorhead" | "langchain-redis", elements: string[]) =>
      convertArchivedSession(source, "s", elements).messages.map((message) => message.id);
    const [first] = ids("motorhead", ["Human: a"]);
    expect(ids("motorhead", ["Human: a"])).toEqual([first]);
    expect(ids("motorhead", ["Human: a", "Human: a"])[1]).not.toBe(first);
    expect(ids("langchain-redis", [jsMessage("human", "a")])[0]).not.toBe(first);
    expect(first).toMatch(/^legacy:[0-9a-f]{32}$/);
  });
});
