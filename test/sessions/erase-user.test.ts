import { afterAll, beforeAll, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import type { Database } from "../../src/storage/database.js";
import { uniqueName, useTestServers } from "../support/servers.js";
import { SESSION_TABLES } from "../support/session-tables.js";
import { inEveryDatabase, type Opener } from "./deployments.js";

const servers = useTestServers();

/** Rows of the tenant's sessions in every table of the system of record, by table. */
async function rowsOf(
  db: Database,
  tenant: string,
  sessions: readonly string[],
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of SESSION_TABLES) {
    const { rows } = await db.query<{ n: string | number }>(
      `SELECT count(*) AS n FROM ${table} WHERE tenant = $1 AND session_id = ANY($2::text[])`,
      [tenant, sessions],
    );
    counts[table] = Number(rows[0]?.n ?? 0);
  }
  return counts;
}

/** The Redis keys of the tenant's sessions (none without Redis). */
async function redisKeysOf(tenant: string, sessions: readonly string[]): Promise<string[]> {
  if (!servers.redis) return [];
  const keys = await servers.redis.redis.scanKeys(`${servers.redis.keyPrefix}:*`);
  return keys.filter((key) => sessions.some((session) => key.includes(`{${tenant}:${session}}`)));
}

function eraseUserSuite(open: Opener): void {
  let memory: MemoryManager;
  let db: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    const opened = await open();
    memory = opened.memory.forTenant(uniqueName("erase"));
    db = opened.db;
    close = opened.close;
  });
  afterAll(async () => {
    await close();
  });

  it("erases every session of the user in every tier, and nothing else", async () => {
    const hers = ["her-1", "her-2", "her-3"];
    for (const [index, session] of hers.entries()) {
      await memory.setSessionConfig(session, {
        summary_trigger_tokens: 60,
        max_buffer_tokens: 300,
        keep_recent_tokens: 20,
      });
      await memory.addMessages(
        session,
        Array.from({ length: 6 + index }, (_, turn) => ({
          role: "user" as const,
          content: `Turn ${turn}: a laptop please`,
        })),
        { user_id: "ada" },
      );
      await memory.saveContext(session, { session_id: session, current_state: "search" });
      await memory.summaryStore.addSummary(session, "She wants a laptop.");
      await memory.getContext(session);
    }
    await memory.addMessages("his", { role: "user", content: "Mine stays" }, { user_id: "bob" });
    await memory.addMessage("nobodys", { role: "user", content: "Mine too" });
    const otherTenant = memory.forTenant(uniqueName("erase_other"));
    await otherTenant.addMessages(
      "her-1",
      { role: "user", content: "Another tenant's ada" },
      { user_id: "ada" },
    );
    await memory.waitForIdle();
    const before = await rowsOf(db, memory.tenant, hers);
    expect(before.memory_messages).toBe(6 + 7 + 8);
    expect(before.memory_context_snapshots).toBe(3);

    expect(await memory.eraseUser("ada")).toEqual({
      user_id: "ada",
      sessions_erased: 3,
      messages_erased: 21,
    });

    expect(await rowsOf(db, memory.tenant, hers)).toEqual(
      Object.fromEntries(SESSION_TABLES.map((table) => [table, 0])),
    );
    expect(await redisKeysOf(memory.tenant, hers)).toEqual([]);
    for (const session of hers) {
      expect(await memory.getSession(session)).toBeNull();
      expect((await memory.getContext(session)).buffer_messages).toEqual([]);
      expect(await memory.loadContext(session)).toBeNull();
    }
    expect((await memory.listSessions({ user_id: "ada" })).sessions).toEqual([]);
    expect((await memory.searchMessages({ q: "laptop" })).results).toEqual([]);
    // Other users' and other tenants' sessions stay.
    expect((await memory.listSessions()).sessions.map((session) => session.session_id).sort()).toEqual([
      "his",
      "nobodys",
    ]);
    expect((await otherTenant.getSession("her-1"))?.user_id).toBe("ada");
    // Again: nothing left to erase.
    expect(await memory.eraseUser("ada")).toEqual({ user_id: "ada", sessions_erased: 0, messages_erased: 0 });
  });

  it("refuses a bad user id", async () => {
    const error = await memory.eraseUser("").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe("user_id");
  });
}

inEveryDatabase("eraseUser", servers, eraseUserSuite);
