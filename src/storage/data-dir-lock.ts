import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { DataDirInUseError, ValidationError } from "../errors.js";

/** The file in an embedded database folder that names the process owning it. */
export const LOCK_FILE = "swisper-memory.lock";

interface LockRecord {
  pid: number;
  host: string;
  started: string;
}

/**
 * Makes this process the one owner of an embedded database folder. PGlite keeps the database in
 * the process's memory and writes the folder back on its own schedule: two processes on one folder
 * each overwrite the other's writes, and messages are lost without an error. So a second process
 * fails at once, naming the folder and the owner; a lock left by a process that is gone is taken
 * over. Returns the function that releases the lock (also released when the process exits).
 */
export function lockDataDir(dataDir: string, variable = "MEMORY_DATA_DIR"): () => void {
  const folder = resolve(dataDir);
  ensureFolder(folder, variable);
  const path = join(folder, LOCK_FILE);
  const mine: LockRecord = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, JSON.stringify(mine), { flag: "wx" });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw error;
      const owner = readOwner(path);
      if (owner && isRunning(owner)) {
        throw new DataDirInUseError(
          `the embedded database folder ${folder} (${variable}) is in use by process ${owner.pid} ` +
            `on ${owner.host} since ${owner.started}; one process owns it. Stop that process, ask it over ` +
            `HTTP (swisper-memory inspect --url http://127.0.0.1:8080), or set DATABASE_URL so that ` +
            "several processes share a PostgreSQL server",
        );
      }
      rmSync(path, { force: true });
    }
  }
  const release = () => {
    if (readOwner(path)?.pid === process.pid) rmSync(path, { force: true });
  };
  process.once("exit", release);
  return () => {
    process.removeListener("exit", release);
    release();
  };
}

function ensureFolder(folder: string, variable: string): void {
  if (statSync(folder, { throwIfNoEntry: false })?.isDirectory() === false) {
    throw new ValidationError(variable, `${folder} is not a folder`);
  }
  try {
    mkdirSync(folder, { recursive: true });
  } catch (error) {
    throw new ValidationError(variable, `${folder} cannot be made a folder: ${codeOf(error)}`);
  }
}

function readOwner(path: string): LockRecord | null {
  try {
    const record = JSON.parse(readFileSync(path, "utf8")) as Partial<LockRecord>;
    return typeof record.pid === "number" ? (record as LockRecord) : null;
  } catch {
    return null;
  }
}

/** Whether the owner still runs. On another host it cannot be told: assume it does. */
function isRunning(owner: LockRecord): boolean {
  if (owner.host !== hostname()) return true;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}
