/**
 * How long `swisper-memory serve` takes to answer on the embedded database, as a new user starts
 * it (under `npm start`'s node options): the first start in an empty MEMORY_DATA_DIR (PGlite creates a cluster, then the migrations
 * run) and a later start on the same folder; each on the machine as it is and with every core
 * kept busy by another process (a loaded CI runner or laptop). Prints medians, the machine's load
 * average while measuring (this benchmark's own processes included), and the service's resident
 * memory once it answers.
 *
 * The floor is `node -e` that requires the same modules and exits: what Node charges to load the
 * code before any database work.
 *
 * Run `npm run bench:startup` (it builds first). Env: BENCH_RUNS (5 per case).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { serveNodeOptions } from "../test/support/start-scripts.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CLI = join(ROOT, "dist/cli/main.js");

interface Start {
  ms: number;
  rssMb: number;
}

/** Starts serve on `dataDir`, waits for its listening line, reads its RSS, stops it. */
async function timeStart(dataDir: string): Promise<Start> {
  const started = performance.now();
  const child = spawn(process.execPath, [...serveNodeOptions("start"), CLI, "serve"], {
    env: {
      ...process.env,
      MEMORY_DATA_DIR: dataDir,
      PORT: "0",
      LOG_LEVEL: "info",
      REDIS_URL: "",
      DATABASE_URL: "",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    let buffered = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      if (buffered.includes("swisper-memory listening on")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`serve exited with ${code} before listening`)));
  });
  const ms = performance.now() - started;
  const rssMb = await residentMb(child.pid!);
  await stop(child);
  return { ms, rssMb };
}

async function residentMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

/** One busy process per core, so that the start competes for CPU as on a loaded machine. */
function loadEveryCore(): () => void {
  const burners = Array.from({ length: availableParallelism() }, () =>
    spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "ignore" }),
  );
  return () => {
    for (const burner of burners) burner.kill("SIGKILL");
  };
}

async function floorMs(): Promise<number> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    ["--input-type=module", "-e", `await import(${JSON.stringify(CLI)})`],
    {
      stdio: "ignore",
    },
  );
  await new Promise((resolve) => child.once("exit", resolve));
  return performance.now() - started;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function measure(label: string): Promise<void> {
  const first: Start[] = [];
  const later: Start[] = [];
  const floor: number[] = [];
  const loads: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const dataDir = await mkdtemp(join(tmpdir(), "swm-startup-"));
    try {
      floor.push(await floorMs());
      first.push(await timeStart(dataDir));
      later.push(await timeStart(dataDir));
      loads.push(loadavg()[0]!);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }
  const row = (name: string, starts: Start[]) =>
    `  ${name.padEnd(30)} median ${(median(starts.map((s) => s.ms)) / 1000).toFixed(2)} s  ` +
    `(min ${(Math.min(...starts.map((s) => s.ms)) / 1000).toFixed(2)}, max ${(Math.max(...starts.map((s) => s.ms)) / 1000).toFixed(2)})  ` +
    `RSS ${median(starts.map((s) => s.rssMb)).toFixed(0)} MB`;
  console.log(
    `\n${label} (load average ${median(loads).toFixed(2)} on ${availableParallelism()} cores, ${RUNS} runs)`,
  );
  console.log(`  ${"floor: load the code".padEnd(30)} median ${(median(floor) / 1000).toFixed(2)} s`);
  console.log(row("first start (empty folder)", first));
  console.log(row("later start (same folder)", later));
  console.log(
    `  ratio to floor: first ${(median(first.map((s) => s.ms)) / median(floor)).toFixed(1)}x, later ${(median(later.map((s) => s.ms)) / median(floor)).toFixed(1)}x`,
  );
}

console.log(`swisper-memory serve start-up on the embedded database (Node ${process.version})`);
await measure("the machine as it is");
const unload = loadEveryCore();
try {
  await measure(`every core busy (${availableParallelism()} spinning processes)`);
} finally {
  unload();
}
