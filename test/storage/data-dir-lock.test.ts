import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DataDirInUseError, ValidationError } from "../../src/errors.js";
import { createMemoryManager } from "../../src/manager/create-memory-manager.js";
import { PgliteDatabase } from "../../src/storage/database.js";

// Before the lock, `serve` and `demo` on one MEMORY_DATA_DIR both "stored" messages and the folder
// then held 1 of 4 (once 0): each process overwrote the other's writes without an error.

const folders: string[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
  for (const folder of folders.splice(0)) await rm(folder, { recursive: true, force: true });
});

async function folder(): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), "swm-lock-"));
  folders.push(path);
  return path;
}

/** A child process that takes the folder (as opening it does) and holds it until killed. */
async function holder(dataDir: string): Promise<ChildProcess> {
  const script = `
    import { lockDataDir } from "./src/storage/data-dir-lock.ts";
    lockDataDir(${JSON.stringify(dataDir)});
    process.stdout.write("ready\\n");
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve());
    child.once("exit", (code) => reject(new Error(`holder exited with ${code}`)));
  });
  return child;
}

// PGlite starts slowly on a loaded 2-core machine.
describe("the embedded database folder has one owner", { timeout: 120_000 }, () => {
  it("refuses a second process at once, naming the folder and the owner, and takes over a dead owner's lock", async () => {
    const dataDir = await folder();
    const child = await holder(dataDir);
    const error = await createMemoryManager({ dataDir, redis: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataDirInUseError);
    expect(String(error)).toContain(dataDir);
    expect(String(error)).toContain(`process ${child.pid}`);
    expect(String(error)).toMatch(/DATABASE_URL/);

    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    const memory = await createMemoryManager({
      dataDir,
      redis: false,
      summarization: { idleFinalizeAfterMs: 0 },
    });
    await memory.addMessage("s", { role: "user", content: "after the owner died" });
    expect((await memory.getContext("s")).message_count).toBe(1);
    await memory.close();
  });

  it("refuses a second open in the same process, and frees the folder on close", async () => {
    const dataDir = await folder();
    const first = new PgliteDatabase({ dataDir });
    await first.query("SELECT 1");
    expect(() => new PgliteDatabase({ dataDir })).toThrow(DataDirInUseError);
    await first.close();
    const second = new PgliteDatabase({ dataDir });
    await second.query("SELECT 1");
    await second.close();
  });

  it("names MEMORY_DATA_DIR when it is a file, not a folder", async () => {
    const path = join(await folder(), "a-file");
    await writeFile(path, "not a folder");
    const error = await createMemoryManager({ env: { MEMORY_DATA_DIR: path }, redis: false }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe("MEMORY_DATA_DIR");
    expect(String(error)).toContain("is not a folder");
  });
});
