import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { serveNodeOptions } from "./support/start-scripts.js";

/**
 * The embedded database and the summarizer run on worker threads, which start with the node
 * options of the process that made them. A program's own options must not keep them from
 * starting: `--input-type` (a program run as `node --input-type=module -e`) and V8's options (a
 * service run as `node --max-old-space-size=4096`), which a worker refuses when they are handed
 * to it, yet holds anyway (V8's options are the process's).
 */
const SCRIPT = `
  import { PgliteDatabase } from "./src/storage/database.ts";
  import { WorkerSummarizer } from "./src/summarizer/index.ts";
  const db = new PgliteDatabase({});
  const { rows } = await db.query("SELECT 41 + 1 AS answer");
  await db.close();
  const summarizer = new WorkerSummarizer({ model: "gpt-4o" });
  const summary = await summarizer.summarize({
    previousSummary: null,
    messages: [{ role: "user", content: "The launch moves to Friday.", seq: 1, tokens: 7, timestamp: 1 }],
    maxSummaryTokens: 100,
    countTokens: (text) => text.length,
  });
  await summarizer.close();
  process.stdout.write(JSON.stringify({ answer: rows[0].answer, summary: summary.text }));`;

function run(nodeOptions: string[]): Promise<{ code: number | null; output: string; errors: string }> {
  const child = spawn(
    process.execPath,
    [...nodeOptions, "--import", "tsx", "--input-type=module", "-e", SCRIPT],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  let errors = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    errors += chunk.toString();
  });
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, output, errors })));
}

describe("worker threads under the program's node options", () => {
  it.each([
    [[]],
    [["--max-old-space-size=512"]],
    [["--max-semi-space-size=8", "--stack-size=900"]],
    [serveNodeOptions("start")],
    [serveNodeOptions("start:servers")],
  ])("start the embedded database and the summarizer with --input-type and %j", async (options) => {
    const { code, output, errors } = await run(options);
    expect(errors).toBe("");
    expect(code).toBe(0);
    const result = JSON.parse(output) as { answer: number; summary: string };
    expect(result.answer).toBe(42);
    expect(result.summary).toContain("Friday");
  });
});

describe("workerEntry", () => {
  it("reports a worker module that cannot be loaded as the worker's error, naming it, with rejections only warned of", async () => {
    const script = `
      import { Worker } from "node:worker_threads";
      import { workerEntry } from "./src/worker-url.ts";
      const beside = new URL("./src/storage/database.ts", import.meta.url).href;
      const worker = new Worker(workerEntry(beside, "no-such-worker"), { eval: true });
      worker.once("error", (error) => process.stdout.write(error.message));`;
    const child = spawn(
      process.execPath,
      ["--unhandled-rejections=warn", "--import", "tsx", "--input-type=module", "-e", script],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    await new Promise((resolve) => child.once("exit", resolve));
    expect(output).toMatch(/no-such-worker\.ts/);
  });
});
