import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Environment } from "../../src/cli/command.js";
import { openMemory } from "../../src/cli/open-memory.js";
import { type RunningService, startMemoryService } from "../../src/service/index.js";
import { Capture, type CliStorage, cli, cliStorage } from "./run-cli.js";

// `swisper-memory sessions`, on the storage an environment names and through a running service.

const KEY = "acme-sessions-cli-key-0123456789abcdef";
let storage: CliStorage;
let env: Environment;

beforeAll(async () => {
  storage = await cliStorage("swm-sessions-cli-");
  env = storage.env;
  for (const tenant of ["default", "acme"]) {
    const opened = await openMemory(env, { tenant });
    try {
      for (let index = 0; index < 3; index++) {
        await opened.memory.addMessage(`${tenant}-${index}`, {
          role: "user",
          content: `Question ${index} of ${tenant}`,
        });
      }
    } finally {
      await opened.close();
    }
  }
});

afterAll(async () => {
  await storage.close();
});

describe("swisper-memory sessions", () => {
  it("lists the tenant's sessions, newest first, with the next page's cursor", async () => {
    const first = await cli(env, "sessions", "--limit", "2", "--order", "created_desc");
    expect(first.code).toBe(0);
    const lines = first.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain("default-2");
    expect(lines[0]).toContain("1 msgs  Question 2 of default");
    const cursor = /next cursor: (\S+)/.exec(first.stderr)?.[1];
    expect(cursor).toBeDefined();
    const next = await cli(
      env,
      "sessions",
      "--limit",
      "2",
      "--order",
      "created_desc",
      "--cursor",
      cursor!,
      "--json",
    );
    expect(next.code).toBe(0);
    expect(
      next.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line).session_id),
    ).toEqual(["default-0"]);
    expect(next.stderr).toBe("");
  });

  it("--all follows every page; --tenant chooses the tenant", async () => {
    const all = await cli(env, "sessions", "--all", "--limit", "1", "--tenant", "acme", "--json");
    expect(all.code).toBe(0);
    expect(
      all.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line).session_id)
        .sort(),
    ).toEqual(["acme-0", "acme-1", "acme-2"]);
  });

  it("refuses bad options (exit 2) and bad cursors (exit 1, naming the field)", async () => {
    expect((await cli(env, "sessions", "--limit", "0")).code).toBe(2);
    expect((await cli(env, "sessions", "--order", "oldest")).code).toBe(2);
    const bad = await cli(env, "sessions", "--cursor", "nonsense");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("invalid cursor");
  });

  it("search prints the tenant's hits, with the next page's cursor; --json prints JSON Lines", async () => {
    const found = await cli(env, "search", "question", "--limit", "2");
    expect(found.code).toBe(0);
    const lines = found.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^default-\d #1 user: <mark>Question<\/mark> \d of default$/);
    const cursor = /next cursor: (\S+)/.exec(found.stderr)?.[1];
    const rest = await cli(env, "search", "question", "--limit", "2", "--cursor", cursor!, "--json");
    expect(
      rest.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line).session_id),
    ).toHaveLength(1);
    const acme = await cli(env, "search", "acme", "--tenant", "acme", "--session", "acme-1", "--json");
    expect(
      acme.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line).session_id),
    ).toEqual(["acme-1"]);
    expect((await cli(env, "search")).code).toBe(2);
    const bad = await cli(env, "search", "!!!");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("invalid q");
  });

  it("--url asks a running service, whose key decides the tenant", async () => {
    const service: RunningService = await startMemoryService({
      env: { ...env, PORT: "0", HOST: "127.0.0.1", MEMORY_API_KEYS: `acme:${KEY}`, LOG_LEVEL: "silent" },
      logDestination: new Capture(),
      handleSignals: false,
    });
    try {
      const remote = { MEMORY_URL: service.url, MEMORY_API_KEY: KEY };
      const listed = await cli(
        remote,
        "sessions",
        "--all",
        "--limit",
        "2",
        "--order",
        "created_desc",
        "--json",
      );
      expect(listed.code).toBe(0);
      expect(
        listed.stdout
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line).session_id),
      ).toEqual(["acme-2", "acme-1", "acme-0"]);
      expect((await cli(remote, "sessions", "--tenant", "other")).code).toBe(2);
      const hits = await cli(remote, "search", "question", "--json");
      expect(
        hits.stdout
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line).session_id)
          .sort(),
      ).toEqual(["acme-0", "acme-1", "acme-2"]);
      const bad = await cli(remote, "sessions", "--cursor", "nonsense");
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain("cursor");
    } finally {
      await service.stop();
    }
  });
});
