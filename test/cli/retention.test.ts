import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Environment } from "../../src/cli/command.js";
import { openMemory } from "../../src/cli/open-memory.js";
import { type CliStorage, cli, cliStorage } from "./run-cli.js";

// `swisper-memory retention sweep`, on the storage an environment names.

let storage: CliStorage;
let env: Environment;

/** Makes the sessions look idle for `days` (the sweep judges updated_at). */
async function age(sessions: readonly string[], days: number): Promise<void> {
  const opened = await openMemory(env);
  try {
    await opened.db.query(
      "UPDATE memory_sessions SET updated_at = now() - $2::integer * interval '1 day' WHERE session_id = ANY($1::text[])",
      [sessions, days],
    );
  } finally {
    await opened.close();
  }
}

beforeAll(async () => {
  storage = await cliStorage("swm-retention-cli-");
  env = storage.env;
  const opened = await openMemory(env);
  try {
    for (const session of ["short", "plain", "recent"]) {
      await opened.memory.addMessages(session, [
        { role: "user", content: `Hello from ${session}` },
        { role: "assistant", content: "Hi" },
      ]);
    }
    await opened.memory.setSessionConfig("short", { retention_days: 1 });
  } finally {
    await opened.close();
  }
  await age(["short", "plain"], 3);
});

afterAll(async () => {
  await storage.close();
});

describe("swisper-memory retention sweep", () => {
  it("counts with --dry-run, then erases exactly the sessions idle past their retention", async () => {
    expect(await cli(env, "retention", "sweep", "--dry-run")).toMatchObject({
      code: 0,
      stdout: "would erase 1 sessions (2 messages)\n",
    });
    expect(await cli(env, "retention", "sweep", "--json")).toMatchObject({
      code: 0,
      stdout: `${JSON.stringify({ sessions_erased: 1, messages_erased: 2, dry_run: false, ran: true })}\n`,
    });
    // The tenant default now: "plain" is 3 days idle, "recent" was just written.
    const withDefault = { ...env, MEMORY_RETENTION_DAYS: "2" };
    expect(await cli(withDefault, "retention", "sweep")).toMatchObject({
      code: 0,
      stdout: "erased 1 sessions (2 messages)\n",
    });
    const left = await cli(env, "sessions", "--json");
    expect(
      left.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line).session_id),
    ).toEqual(["recent"]);
  });

  it("refuses an unknown subcommand and a bad MEMORY_RETENTION_DAYS, naming it", async () => {
    const unknown = await cli(env, "retention", "purge");
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain("purge");
    const bad = await cli({ ...env, MEMORY_RETENTION_DAYS: "soon" }, "retention", "sweep");
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("MEMORY_RETENTION_DAYS");
  });
});
