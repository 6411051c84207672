import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { PostgresLegacyStore } from "../../src/legacy/legacy-store.js";
import { DatabaseConnectError, PostgresDatabase } from "../../src/storage/database.js";
import { useTestServers } from "../support/servers.js";

// The adapter against the legacy table exactly as deployed (swisper_sessions.sql beside this file
// is a copy of the legacy system's definition).

const TABLE_SQL = readFileSync(new URL("./swisper_sessions.sql", import.meta.url), "utf8");

describe.skipIf(!inject("postgresAvailable"))("PostgresLegacyStore", () => {
  const servers = useTestServers();
  let db: PostgresDatabase;
  let store: PostgresLegacyStore;

  beforeAll(async () => {
    db = new PostgresDatabase({ connectionString: servers.database.url, maxConnections: 20 });
    await db.exec(TABLE_SQL);
    store = new PostgresLegacyStore({ database: db, timeZone: "Europe/Zurich" });
  });
  afterAll(async () => {
    await store?.close();
    await db?.close();
  });

  it("appends in the legacy row shape: ISO local timestamps, message_count, last user message", async () => {
    await store.appendMessage("s-shape", { role: "user", content: "Ich suche einen Laptop" });
    const length = await store.appendMessage("s-shape", {
      role: "assistant",
      content: "Gern.",
      extra: { name: "swisper", timestamp: 1700000000 },
    });
    expect(length).toBe(2);
    const history = (await store.readHistory("s-shape")) as Record<string, unknown>[];
    expect(history.map((element) => [element.role, element.content])).toEqual([
      ["user", "Ich suche einen Laptop"],
      ["assistant", "Gern."],
    ]);
    // The legacy code overwrites a caller's timestamp with its own local time.
    for (const element of history)
      expect(element.timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/);
    expect(history[1]?.name).toBe("swisper");
    const { rows } = await db.query<{ message_count: number; last_user_text: string; zurich: boolean }>(
      `SELECT message_count, last_user_text,
              abs(extract(epoch FROM updated_at - (now() AT TIME ZONE 'Europe/Zurich'))) < 60 AS zurich
       FROM swisper_sessions WHERE session_id = 's-shape'`,
    );
    expect(rows[0]).toEqual({ message_count: 2, last_user_text: "Ich suche einen Laptop", zurich: true });
  });

  it("loses none of 20 concurrent appends to one session", async () => {
    await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        store.appendMessage("s-race", { role: "user", content: `m${index}` }),
      ),
    );
    const history = (await store.readHistory("s-race")) as { content: string }[];
    expect(history.map((element) => element.content).sort()).toEqual(
      Array.from({ length: 20 }, (_, index) => `m${index}`).sort(),
    );
    const { rows } = await db.query<{ message_count: number }>(
      "SELECT message_count FROM swisper_sessions WHERE session_id = 's-race'",
    );
    expect(rows[0]?.message_count).toBe(20);
  });

  it("lists newest first, searches case-insensitively, saves and loads the contract context, erases", async () => {
    await store.appendMessage("s-list", { role: "user", content: `${"x".repeat(60)} MacBook` });
    const [newest] = await store.listSessions();
    expect(newest).toMatchObject({ sessionId: "s-list", messageCount: 1, hasContract: false });
    expect(newest?.lastUserText).toHaveLength(48);
    expect(await store.searchMessages("macbook")).toEqual([
      { sessionId: "s-list", index: 0, role: "user", content: `${"x".repeat(60)} MacBook` },
    ]);
    expect(await store.searchMessages("100%_")).toEqual([]);
    const context = {
      session_id: "s-list",
      current_state: "search",
      contract_template: "contracts/laptop.yaml",
    };
    await store.saveContractContext("s-list", context);
    expect(await store.loadContractContext("s-list")).toEqual(context);
    expect(await store.readHistory("s-list")).toHaveLength(1);
    expect(await store.eraseSession("s-list")).toBe(true);
    expect(await store.readHistory("s-list")).toBeNull();
    expect(await store.loadContractContext("s-list")).toBeNull();
  });

  it("appends a batch in order in one statement, with the newest user message as the last", async () => {
    await store.appendMessage("s-batch", { role: "system", content: "Be brief." });
    const length = await store.appendMessages("s-batch", [
      { role: "user", content: "first question" },
      { role: "assistant", content: "an answer" },
      { role: "user", content: "second question" },
      { role: "assistant", content: "another answer" },
    ]);
    expect(length).toBe(5);
    const history = (await store.readHistory("s-batch")) as { content: string }[];
    expect(history.map((element) => element.content)).toEqual([
      "Be brief.",
      "first question",
      "an answer",
      "second question",
      "another answer",
    ]);
    const { rows } = await db.query<{ message_count: number; last_user_text: string }>(
      "SELECT message_count, last_user_text FROM swisper_sessions WHERE session_id = 's-batch'",
    );
    expect(rows[0]).toEqual({ message_count: 5, last_user_text: "second question" });
    // A batch with no user message leaves the last user message as it was.
    await store.appendMessages("s-batch", [{ role: "assistant", content: "anything else?" }]);
    const after = await db.query<{ last_user_text: string }>(
      "SELECT last_user_text FROM swisper_sessions WHERE session_id = 's-batch'",
    );
    expect(after.rows[0]?.last_user_text).toBe("second question");
  });

  it("sets, reads and clears the pending confirmation, with has_contract mirroring it", async () => {
    const product = { name: "Air 13", price_chf: 1299 };
    await store.saveContractContext("s-pending", { session_id: "s-pending", current_state: "confirm" });
    await store.savePendingConfirmation("s-pending", product);
    expect(await store.loadPendingConfirmation("s-pending")).toEqual(product);
    const listed = (await store.listSessions()).find((row) => row.sessionId === "s-pending");
    expect(listed?.hasContract).toBe(true);
    await store.savePendingConfirmation("s-pending", null);
    expect(await store.loadPendingConfirmation("s-pending")).toBeNull();
    const cleared = (await store.listSessions()).find((row) => row.sessionId === "s-pending");
    expect(cleared?.hasContract).toBe(false);
    // The contract context is another key of the same object: untouched.
    expect(await store.loadContractContext("s-pending")).toMatchObject({ current_state: "confirm" });
  });

  it("reads rows a page at a time in session id order", async () => {
    for (const id of ["p-1", "p-2", "p-3"]) await store.appendMessage(id, { role: "user", content: id });
    const first = await store.readSessionsAfter("p-0", 2);
    expect(first.map((row) => row.sessionId)).toEqual(["p-1", "p-2"]);
    const second = await store.readSessionsAfter("p-2", 2);
    expect(second[0]?.sessionId).toBe("p-3");
    expect(second[0]?.createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/);
  });

  it("names LEGACY_DATABASE_URL with the host and port when the server is unreachable", async () => {
    const away = new PostgresLegacyStore({ connectionString: "postgres://postgres@127.0.0.1:1/legacy" });
    const error = await away.readHistory("s").catch((caught: unknown) => caught);
    await away.close();
    expect(error).toBeInstanceOf(DatabaseConnectError);
    expect((error as Error).message).toContain("127.0.0.1:1 (LEGACY_DATABASE_URL)");
  });
});
