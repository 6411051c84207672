/**
 * What one Redis shard sustains, for docs/SCALING.md: the context read (read-5.lua over a session
 * with a full 30-message buffer) and the floor of a command that does nothing (PING), each driven
 * by redis-benchmark (C, pipelining off, 50 connections) so that the client is not the limit.
 * The ratio read/PING says what the script costs Redis beyond a round trip.
 *
 * The session is written through the library into a Redis of the bench's own (a redis-server on a
 * free port), with PostgreSQL at BENCH_DATABASE_URL (a scratch database, dropped afterwards).
 * Env: BENCH_REQUESTS (200000 per run), BENCH_ROUNDS (3; medians printed).
 */
import { spawn } from "node:child_process";
import { createMemoryManager } from "../src/manager/create-memory-manager.js";
import { LuaScript } from "../src/storage/lua-script.js";
import { RedisServerProcess } from "../test/support/processes.js";
import { createScratchDatabase } from "./scratch-database.js";

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** Requests per second redis-benchmark reports for one command. */
function redisBenchmark(port: number, command: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const args = ["-p", String(port), "-n", String(REQUESTS), "-c", "50", "-q", "--csv", ...command];
    const child = spawn("redis-benchmark", args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += String(chunk);
    });
    child.on("error", reject);
    child.on("exit", () => {
      const line = out.trim().split("\n").at(-1) ?? "";
      const rps = Number(line.split(",")[1]?.replaceAll('"', ""));
      if (Number.isFinite(rps)) resolve(rps);
      else reject(new Error(`redis-benchmark printed no rate: ${out}`));
    });
  });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

async function main(): Promise<void> {
  const redis = await RedisServerProcess.start();
  const scratch = await createScratchDatabase(ADMIN_URL, "swm_bench_shard");
  try {
    const memory = await createMemoryManager({
      database: scratch.url,
      redis: redis.url,
      env: {},
      keyPrefix: "cap",
      summarization: { idleFinalizeAfterMs: 0 },
    });
    for (let turn = 0; turn < 30; turn++) {
      await memory.addMessage("capacity", {
        role: turn % 2 ? "assistant" : "user",
        content: `Turn ${turn}: a light laptop under 1500 CHF with a good keyboard and a long battery life, please.`,
      });
    }
    const context = await memory.getContext("capacity");
    await memory.close();
    const read = new LuaScript(new URL("../src/buffer/lua/read-5.lua", import.meta.url));
    const tag = "cap:{default:capacity}";
    const keys = ["buf", "meta", "cfg", "sum", "epoch"].map((suffix) => `${tag}:${suffix}`);
    const readCommand = ["EVALSHA", read.sha1, "5", ...keys, "all"];
    // Load the script once (EVALSHA alone would answer NOSCRIPT).
    await redisBenchmarkLoad(redis.port, read.source);
    const reads: number[] = [];
    const pings: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      pings.push(await redisBenchmark(redis.port, ["PING"]));
      reads.push(await redisBenchmark(redis.port, readCommand));
    }
    console.log(
      `one Redis shard (redis-server ${redis.port}, 1 thread), ${ROUNDS} rounds of ${REQUESTS} requests, 50 connections:`,
    );
    console.log(`  PING (floor)                          median ${Math.round(median(pings))} req/s`);
    console.log(
      `  context read, ${context.buffer_info.message_count}-message buffer  median ${Math.round(median(reads))} req/s (${(median(reads) / median(pings)).toFixed(2)}x the floor)`,
    );
  } finally {
    await scratch.drop();
    await redis.stop();
  }
}

/** SCRIPT LOAD through redis-cli, so that EVALSHA finds the script. */
function redisBenchmarkLoad(port: number, source: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("redis-cli", ["-p", String(port), "-x", "SCRIPT", "LOAD"], {
      stdio: ["pipe", "ignore", "inherit"],
    });
    child.on("error", reject);
    child.on("exit", () => resolve());
    child.stdin.end(source);
  });
}

await main();
