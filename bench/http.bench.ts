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
 * 2. Capacity: closed loop with autocannon, as fast as the service answers.
 * Modes: the floor (bench/floor-server.ts: a bare Fastify server making the same round trips per
 * request, one durable INSERT and one Redis call per write, one Redis call per read, and nothing
 * else), Redis + PostgreSQL (the production path), PostgreSQL alone, the embedded default. The
 * floor is what this machine charges for the round trips alone; the ratios printed last are the
 * service's own share.
 *
 * Run `npm run bench:http` (it builds first). Env: BENCH_RATE (2000 req/s), BENCH_DURATION (10 s),
 * BENCH_WARMUP (3 s), BENCH_SATURATE (5 s; 0 skips), BENCH_CONNECTIONS (32),
 * BENCH_MODES (floor,redis,postgres,embedded), BENCH_REDIS_URL (redis://127.0.0.1:6379),
 * BENCH_DATABASE_URL (postgres://postgres@127.0.0.1:5432/test; a scratch database is created and
 * dropped), BENCH_RATE_LIMIT (the service's per-minute limit, default 1e9: on, never reached; 0
 * turns it off), BENCH_LOG_LEVEL (info: one log line per request, as in production),
 * BENCH_NODE_ARGS (extra node flags for the service, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { connectRedis } from "../src/storage/redis-client.js";
import { serverAnswers } from "../test/support/urls.js";
import { createScratchDatabase } from "./scratch-database.js";
import { chatTurn, ms, seeded, summarize } from "./workload.js";

const RATE = Number(process.env.BENCH_RATE ?? 2000);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const SATURATE = Number(process.env.BENCH_SATURATE ?? 5);
const MODES = (process.env.BENCH_MODES ?? "floor,redis,postgres,embedded")
  .split(",")
  .map((mode) => mode.trim());
const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const TARGET_P99_MS = 5;
const MODE_LABELS: Record<string, string> = {
  floor: "floor: same round trips, no logic",
  redis: "Redis + PostgreSQL",
  postgres: "PostgreSQL only",
  embedded: "embedded (PGlite)",
};
const ROOT = fileURLToPath(new URL("../", import.meta.url));
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
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const entry =
    mode === "floor" ? ["--import", "tsx", "bench/floor-server.ts"] : ["dist/cli/main.js", "serve"];
  const child = spawn(process.execPath, [...nodeArgs, ...entry], {
    cwd: ROOT,
    env: {
      ...inherited,
      ...env,
      KEY_PREFIX: env.MEMORY_KEY_PREFIX ?? "",
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

const HEADERS = { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" };

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
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (this.#buffer.length < end + 4 + length) return;
    this.#buffer = this.#buffer.subarray(end + 4 + length);
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

/**
 * Open-loop load at a steady rate: request i is due at start + i / rate, whatever happened to
 * the ones before it, and goes to a user whose previous request has been answered (a user's turn
 * is sequential, as a chat's is; each user has its own connection). Latency counts from the due
 * time, so a request that waited for a free user is charged the wait (no coordinated omission).
 * autocannon's own rate limit sends each second's quota in one burst, which measures bursts.
 */
function paced(url: string, rate: number, seconds: number, sessionPrefix: string): Promise<PacedResult> {
  const port = Number(new URL(url).port);
  const total = Math.round(rate * seconds);
  const samples: Record<Operation, number[]> = { write: [], read: [] };
  const non2xx = new Map<number, number>();
  const users = Array.from({ length: CONNECTIONS }, (_, index) => ({
    user: newUser(`${sessionPrefix}-${index}`, index + 1),
    connection: new RawConnection(port),
  }));
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

/** Closed loop, as fast as the service answers: CONNECTIONS connections for `seconds` (autocannon). */
function saturate(
  url: string,
  seconds: number,
  sessionPrefix: string,
): Promise<{ requestsPerSecond: number }> {
  let sessions = 0;
  const userOf = (context: object): User => {
    const fields = context as { user?: User };
    fields.user ??= newUser(`${sessionPrefix}-${sessions}`, ++sessions);
    return fields.user;
  };
  const step = (request: autocannon.Request, context: object): autocannon.Request => {
    const next = nextRequest(userOf(context));
    // A fresh headers object each time: autocannon writes Content-Length into the one it is given.
    const headers = next.body ? { ...HEADERS } : { authorization: HEADERS.authorization };
    return {
      ...request,
      method: next.method as autocannon.Request["method"],
      path: next.path,
      headers,
      ...(next.body ? { body: next.body } : {}),
    };
  };
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url,
        connections: CONNECTIONS,
        duration: seconds,
        requests: [{ setupRequest: step }],
      },
      (error, result) => {
        if (error) reject(error);
        else resolve({ requestsPerSecond: Math.round(result.requests.total / seconds) });
      },
    );
  });
}

/**
 * The service's event-loop delay since the previous call, from its /metrics (prom-client resets
 * the delay histogram on each scrape): what a blocked event loop added to every request.
 */
async function eventLoopLag(url: string): Promise<{ p99: number; max: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  // NaN for the floor server, which has no metrics.
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]) * 1000;
  return {
    p99: read("swisper_memory_nodejs_eventloop_lag_p99_seconds"),
    max: read("swisper_memory_nodejs_eventloop_lag_max_seconds"),
  };
}

interface Row {
  mode: string;
  "offered req/s": number;
  "achieved req/s": number;
  requests: number;
  "p50 ms": string;
  "p95 ms": string;
  "p99 ms": string;
  "write p99 ms": string;
  "read p99 ms": string;
  "non-2xx": number;
  errors: number;
  "loop lag p99 ms": string;
  "loop lag max ms": string;
  "max req/s": number;
  [key: string]: string | number;
}

async function runMode(mode: string): Promise<Row | null> {
  const scratches: Scratch[] = [];
  const label = MODE_LABELS[mode];
  if (!label) throw new Error(`unknown mode ${mode} (redis, postgres, embedded)`);
  if (mode !== "embedded" && !(await serverAnswers(ADMIN_URL))) {
    console.error(`skipping ${label}: no PostgreSQL at ${ADMIN_URL}`);
    return null;
  }
  if ((mode === "redis" || mode === "floor") && !(await serverAnswers(REDIS_URL))) {
    console.error(`skipping ${label}: no Redis at ${REDIS_URL}`);
    return null;
  }
  try {
    if (mode === "embedded") scratches.push(await scratchDataDir());
    else scratches.push(await scratchDatabase());
    if (mode === "redis" || mode === "floor") scratches.push(scratchRedis());
    const env = Object.assign({}, ...scratches.map((scratch) => scratch.env)) as Record<string, string>;
    const { url, child } = await startService(mode, env);
    try {
      console.error(`${label}: warming up (${WARMUP} s at ${RATE} req/s)...`);
      await paced(url, RATE, WARMUP, "warmup");
      await eventLoopLag(url); // resets the service's event-loop delay histogram
      console.error(`${label}: measuring (${DURATION} s at ${RATE} req/s, ${CONNECTIONS} users)...`);
      const run = await paced(url, RATE, DURATION, "paced");
      const lag = await eventLoopLag(url);
      console.error(`${label}: saturating (${SATURATE} s, ${CONNECTIONS} connections, autocannon)...`);
      const capacity = SATURATE > 0 ? await saturate(url, SATURATE, "max") : { requestsPerSecond: 0 };
      if (run.non2xx.size > 0)
        console.error(`  non-2xx by status: ${JSON.stringify(Object.fromEntries(run.non2xx))}`);
      const all = summarize([...run.samples.write, ...run.samples.read]);
      const write = summarize(run.samples.write);
      const read = summarize(run.samples.read);
      return {
        mode: label,
        "offered req/s": RATE,
        "achieved req/s": Math.round(run.requests / run.seconds),
        requests: run.requests,
        "p50 ms": ms(all.p50),
        "p95 ms": ms(all.p95),
        "p99 ms": ms(all.p99),
        "write p99 ms": ms(write.p99),
        "read p99 ms": ms(read.p99),
        "non-2xx": [...run.non2xx.values()].reduce((sum, count) => sum + count, 0),
        errors: run.errors,
        "loop lag p99 ms": Number.isNaN(lag.p99) ? "-" : ms(lag.p99),
        "loop lag max ms": Number.isNaN(lag.max) ? "-" : ms(lag.max),
        "max req/s": capacity.requestsPerSecond,
        [`p99 <= ${TARGET_P99_MS} ms`]: all.p99 <= TARGET_P99_MS ? "yes" : "NO",
      };
    } finally {
      await stopService(child);
    }
  } finally {
    for (const scratch of scratches.reverse()) await scratch.cleanup();
  }
}

const rows: Row[] = [];
for (const mode of MODES) {
  const row = await runMode(mode);
  if (row) rows.push(row);
}
console.log(
  `\nHTTP chat workload over loopback: POST message, GET context (max_tokens=4000), POST reply; ` +
    `${CONNECTIONS} connections, ${RATE} req/s offered for ${DURATION} s; Node ${process.version}\n`,
);
console.table(rows);
// The same machine's floor, measured in the same run: what is left is the service's own cost.
const floor = rows.find((row) => row.mode === MODE_LABELS.floor);
for (const row of floor ? rows.filter((other) => other !== floor) : []) {
  const ratio = (column: string) => (Number(row[column]) / Number(floor![column])).toFixed(2);
  console.log(
    `${row.mode}: p50 ${ratio("p50 ms")}x, p95 ${ratio("p95 ms")}x, p99 ${ratio("p99 ms")}x the floor's`,
  );
}
