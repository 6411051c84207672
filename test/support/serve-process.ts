import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

// `swisper-memory serve` as users run it: a child process on a real socket (from the sources,
// through tsx, so that no build is needed).

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Variables of the test process that would point a child at the shared servers. */
const STORAGE_VARIABLES = ["DATABASE_URL", "REDIS_URL", "REDIS_HOST", "MEMORY_DATA_DIR", "MEMORY_API_KEYS"];

export interface Served {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<number | null>;
}

/** Starts `serve` with the test process's environment, less its storage variables, plus `env`. */
export function serve(env: Record<string, string>): Served {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !STORAGE_VARIABLES.includes(name)),
  ) as Record<string, string>;
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve"], {
    cwd: ROOT,
    env: { ...base, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => stdout.push(chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => stderr.push(chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, stdout, stderr, exited };
}

/** Waits until `/ready` at `base` answers 200; throws with the child's output if it exits or takes too long. */
export async function waitUntilReady(base: string, served: Served, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (served.child.exitCode !== null) throw new Error(`serve exited: ${served.stderr.join("")}`);
    try {
      if ((await fetch(`${base}/ready`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`serve did not become ready: ${served.stdout.join("")}${served.stderr.join("")}`);
}

/** SIGKILLs the child unless it has exited. */
export async function killServed(served: Served): Promise<void> {
  if (served.child.exitCode !== null || served.child.signalCode !== null) return;
  served.child.kill("SIGKILL");
  await served.exited;
}
