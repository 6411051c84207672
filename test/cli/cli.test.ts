import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Environment } from "../../src/cli/command.js";
import { COMMANDS } from "../../src/cli/main.js";
import { openMemory } from "../../src/cli/open-memory.js";
import { type CliStorage, cli, cliStorage } from "./run-cli.js";

// The operator commands, run in-process against the storage an environment names (the test's
// own PostgreSQL database and Redis key prefix, or an embedded database in a temporary folder).

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

let storage: CliStorage;
let env: Environment;

beforeAll(async () => {
  storage = await cliStorage("swm-cli-");
  env = storage.env;
});

afterAll(async () => {
  await storage.close();
});

/** Writes a session through the library (a closed manager, so the command opens its own). */
async function seed(sessionId: string, tenant = "default"): Promise<void> {
  const opened = await openMemory(env, { tenant });
  try {
    const { memory } = opened;
    // Low enough that summaries are written, with the newest messages kept in the buffer.
    await memory.setSessionConfig(sessionId, {
      summary_trigger_tokens: 150,
      max_buffer_tokens: 600,
      keep_recent_tokens: 70,
      max_summary_tokens: 80,
    });
    for (let turn = 0; turn < 6; turn++) {
      await memory.addMessages(sessionId, [
        { role: "user", content: `Turn ${turn}: I am looking for a light laptop under 1500 CHF.` },
        { role: "assistant", content: `Turn ${turn}: the ThinkPad X1 Carbon weighs 1.12 kg.` },
      ]);
    }
    await memory.waitForIdle();
  } finally {
    await opened.close();
  }
}

describe("swisper-memory", () => {
  it("lists every command with --help, and exits 2 without one or with an unknown one", async () => {
    const help = await cli(env, "--help");
    expect(help.code).toBe(0);
    for (const name of ["serve", "migrate", "inspect", "stats", "clear", "bench", "demo"]) {
      expect(help.stdout).toContain(`  ${name} `);
    }
    expect((await cli(env)).code).toBe(2);
    const unknown = await cli(env, "frobnicate");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("Unknown command 'frobnicate'");
  });

  it.each(COMMANDS.map((command) => command.name))("%s --help prints its usage", async (name) => {
    for (const flag of ["--help", "-h"]) {
      const result = await cli(env, name, flag);
      expect(result.code).toBe(0);
      expect(result.stdout.startsWith(`Usage: swisper-memory ${name}`)).toBe(true);
    }
  });

  it("answers a bad command line with its usage and exit code 2", async () => {
    const missing = await cli(env, "inspect");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("missing argument");
    expect(missing.stderr).toContain("Usage: swisper-memory inspect");
    expect((await cli(env, "stats", "--colour")).code).toBe(2);
    expect((await cli(env, "bench", "--sessions", "many")).code).toBe(2);
  });

  it("runs as a program (the bin entry)", async () => {
    const { stdout } = await run(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "inspect", "--help"],
      {
        cwd: ROOT,
      },
    );
    expect(stdout).toContain("Usage: swisper-memory inspect <session>");
  });

  it("stops quietly when its reader does (demo | head -1)", async () => {
    const { stdout, stderr } = await run(
      "sh",
      ["-c", `${process.execPath} --import tsx src/cli/main.ts --help | head -1`],
      { cwd: ROOT },
    );
    expect(stdout).toBe("swisper-memory: session memory for LLM chat applications\n");
    expect(stderr).not.toContain("EPIPE");
  });
});

describe("migrate", () => {
  it("reports every migration applied", async () => {
    const result = await cli(env, "migrate");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^(applied|already-applied)\s+001_initial/m);
  });
});

describe("inspect", () => {
  beforeAll(async () => {
    await seed("cli-inspect");
  });

  it("prints availability, breakers, buffer info and messages, summaries and config", async () => {
    const result = await cli(env, "inspect", "cli-inspect");
    expect(result.code).toBe(0);
    const out = result.stdout;
    expect(out).toContain("Session 'cli-inspect' (tenant 'default')");
    expect(out).toMatch(/Memory available:\s+yes/);
    expect(out).toContain("Circuit breakers:  this command's own (--url shows a running service's)");
    expect(out).toMatch(/\n {2}postgres\s+(CLOSED|OPEN|HALF_OPEN) \(\d+ failures/);
    expect(out).toMatch(/Buffer info:\n\s+message_count\s+\d+/);
    expect(out).toMatch(/#12 assistant \(\d+ tokens\): Turn 5: the ThinkPad X1 Carbon weighs 1.12 kg./);
    expect(out).toMatch(/Current summary \(version \d+, covers seq 1\.\.\d+, \d+ tokens\):/);
    expect(out).toMatch(/Summary history \(newest \d+\):\n\s+v\d+\s+seq 1\.\./);
    expect(out).toMatch(/Session config:\n\s+summary_trigger_tokens\s+150/);
    expect(out).toContain(
      storage.redis ? "Redis:             connected" : "Redis:             not configured",
    );
  });

  it("prints one JSON object with --json, bounded by --messages and --history", async () => {
    const result = await cli(env, "inspect", "cli-inspect", "--json", "--messages", "2", "--history", "1");
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      available: boolean;
      buffer_messages: { seq: number }[];
      summary_history: unknown[];
      circuit_breakers: { name: string; state: string }[];
      session_config: { summary_trigger_tokens: number };
    };
    expect(report.available).toBe(true);
    expect(report.buffer_messages.map((message) => message.seq)).toEqual([11, 12]);
    expect(report.summary_history).toHaveLength(1);
    expect(report.circuit_breakers.map((breaker) => breaker.name).sort()).toEqual(
      storage.redis ? ["postgres", "redis", "summarizer"] : ["postgres", "summarizer"],
    );
    expect(report.session_config.summary_trigger_tokens).toBe(150);
  });

  it("shows no Redis breaker when no Redis is configured (not a 'closed, 0 failures' one)", async () => {
    const withoutRedis = { ...env, REDIS_URL: undefined, MEMORY_KEY_PREFIX: undefined };
    const result = await cli(withoutRedis, "inspect", "cli-inspect", "--json");
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { redis: string; circuit_breakers: { name: string }[] };
    expect(report.redis).toBe("not configured");
    expect(report.circuit_breakers.map((breaker) => breaker.name).sort()).toEqual(["postgres", "summarizer"]);
  });

  it("looks in the named tenant only; a session without memory exits 1, as clear and HTTP's 404", async () => {
    const result = await cli(env, "inspect", "cli-inspect", "--tenant", "someone-else");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("session 'cli-inspect' (tenant 'someone-else') has no memory");
    const stats = await cli(env, "stats", "cli-inspect", "--tenant", "someone-else");
    expect(stats.code).toBe(1);
    expect(stats.stderr).toContain("has no memory");
  });

  it("refuses an empty --tenant rather than reading the default tenant", async () => {
    const result = await cli(env, "inspect", "cli-inspect", "--tenant", "");
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^swisper-memory inspect: invalid tenant: /);
    expect(result.stderr).not.toMatch(/tenant: tenant:/);
  });
});

describe("stats", () => {
  beforeAll(async () => {
    await seed("cli-stats", "stats-tenant");
  });

  it("prints one session's statistics", async () => {
    const text = await cli(env, "stats", "cli-stats", "--tenant", "stats-tenant");
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/Buffer:\n/);
    expect(text.stdout).toMatch(/Summaries:\n\s+summary_count\s+[1-9]/);
    const json = await cli(env, "stats", "cli-stats", "--tenant", "stats-tenant", "--json");
    expect(JSON.parse(json.stdout)).toMatchObject({ session_id: "cli-stats", buffer: { last_seq: 12 } });
  });

  it("prints the whole store's figures by tenant", async () => {
    const result = await cli(env, "stats", "--json");
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      tenants: { tenant: string; sessions: number; messages: number; summaries: number }[];
      redis_configured: boolean;
      redis: { available: boolean; used_memory: number | null };
    };
    const tenant = report.tenants.find((row) => row.tenant === "stats-tenant");
    expect(tenant).toMatchObject({ sessions: 1, messages: 12 });
    expect(tenant!.summaries).toBeGreaterThan(0);
    expect(report.redis_configured).toBe(storage.redis);
    if (storage.redis) expect(report.redis.used_memory).toBeGreaterThan(0);
    const text = await cli(env, "stats");
    expect(text.stdout).toMatch(/stats-tenant\s+1\s+12\s+\d+/);
  });
});

describe("clear", () => {
  it("erases a session everywhere with --yes, and exits 1 when there is nothing to erase", async () => {
    await seed("cli-clear");
    const result = await cli(env, "clear", "cli-clear", "--yes");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^erased session 'cli-clear' \(tenant 'default'\): 12 messages, \d+ summar(y|ies)/,
    );
    const after = await cli(env, "inspect", "cli-clear", "--json");
    expect(after.code).toBe(1);
    const again = await cli(env, "clear", "cli-clear", "--yes");
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("has no memory");
  });

  it("refuses to erase without --yes when nobody can confirm", async () => {
    await seed("cli-keep");
    const result = await cli(env, "clear", "cli-keep");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("pass --yes");
    const still = await cli(env, "inspect", "cli-keep", "--json");
    expect(JSON.parse(still.stdout)).toMatchObject({ buffer_info: { last_seq: 12 } });
  });
});

describe("bench", () => {
  it("prints p50/p95/p99 of writes and context reads, shows progress, and erases its sessions", async () => {
    const result = await cli(env, "bench", "--sessions", "3", "--turns", "4", "--concurrency", "2", "--json");
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      write: { n: number; p50: number; p95: number; p99: number };
      read: { n: number; p99: number };
      operations_per_second: number;
    };
    expect(report.write.n).toBe(3 * 4 * 2);
    expect(report.read.n).toBe(3 * 4);
    expect(report.write.p50).toBeLessThanOrEqual(report.write.p95);
    expect(report.write.p95).toBeLessThanOrEqual(report.write.p99);
    expect(report.operations_per_second).toBeGreaterThan(0);
    expect(result.stderr).toMatch(/bench \[#+\] 100% 12\/12/);
    const stats = JSON.parse((await cli(env, "stats", "--json")).stdout) as { tenants: { tenant: string }[] };
    expect(stats.tenants.map((row) => row.tenant)).not.toContain("swisper-bench");

    const table = await cli(env, "bench", "--sessions", "1", "--turns", "2");
    expect(table.stdout).toMatch(/operation\s+n\s+p50 ms\s+p95 ms\s+p99 ms/);
    expect(table.stdout).toMatch(/context read\s+2\s+[\d.]+\s+[\d.]+\s+[\d.]+/);

    const kept = await cli(
      env,
      "bench",
      "--sessions",
      "2",
      "--turns",
      "1",
      "--keep",
      "--tenant",
      "kept-bench",
    );
    const ids = /kept 2 sessions of tenant 'kept-bench': (\S+) (\S+)/.exec(kept.stdout);
    expect(ids).not.toBeNull();
    const one = await cli(env, "inspect", ids![1]!, "--tenant", "kept-bench", "--json");
    expect(JSON.parse(one.stdout)).toMatchObject({ buffer_info: { last_seq: 2 } });
  });
});
