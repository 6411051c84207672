import { randomBytes } from "node:crypto";
import type { MemoryManager } from "../manager/memory-manager.js";
import { chatTurn, seededRandom, summarize } from "./chat-workload.js";
import { type Command, integerOption, parseCommandLine, write } from "./command.js";
import { openMemory } from "./open-memory.js";
import { Progress } from "./progress.js";

const HELP = `Usage: swisper-memory bench [options]

Replays a chat workload through the library against the storage the environment configures
(DATABASE_URL or MEMORY_DATA_DIR, REDIS_URL) and prints write and context-read latency
percentiles (p50, p95, p99) and throughput. Each turn adds the user's message, reads the context
packed into a budget (as an orchestrator does before calling the model) and adds the reply.
Sessions are written under their own tenant and erased afterwards (unless --keep).

Options:
  --sessions <n>      sessions (default 20)
  --turns <n>         turns per session (default 30)
  --concurrency <n>   sessions in flight at once (default 8)
  --max-tokens <n>    context budget of each read (default 4000)
  --tenant <name>     tenant to write under (default "swisper-bench")
  --keep              keep the sessions
  --json              print JSON instead of a table
  -h, --help          this help

For the HTTP service's latency under load, run 'npm run bench:http' in a checkout.`;

export const benchCommand: Command = {
  name: "bench",
  summary: "Measure write and context-read latency (p50/p95/p99) on the configured storage",
  help: HELP,
  async run(args, { env, stdout, stderr }) {
    const { values } = parseCommandLine(
      args,
      {
        sessions: { type: "string" },
        turns: { type: "string" },
        concurrency: { type: "string" },
        "max-tokens": { type: "string" },
        tenant: { type: "string" },
        keep: { type: "boolean" },
        json: { type: "boolean" },
      },
      { min: 0, max: 0 },
    );
    const sessions = integerOption(values.sessions, "sessions", 20, 1, 100_000);
    const turns = integerOption(values.turns, "turns", 30, 1, 10_000);
    const concurrency = integerOption(values.concurrency, "concurrency", 8, 1, 1000);
    const maxTokens = integerOption(values["max-tokens"], "max-tokens", 4000, 1, 10_000_000);
    const tenant = values.tenant ?? "swisper-bench";

    const opened = await openMemory(env, { tenant });
    const run = randomBytes(4).toString("hex");
    const ids = Array.from({ length: sessions }, (_, index) => `bench-${run}-${index}`);
    try {
      const progress = new Progress({ stream: stderr, label: "bench", total: sessions * turns });
      const timings = await driveChats(opened.memory, ids, { turns, concurrency, maxTokens }, progress);
      progress.finish();
      const report = {
        storage: `${opened.databaseLabel}${opened.redis ? " + redis" : ""}`,
        sessions,
        turns,
        concurrency,
        ...summarizeTimings(timings),
      };
      if (values.json) write(stdout, JSON.stringify(report, null, 2));
      else printReport(stdout, report);
      return 0;
    } finally {
      if (!values.keep) {
        await opened.memory.waitForIdle();
        await eraseAll(opened.memory, ids, stderr);
      } else {
        // Beside JSON output (--json) the list goes to stderr, so that stdout stays one document.
        write(
          values.json ? stderr : stdout,
          `kept ${ids.length} sessions of tenant '${tenant}': ${ids.join(" ")}`,
        );
      }
      await opened.close();
    }
  },
};

interface Timings {
  writes: number[];
  reads: number[];
  seconds: number;
}

/** `concurrency` chats at once, each a session of `turns` turns: write, read the context, write. */
async function driveChats(
  memory: MemoryManager,
  ids: readonly string[],
  shape: { turns: number; concurrency: number; maxTokens: number },
  progress: Progress,
): Promise<Timings> {
  const writes: number[] = [];
  const reads: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    for (let index = next++, id = ids[index]; id !== undefined; index = next++, id = ids[index]) {
      const session = id;
      const random = seededRandom(index + 1);
      for (let turn = 0; turn < shape.turns; turn++) {
        const [user, assistant] = chatTurn(random, turn);
        writes.push(await timed(() => memory.addMessage(session, user)));
        reads.push(await timed(() => memory.getContext(session, { max_tokens: shape.maxTokens })));
        writes.push(await timed(() => memory.addMessage(session, assistant)));
        progress.tick();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(shape.concurrency, ids.length) }, worker));
  return { writes, reads, seconds: (performance.now() - started) / 1000 };
}

function summarizeTimings({ writes, reads, seconds }: Timings) {
  const operations = writes.length + reads.length;
  return {
    write: percentiles(writes),
    read: percentiles(reads),
    operations,
    seconds: round(seconds),
    operations_per_second: Math.round(operations / seconds),
  };
}

type Report = ReturnType<typeof summarizeTimings> & {
  storage: string;
  sessions: number;
  turns: number;
  concurrency: number;
};

function printReport(stdout: NodeJS.WritableStream, report: Report): void {
  const { sessions, turns, concurrency } = report;
  write(stdout, `storage: ${report.storage}; ${sessions} sessions x ${turns} turns, ${concurrency} at once`);
  const columns = ["p50 ms", "p95 ms", "p99 ms"].map((title) => title.padStart(10)).join("");
  write(stdout, `${"operation".padEnd(16)}${"n".padStart(8)}${columns}`);
  for (const [name, figures] of [
    ["write", report.write],
    ["context read", report.read],
  ] as const) {
    const values = [figures.p50, figures.p95, figures.p99]
      .map((value) => value.toFixed(3).padStart(10))
      .join("");
    write(stdout, `${name.padEnd(16)}${String(figures.n).padStart(8)}${values}`);
  }
  write(
    stdout,
    `throughput: ${report.operations_per_second} operations/s (${report.operations} in ${report.seconds} s)`,
  );
}

/** Erases the benchmark's sessions; one that fails is reported, the others are still erased. */
async function eraseAll(memory: MemoryManager, ids: readonly string[], stderr: NodeJS.WritableStream) {
  let failed = 0;
  for (const id of ids) await memory.clearSessionMemory(id).catch(() => failed++);
  if (failed > 0) write(stderr, `could not erase ${failed} of the benchmark's ${ids.length} sessions`);
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

function percentiles(samples: number[]): { n: number; p50: number; p95: number; p99: number } {
  const { n, p50, p95, p99 } = summarize(samples);
  return { n, p50: round(p50), p95: round(p95), p99: round(p99) };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
