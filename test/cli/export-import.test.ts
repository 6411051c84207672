import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openMemory } from "../../src/cli/open-memory.js";
import { startMemoryService } from "../../src/service/index.js";
import { Capture, type CliStorage, cli, cliStorage } from "./run-cli.js";

// `swisper-memory export` and `import`: from one storage into a fresh one and back, byte-equal.

let source: CliStorage;
let target: CliStorage;
let folder: string;

beforeAll(async () => {
  source = await cliStorage("swm-export-cli-");
  target = await cliStorage("swm-import-cli-");
  folder = await mkdtemp(join(tmpdir(), "swm-export-files-"));
  for (const tenant of ["acme", "globex"]) {
    const opened = await openMemory(source.env, { tenant });
    try {
      await opened.memory.addMessages(`${tenant}-chat`, [
        { role: "user", content: `Grüezi from ${tenant} — 你好` },
        { role: "assistant", content: "Hello." },
      ]);
      await opened.memory.setSessionConfig(`${tenant}-chat`, { max_buffer_messages: 40 });
    } finally {
      await opened.close();
    }
  }
});

afterAll(async () => {
  await source.close();
  await target.close();
  await rm(folder, { recursive: true, force: true });
});

describe("swisper-memory export and import", () => {
  it("exports a tenant, imports it into a fresh storage, and exports the same bytes", async () => {
    const exported = await cli(source.env, "export", "--tenant", "acme");
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toContain("Grüezi from acme");
    expect(exported.stdout).not.toContain("globex");
    expect(exported.stderr).toContain("export: 1 sessions, 2 messages");
    const file = join(folder, "acme.jsonl");
    await writeFile(file, exported.stdout);
    const imported = await cli(target.env, "import", file);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stderr).toContain("import: 1 sessions read, 1 imported, 0 unchanged; 2 messages");
    const again = await cli(target.env, "import", file, "--quiet");
    expect(again.stderr).toMatch(
      /^import: 1 sessions read, 0 imported, 1 unchanged; 0 messages and 0 summary versions stored in [\d.]+s\n$/,
    );
    expect((await cli(target.env, "export", "--tenant", "acme", "--quiet")).stdout).toBe(exported.stdout);
    // --tenant maps every session to another tenant.
    expect((await cli(target.env, "import", file, "--tenant", "initech", "--quiet")).code).toBe(0);
    const mapped = await cli(
      target.env,
      "export",
      "--tenant",
      "initech",
      "--session",
      "acme-chat",
      "--quiet",
    );
    expect(mapped.stdout).toBe(exported.stdout.replace('"tenant":"acme"', '"tenant":"initech"'));
  });

  it("a bad line: exit 1 naming the line and field, nothing of its session stored", async () => {
    const exported = (await cli(source.env, "export", "--tenant", "globex", "--quiet")).stdout;
    const file = join(folder, "bad.jsonl");
    await writeFile(file, exported.replace('"tokens_estimated":false', '"tokens_estimated":"no"'));
    const result = await cli(target.env, "import", file, "--quiet");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("line 3: tokens_estimated: ");
    expect((await cli(target.env, "export", "--tenant", "globex", "--quiet")).stdout).not.toContain(
      "globex-chat",
    );
  });

  it("exit codes: an unknown session 1, a missing file 2", async () => {
    expect((await cli(source.env, "export", "--session", "nobody", "--quiet")).code).toBe(1);
    expect((await cli(target.env, "import", join(folder, "missing.jsonl"))).code).toBe(2);
    expect((await cli(target.env, "import")).code).toBe(2);
  });

  it("--url exports one session from a running service and imports into its key's tenant", async () => {
    const key = "export-cli-key-0123456789abcdef";
    const service = await startMemoryService({
      env: {
        ...target.env,
        PORT: "0",
        HOST: "127.0.0.1",
        MEMORY_API_KEYS: `remote:${key}`,
        LOG_LEVEL: "silent",
      },
      logDestination: new Capture(),
      handleSignals: false,
    });
    try {
      const remote = { MEMORY_URL: service.url, MEMORY_API_KEY: key };
      const exported = await cli(source.env, "export", "--tenant", "acme", "--quiet");
      const file = join(folder, "remote.jsonl");
      await writeFile(file, exported.stdout);
      const imported = await cli(remote, "import", file, "--quiet");
      expect(imported.code, imported.stderr).toBe(0);
      expect(imported.stderr).toContain("1 sessions read, 1 imported");
      const back = await cli(remote, "export", "--session", "acme-chat");
      expect(back.code, back.stderr).toBe(0);
      expect(back.stdout).toBe(exported.stdout.replace('"tenant":"acme"', '"tenant":"remote"'));
      expect((await cli(remote, "export", "--session", "nobody")).code).toBe(1);
      expect((await cli(remote, "export")).code).toBe(2);
      expect((await cli(remote, "import", file, "--tenant", "x")).code).toBe(2);
      // The same content again: left alone.
      const same = await cli(remote, "import", join(folder, "acme.jsonl"), "--quiet");
      expect(same.stderr).toContain("0 imported, 1 unchanged");
      await writeFile(file, exported.stdout.replace("Hello.", "Changed."));
      const refused = await cli(remote, "import", file, "--quiet");
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("409 import_conflict");
    } finally {
      await service.stop();
    }
  });
});
