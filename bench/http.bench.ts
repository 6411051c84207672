/**
 * Drives the running HTTP service over loopback with the chat workload and prints latency
 * percentiles (p50/p95/p99) and throughput, against the target: p99 at most 5 ms at 2,000
 * requests/s (on the 2-core CI machine).
 *
 * For each mode it starts `node dist/cli/main.js serve` as users run it (API keys on, rate limit
 * on, request logs written) and runs BENCH_CONNECTIONS virtual users, one session each, whose
 * turns are: POST the user's message, GET the context packed into 4000 tokens, POST the reply.
 * 1. Latency at a steady offered rate (open loop, paced here: autocannon's rate limit sends each
 *    second's quota in one burst), measured from each request's due time, after a warm-up.
 * 2. Capacity: closed loop, each user sending its next request when the last one is answered.
 * Modes: the floor (bench/floor-server.ts: a bare Fastify server making the same round trips per
 * request, one durable INSERT and one Redis call per write, one Redis call per read, and nothing
 * else), Redis + PostgreSQL (the production path), PostgreSQL alone, the embedded default. The
 * floor is what this machine charges for the round trips alone; the ratios printed last are the
 * service's own share. The statement floor (mode statement-floor: the same server making the
 * product's own append, `Transcript.append` on the migrated schema, instead of the plain INSERT)
 * splits that share into what the transcript keeps per message and what the service's logic adds.
 *
 * Run `npm run bench:http` (it builds first). Env: BENCH_RATES (500,1000 req/s), BENCH_ROUNDS (3),
 * BENCH_DURATION (10 s), BENCH_WARMUP (3 s), BENCH_SATURATE (5 s; 0 skips), BENCH_CONNECTIONS (32),
 * BENCH_MODES (floor,statement-floor,redis; also postgres, embedded, embedded-floor),
 * BENCH_REDIS_URL (redis://127.0.0.1:6379),
 * BENCH_DATABASE_URL (postgres://postgres@127.0.0.1:5432/test; a scratch database is created and
 * dropped), BENCH_RATE_LIMIT (the service's per-minute limit, default 1e9: on, never reached; 0
 * turns it off), BENCH_LOG_LEVEL (info: one log line per request, as in production),
 * BENCH_NODE_ARGS (node's options for every server; default: those `npm start` gives the embedded
 * modes and `npm run start:servers` the others, read from package.json; add e.g. "--cpu-prof
 * --cpu-prof-dir=/tmp/prof" for profiles), BENCH_ALT_NODE_ARGS
 * (the options of a mode named with "+alt", e.g. BENCH_MODES=embedded,embedded+alt: the same server
 * under other options, its windows alternating with the first's),
 * FLOOR_BURN_US (CPU each of the floors' requests spends first, in microseconds: see floor-server.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import net from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connectRedis } from "../src/storage/redis-client.js";
import { serveNodeOptions } from "../test/support/start-scripts.js";
import { serverAnswers } from "../test/support/urls.js";
import { cpuSeconds, cpuSecondsOf } from "./proc-cpu.js";
import { createScratchDatabase } from "./scratch-database.js";
import { chatTurn, seeded, summarize } from "./workload.js";

const RATES = (process.env.BENCH_RATES ?? "500,1000").split(",").map(Number);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const SATURATE = Number(process.env.BENCH_SATURATE ?? 5);
const MODES = (process.env.BENCH_MODES ?? "floor,statement-floor,redis")
  .split(",")
  .map((mode) => mode.trim());
const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const MODE_LABELS: Record<string, string> = {
  floor: "floor: same round trips, no logic",
  "statement-floor": "statement floor: the product's append statement, no logic",
  redis: "Redis + PostgreSQL",
  postgres: "PostgreSQL only",
  "embedded-floor": "embedded floor: same statements on PGlite, no logic",
  embedded: "embedded (PGlite)",
};
/** The floors each mode is compared with. */
const FLOORS_OF: Record<string, string[]> = {
  redis: ["floor", "statement-floor"],
  postgres: ["floor"],
  embedded: ["embedded-floor"],
};
const ROOT = fileURLToPath(new URL("../", import.meta.url));
/**
 * The node options a mode's server runs under, unless BENCH_NODE_ARGS says: those `npm start` gives
 * the embedded default, those `npm run start:servers` gives the service on Redis and PostgreSQL
 * (package.json's scripts); a floor runs under its service's.
 */
function nodeArgsOf(mode: string): string {
  if (process.env.BENCH_NODE_ARGS !== undefined) return process.env.BENCH_NODE_ARGS;
  return serveNodeOptions(mode.startsWith("embedded") ? "start" : "start:servers").join(" ");
}
const ALT_NODE_ARGS = process.env.BENCH_ALT_NODE_ARGS ?? "";
const ALT = "+alt";
/** A mode without its "+alt": what it serves. */
const baseOf = (mode: string) => (mode.endsWith(ALT) ? mode.slice(0, -ALT.length) : mode);
const argsOf = (mode: string) => (mode.endsWith(ALT) ? ALT_NODE_ARGS : nodeArgsOf(mode));
const labelOf = (mode: string) =>
  mode.endsWith(ALT) ? `${MODE_LABELS[baseOf(mode)]} [${ALT_NODE_ARGS}]` : (MODE_LABELS[mode] ?? mode);
const API_KEY = randomBytes(24).toString("hex");

type Operation = "write" | "read";
// The requests each connection cycles through: one chat turn.
const TURN: Operation[] = ["write", "read", "write"];

interface Scratch {
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

async function scratchDatabase(): Promise<Scratch> {
  const scratch = await createScratchDatabase(ADMIN_URL, "swm_http_bench");
  return { env: { DATABASE_URL: scratch.url }, cleanup: () => scratch.drop() };
}

function scratchRedis(): Scratch {
  const keyPrefix = `swm-http-bench-${randomBytes(4).toString("hex")}`;
  return {
    env: { REDIS_URL, MEMORY_KEY_PREFIX: keyPrefix },
    async cleanup() {
      const redis = await connectRedis({ url: REDIS_URL });
      let cursor = "0";
      do {
        const [next, keys] = (await redis.send([
          "SCAN",
          cursor,
          "MATCH",
          `${keyPrefix}:*`,
          "COUNT",
          "1000",
        ])) as [string, string[]];
        cursor = next;
        if (keys.length > 0) await redis.send(["DEL", ...keys]);
      } while (cursor !== "0");
      await redis.close();
    },
  };
}

async function scratchDataDir(): Promise<Scratch> {
  const dir = await mkdtemp(join(tmpdir(), "swm-http-bench-"));
  return { env: { MEMORY_DATA_DIR: dir }, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The memory service as users run it, or (mode "floor") the floor server (see floor-server.ts). */
async function startService(
  mode: string,
  env: Record<string, string>,
): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const storage = [
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_HOST",
    "MEMORY_DATA_DIR",
    "MEMORY_API_KEYS",
    "MEMORY_API_KEYS_FILE",
  ];
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !storage.includes(name)),
  );
  const nodeArgs = argsOf(mode).split(" ").filter(Boolean);
  const entry = baseOf(mode).endsWith("floor")
    ? ["--import", "tsx", "bench/floor-server.ts"]
    : ["dist/cli/main.js", "serve"];
  const child = spawn(process.execPath, [...nodeArgs, ...entry], {
    cwd: ROOT,
    env: {
      ...inherited,
      ...env,
      KEY_PREFIX: env.MEMORY_KEY_PREFIX ?? "",
      ...(baseOf(mode) === "statement-floor" ? { FLOOR_STATEMENTS: "product" } : {}),
      PORT: String(port),
      HOST: "127.0.0.1",
      MEMORY_API_KEYS: `bench:${API_KEY}`,
      // The limiter runs (and counts in Redis when there is one), above the offered load.
      MEMORY_RATE_LIMIT_PER_MINUTE: process.env.BENCH_RATE_LIMIT ?? "1000000000",
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "info",
    },
    // Request logs are written as in production, to /dev/null.
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/ready`)).ok) return { url, child };
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("serve did not become ready within 60 s");
}

async function stopService(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

/** One virtual user: a session and where it is in its chat turn. */
interface User {
  session: string;
  random: () => number;
  turn: number;
  step: number;
  reply: string;
}

function newUser(session: string, seed: number): User {
  return { session, random: seeded(seed), turn: 0, step: 0, reply: "" };
}

/** The user's next request (one turn: POST the message, GET the context, POST the reply). */
function nextRequest(user: User): { method: string; path: string; body?: string; operation: Operation } {
  const step = user.step;
  user.step = (step + 1) % TURN.length;
  if (step === 1) {
    return { method: "GET", path: `/v1/sessions/${user.session}/context?max_tokens=4000`, operation: "read" };
  }
  let body = user.reply;
  if (step === 0) {
    const [message, reply] = chatTurn(user.random, user.turn++);
    body = JSON.stringify(message);
    user.reply = JSON.stringify(reply);
  }
  return { method: "POST", path: `/v1/sessions/${user.session}/messages`, body, operation: "write" };
}

/** One closed-loop run: what it achieved, and the CPU it took (cores: CPU seconds a second). */
interface CapacityRun {
  requestsPerSecond: number;
  serverCores: number;
  storeCores: number;
}

/** CPU seconds PostgreSQL's and Redis's processes have used so far (see proc-cpu.ts). */
const storesCpuSeconds = () => cpuSecondsOf("postgres") + cpuSecondsOf("redis-server");

interface PacedResult {
  samples: Record<Operation, number[]>;
  requests: number;
  non2xx: Map<number, number>;
  errors: number;
  seconds: number;
}

/**
 * A keep-alive HTTP/1.1 connection with one request in flight, written and parsed by hand: the
 * load generator shares the machine with the service, so it must cost little (node:http's client
 * costs about as much as the service it measures).
 */
class RawConnection {
  readonly #socket: net.Socket;
  #buffer: Buffer = Buffer.alloc(0);
  #pending: { resolve: (status: number) => void; reject: (error: Error) => void } | null = null;

  constructor(port: number) {
    this.#socket = net.connect({ host: "127.0.0.1", port, noDelay: true });
    this.#socket.on("data", (chunk: Buffer) => {
      this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
      this.#parse();
    });
    this.#socket.on("error", (error) => this.#fail(error));
    this.#socket.on("close", () => this.#fail(new Error("connection closed")));
  }

  request(method: string, path: string, body?: string): Promise<number> {
    const head = body
      ? `${method} ${path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer ${API_KEY}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
      : `${method} ${path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer ${API_KEY}\r\n\r\n`;
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#socket.write(head);
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  #parse(): void {
    const end = this.#buffer.indexOf("\r\n\r\n");
    if (end < 0 || !this.#pending) return;
    const head = this.#buffer.subarray(0, end).toString("latin1");
    const status = Number(head.slice(9, 12));
    let bodyEnd: number;
    if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      // A streamed answer (no Content-Length) ends with the empty chunk.
      const last = this.#buffer.indexOf("0\r\n\r\n", end + 4);
      if (last < 0) return;
      bodyEnd = last + 5;
    } else {
      bodyEnd = end + 4 + Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (this.#buffer.length < bodyEnd) return;
    }
    this.#buffer = this.#buffer.subarray(bodyEnd);
    const pending = this.#pending;
    this.#pending = null;
    pending.resolve(status);
  }

  #fail(error: Error): void {
    const pending = this.#pending;
    this.#pending = null;
    pending?.reject(error);
  }
}

/** CONNECTIONS virtual users, each with a session of its own and its own connection to `port`. */
function openUsers(port: number, sessionPrefix: string): { user: User; connection: RawConnection }[] {
  return Array.from({ length: CONNECTIONS }, (_, index) => ({
    user: newUser(`${sessionPrefix}-${index}`, index + 1),
    connection: new RawConnection(port),
  }));
}

/**
 * Open-loop load at a steady rate: request i is due at start + i / rate, whatever happened to
 * the ones before it, and goes to a user whose previous request has been answered (a user's turn
 * is sequential, as a chat's is; each user has its own connection). Latency counts from the due
 * time, so a request that waited for a free user is charged the wait (no coordinated omission).
 */
function paced(url: string, rate: number, seconds: number, sessionPrefix: string): Promise<PacedResult> {
  const port = Number(new URL(url).port);
  const total = Math.round(rate * seconds);
  const samples: Record<Operation, number[]> = { write: [], read: [] };
  const non2xx = new Map<number, number>();
  const users = openUsers(port, sessionPrefix);
  const idle = [...users];
  const waiting: number[] = [];
  let issued = 0;
  let finished = 0;
  let errors = 0;

  return new Promise((resolve) => {
    const started = performance.now();
    const send = (slot: (typeof users)[number], dueAt: number) => {
      const request = nextRequest(slot.user);
      slot.connection.request(request.method, request.path, request.body).then(
        (status) => {
          if (status < 200 || status > 299) non2xx.set(status, (non2xx.get(status) ?? 0) + 1);
          samples[request.operation].push(performance.now() - dueAt);
          done(slot);
        },
        () => {
          errors++;
          done(slot);
        },
      );
    };
    const done = (slot: (typeof users)[number]) => {
      finished++;
      const dueAt = waiting.shift();
      if (dueAt !== undefined) send(slot, dueAt);
      else idle.push(slot);
      if (finished === total) {
        for (const { connection } of users) connection.close();
        resolve({ samples, requests: total, non2xx, errors, seconds: (performance.now() - started) / 1000 });
      }
    };
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - started) * rate) / 1000) + 1);
      while (issued < due) {
        const dueAt = started + (issued * 1000) / rate;
        issued++;
        const slot = idle.shift();
        if (slot) send(slot, dueAt);
        else waiting.push(dueAt);
      }
      // A 1 ms timer, not setImmediate: a busy loop here would take a core from the service.
      if (issued < total) setTimeout(tick, 1);
    };
    tick();
  });
}

/**
 * Closed loop, as fast as the service answers: CONNECTIONS users, each on its own connection and
 * session for the whole run, each sending its next request when the previous one is answered.
 * (autocannon, used here before, starts its context afresh after each pass over its request list:
 * every request went to a new session, so the capacity it measured was that of sessions' first
 * writes, with no reads.)
 */
async function saturate(running: Running, seconds: number, sessionPrefix: string): Promise<CapacityRun> {
  const port = Number(new URL(running.url).port);
  const pid = running.child.pid ?? 0;
  const users = openUsers(port, sessionPrefix);
  let answered = 0;
  const cpuBefore = cpuSeconds(pid);
  const storesBefore = storesCpuSeconds();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const loop = async ({ user, connection }: (typeof users)[number]) => {
    while (performance.now() < deadline) {
      const request = nextRequest(user);
      const status = await connection.request(request.method, request.path, request.body);
      if (status < 200 || status > 299)
        throw new Error(`closed loop: ${request.method} ${request.path} answered ${status}`);
      answered++;
    }
  };
  try {
    await Promise.all(users.map(loop));
  } finally {
    for (const { connection } of users) connection.close();
  }
  const elapsed = (performance.now() - started) / 1000;
  return {
    requestsPerSecond: answered / elapsed,
    serverCores: (cpuSeconds(pid) - cpuBefore) / elapsed,
    storeCores: (storesCpuSeconds() - storesBefore) / elapsed,
  };
}

/**
 * The service's event-loop delay since the previous call, from its /metrics (prom-client resets
 * the delay histogram on each scrape): what a blocked event loop added to every request.
 */
async function eventLoopLag(url: string): Promise<{ p99: number; max: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  // The floor server answers the same two names (bench/floor-server.ts).
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]) * 1000;
  return {
    p99: read("swisper_memory_nodejs_eventloop_lag_p99_seconds"),
    max: read("swisper_memory_nodejs_eventloop_lag_max_seconds"),
  };
}

/**
 * Whether the summaries kept pace over the whole run, capacity runs included: the writes that
 * waited for their session's summarization (backpressure), from the service's /metrics.
 */
async function printBackpressure(running: Running): Promise<void> {
  const text = await (await fetch(`${running.url}/metrics`)).text();
  const sample = (series: string) => {
    const line = text.split("\n").find((candidate) => candidate.startsWith(`swisper_memory_${series} `));
    return line === undefined ? null : Number(line.slice(line.lastIndexOf(" ") + 1));
  };
  const held = sample("summarization_held_writes_total");
  if (held === null) return; // the floor server summarizes nothing
  console.log(
    `${labelOf(running.mode)}: ${held} of ` +
      `${sample('write_latency_seconds_count{operation="add_messages"}')} writes waited for their ` +
      `session's summary (backpressure), ${sample("summarization_hold_timeouts_total")} until the wait ran out`,
  );
}

/** Resident set size of the process now and its peak so far (a container's memory limit meets the peak), in MB. */
async function memoryMb(pid: number): Promise<{ rssMb: number; peakRssMb: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kB = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rssMb: kB("VmRSS") / 1024, peakRssMb: kB("VmHWM") / 1024 };
}

/** One measurement window of one mode at one rate. */
interface Sample {
  mode: string;
  rate: number;
  load: number;
  achieved: number;
  p50: number;
  p95: number;
  p99: number;
  writeP99: number;
  readP99: number;
  failed: number;
  /** Milliseconds of the server process's CPU per request. */
  cpuMs: number;
  /** Milliseconds of PostgreSQL's and Redis' CPU per request (all their processes on the machine). */
  storeCpuMs: number;
  lagP99: number;
  lagMax: number;
  rssMb: number;
  peakRssMb: number;
}

interface Running {
  mode: string;
  url: string;
  child: ChildProcess;
  scratches: Scratch[];
}

async function start(mode: string): Promise<Running | null> {
  const label = labelOf(mode);
  const base = baseOf(mode);
  if (!MODE_LABELS[base]) throw new Error(`unknown mode ${mode} (${Object.keys(MODE_LABELS).join(", ")})`);
  if (base !== "embedded" && base !== "embedded-floor" && !(await serverAnswers(ADMIN_URL))) {
    console.error(`skipping ${label}: no PostgreSQL at ${ADMIN_URL}`);
    return null;
  }
  const withRedis = base === "redis" || base === "floor" || base === "statement-floor";
  if (withRedis && !(await serverAnswers(REDIS_URL))) {
    console.error(`skipping ${label}: no Redis at ${REDIS_URL}`);
    return null;
  }
  const scratches: Scratch[] = [];
  if (base === "embedded" || base === "embedded-floor") scratches.push(await scratchDataDir());
  else scratches.push(await scratchDatabase());
  if (withRedis) scratches.push(scratchRedis());
  const env = Object.assign({}, ...scratches.map((scratch) => scratch.env)) as Record<string, string>;
  const { url, child } = await startService(mode, env);
  console.error(`${label}: warming up (${WARMUP} s at ${RATES[0]} req/s)...`);
  await paced(url, RATES[0] ?? 500, WARMUP, "warmup");
  return { mode, url, child, scratches };
}

async function stop(running: Running): Promise<void> {
  await stopService(running.child);
  for (const scratch of running.scratches.reverse()) await scratch.cleanup();
}

async function measure(running: Running, rate: number, round: number): Promise<Sample> {
  const pid = running.child.pid ?? 0;
  const load = loadavg()[0] ?? 0;
  await eventLoopLag(running.url); // resets the service's event-loop delay histogram
  const cpuBefore = cpuSeconds(pid);
  const storesBefore = storesCpuSeconds();
  const run = await paced(running.url, rate, DURATION, `paced-${round}-${rate}`);
  const cpu = cpuSeconds(pid) - cpuBefore;
  const storeCpu = storesCpuSeconds() - storesBefore;
  const lag = await eventLoopLag(running.url);
  if (run.non2xx.size > 0)
    console.error(`  non-2xx by status: ${JSON.stringify(Object.fromEntries(run.non2xx))}`);
  const all = summarize([...run.samples.write, ...run.samples.read]);
  return {
    mode: running.mode,
    rate,
    load,
    achieved: run.requests / run.seconds,
    p50: all.p50,
    p95: all.p95,
    p99: all.p99,
    writeP99: summarize(run.samples.write).p99,
    readP99: summarize(run.samples.read).p99,
    failed: run.errors + [...run.non2xx.values()].reduce((sum, count) => sum + count, 0),
    cpuMs: (cpu * 1000) / run.requests,
    storeCpuMs: (storeCpu * 1000) / run.requests,
    lagP99: lag.p99,
    lagMax: lag.max,
    ...(await memoryMb(pid)),
  };
}

const median = (values: number[]) => {
  const sorted = values.filter((value) => !Number.isNaN(value)).sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : (sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN);
};
const fixed = (value: number, digits = 2) => (Number.isNaN(value) ? "-" : value.toFixed(digits));

// Every mode's server runs for the whole bench; the windows alternate between them (round by
// round, rate by rate), so that a noisy minute on this shared machine hits every mode alike.
const servers: Running[] = [];
try {
  for (const mode of MODES) {
    const running = await start(mode);
    if (running) servers.push(running);
  }
  const samples: Sample[] = [];
  const capacity = new Map<string, CapacityRun[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const rate of RATES) {
      for (const running of servers) {
        const label = labelOf(running.mode);
        console.error(`round ${round}/${ROUNDS}: ${label} at ${rate} req/s for ${DURATION} s...`);
        samples.push(await measure(running, rate, round));
      }
    }
    if (SATURATE > 0) {
      for (const running of servers) {
        console.error(`round ${round}/${ROUNDS}: ${labelOf(running.mode)} closed loop for ${SATURATE} s...`);
        const run = await saturate(running, SATURATE, `max-${round}`);
        capacity.set(running.mode, [...(capacity.get(running.mode) ?? []), run]);
      }
    }
  }
  printReport(samples, capacity);
  for (const running of servers) await printBackpressure(running);
} finally {
  for (const running of servers) await stop(running);
}

function printReport(samples: Sample[], capacity: Map<string, CapacityRun[]>): void {
  console.log(
    `\nHTTP chat workload over loopback: POST message, GET context (max_tokens=4000), POST reply; ` +
      `${CONNECTIONS} connections, ${DURATION} s a window, medians of ${ROUNDS} alternating rounds; ` +
      `Node ${process.version}; servers under ${[...new Set(servers.map((running) => `"${argsOf(running.mode)}"`))].join(", ")}; load average (1 min) before the windows: ` +
      `${fixed(Math.min(...samples.map((s) => s.load)))}-${fixed(Math.max(...samples.map((s) => s.load)))}\n`,
  );
  const rows = [];
  for (const rate of RATES) {
    for (const mode of servers.map((running) => running.mode)) {
      const mine = samples.filter((sample) => sample.mode === mode && sample.rate === rate);
      const of = (field: keyof Sample) => median(mine.map((sample) => sample[field] as number));
      rows.push({
        mode: labelOf(mode),
        "offered req/s": rate,
        "achieved req/s": Math.round(of("achieved")),
        "p50 ms": fixed(of("p50"), 3),
        "p95 ms": fixed(of("p95"), 3),
        "p99 ms": fixed(of("p99"), 3),
        "write p99 ms": fixed(of("writeP99"), 3),
        "read p99 ms": fixed(of("readP99"), 3),
        "CPU ms/req": fixed(of("cpuMs"), 3),
        "stores' CPU ms/req": fixed(of("storeCpuMs"), 3),
        "loop lag p99 ms": fixed(of("lagP99")),
        "loop lag max ms": fixed(of("lagMax")),
        "RSS MB": Math.round(of("rssMb")),
        "peak RSS MB": Math.round(of("peakRssMb")),
        failed: mine.reduce((sum, sample) => sum + sample.failed, 0),
      });
    }
  }
  console.table(rows);
  if (capacity.size > 0) {
    console.table(
      [...capacity].map(([mode, runs]) => ({
        mode: labelOf(mode),
        "capacity req/s (median)": Math.round(median(runs.map((run) => run.requestsPerSecond))),
        runs: runs.map((run) => Math.round(run.requestsPerSecond)).join(" "),
        "server CPU cores": fixed(median(runs.map((run) => run.serverCores))),
        "PostgreSQL + Redis CPU cores": fixed(median(runs.map((run) => run.storeCores))),
      })),
    );
  }
  printRatios(samples, capacity);
}

/** Each mode against its floors (the floor servers for the served modes), measured in the same run. */
function printRatios(samples: Sample[], capacity: Map<string, CapacityRun[]>): void {
  for (const running of servers) {
    for (const floorMode of FLOORS_OF[baseOf(running.mode)] ?? []) {
      if (servers.some((other) => other.mode === floorMode))
        printRatiosTo(running.mode, floorMode, samples, capacity);
    }
  }
}

function printRatiosTo(
  mode: string,
  floorMode: string,
  samples: Sample[],
  capacity: Map<string, CapacityRun[]>,
): void {
  const floorName = labelOf(floorMode)?.split(":")[0];
  console.log(`\n${labelOf(mode)} against the ${floorName}:`);
  const of = (rate: number, which: string, field: keyof Sample) =>
    median(samples.filter((s) => s.mode === which && s.rate === rate).map((s) => s[field] as number));
  for (const rate of RATES) {
    const ratio = (field: keyof Sample) => fixed(of(rate, mode, field) / of(rate, floorMode, field));
    console.log(
      `  at ${rate} req/s: p50 ${ratio("p50")}x (target <= 1.5), p99 ${ratio("p99")}x (target <= 2), ` +
        `CPU a request ${ratio("cpuMs")}x the ${floorName}'s (PostgreSQL and Redis: ${ratio("storeCpuMs")}x); ` +
        `event-loop delay p99 ${fixed(of(rate, mode, "lagP99"))} ms (the ${floorName}'s ` +
        `${fixed(of(rate, floorMode, "lagP99"))} ms; each counts the monitor's 10 ms interval)`,
    );
  }
  const requestsPerSecond = (which: string) =>
    median((capacity.get(which) ?? []).map((run) => run.requestsPerSecond));
  const ratio = requestsPerSecond(mode) / requestsPerSecond(floorMode);
  if (!Number.isNaN(ratio)) console.log(`  capacity ${fixed(ratio)}x the ${floorName}'s (target >= 0.8)`);
}
