/**
 * Per-command Redis timeouts: our own timer (`withTimeout` in src/storage/redis-client.ts) against
 * node-redis's `commandOptions.timeout`, in one run: `npm run bench:redis-timeout`.
 *
 * 1. Whether each rejects a command against a paused server (SIGSTOP: connections stay open, no
 *    reply comes), and with an error our breaker counts (`isRedisOutage`) and the transition log
 *    names ETIMEDOUT (`errorCode`). A timeout that cannot see a paused server does not do the job.
 * 2. Cost: BENCH_CALLS PINGs (200,000) a round, BENCH_WINDOW (1,000) in flight at a time (the
 *    client pipelines each window), for each variant in turn, BENCH_ROUNDS (7) rounds in a rotating
 *    order after one warm-up round each; the medians of CPU time per call (process.cpuUsage: user +
 *    system, the client's whole share, garbage collection included) and of calls per second.
 * Variants: "timer" is the production connection (connectRedis: withTimeout, node-redis's own
 * timeout off); "node-redis" is a client with `commandOptions.timeout` and the one `.catch` that
 * would turn its TimeoutError into ours; "none" and "node-redis default" are bare clients without
 * and with node-redis's default (5 s), what any timeout is measured against.
 *
 * Starts a redis-server of its own on a free port (it pauses it), stopped at the end.
 */
import { createClient, type RedisClientType } from "redis";
import { isRedisOutage } from "../src/resilience/guarded-connections.js";
import { errorCode } from "../src/resilience/transition-log.js";
import { connectRedis, RedisCommandTimeoutError } from "../src/storage/redis-client.js";
import { RedisServerProcess } from "../test/support/processes.js";

const CALLS = Number(process.env.BENCH_CALLS ?? 200_000);
const WINDOW = Number(process.env.BENCH_WINDOW ?? 1_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const TIMEOUT_MS = 1000;

type Send = (args: string[]) => Promise<unknown>;
interface Variant {
  name: string;
  send: Send;
  close(): Promise<void>;
}

async function bareClient(url: string, commandTimeoutMs: number | undefined): Promise<RedisClientType> {
  // 0 turns node-redis's default command timeout off; undefined leaves it on.
  const commandOptions =
    commandTimeoutMs === undefined ? {} : { commandOptions: { timeout: commandTimeoutMs } };
  const client: RedisClientType = createClient({ url, disableOfflineQueue: true, ...commandOptions });
  client.on("error", () => {});
  await client.connect();
  return client;
}

async function variants(url: string): Promise<Variant[]> {
  const production = await connectRedis({ url, commandTimeoutMs: TIMEOUT_MS });
  const native = await bareClient(url, TIMEOUT_MS);
  const none = await bareClient(url, 0);
  const nativeDefault = await bareClient(url, undefined);
  const destroy = (client: RedisClientType) => async () => client.destroy();
  return [
    { name: "timer", send: (args) => production.send(args), close: () => production.close() },
    {
      name: "node-redis",
      send: (args) => native.sendCommand(args).catch(asOurTimeout),
      close: destroy(native),
    },
    { name: "none", send: (args) => none.sendCommand(args), close: destroy(none) },
    {
      name: "node-redis default",
      send: (args) => nativeDefault.sendCommand(args),
      close: destroy(nativeDefault),
    },
  ];
}

/** What the node-redis variant would do in production: its TimeoutError has no message or code. */
function asOurTimeout(error: unknown): never {
  if (error instanceof Error && error.constructor.name === "TimeoutError") {
    throw new RedisCommandTimeoutError(TIMEOUT_MS);
  }
  throw error;
}

interface PausedOutcome {
  variant: string;
  rejected: boolean;
  afterMs: number | null;
  error: string;
  code: string;
  outage: string;
}

/** Sends one PING while the server is paused and waits three timeouts for it to fail. */
async function againstPausedServer(variant: Variant, server: RedisServerProcess): Promise<PausedOutcome> {
  server.pause();
  const started = performance.now();
  const settled = variant.send(["PING"]).then(
    () => ({ rejected: false, error: null as unknown }),
    (error: unknown) => ({ rejected: true, error }),
  );
  const waited = await Promise.race([settled, sleep(3 * TIMEOUT_MS).then(() => null)]);
  const afterMs = Math.round(performance.now() - started);
  server.resume();
  await settled;
  if (waited === null || !waited.rejected) {
    return { variant: variant.name, rejected: false, afterMs: null, error: "-", code: "-", outage: "-" };
  }
  const { error } = waited;
  return {
    variant: variant.name,
    rejected: true,
    afterMs,
    error: error instanceof Error ? error.constructor.name : String(error),
    code: errorCode(error),
    outage: String(isRedisOutage(error)),
  };
}

interface Round {
  cpuMicrosPerCall: number;
  callsPerSecond: number;
}

async function round(send: Send): Promise<Round> {
  const ping = ["PING"];
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let sent = 0; sent < CALLS; sent += WINDOW) {
    const replies: Promise<unknown>[] = [];
    for (let i = 0; i < WINDOW; i++) replies.push(send(ping));
    await Promise.all(replies);
  }
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { cpuMicrosPerCall: (used.user + used.system) / CALLS, callsPerSecond: CALLS / seconds };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main(): Promise<void> {
  const server = await RedisServerProcess.start();
  const all = await variants(server.url);
  try {
    const [timer, native] = all;
    console.log(`A PING against a paused redis-server (SIGSTOP), command timeout ${TIMEOUT_MS} ms:`);
    console.table([await againstPausedServer(timer!, server), await againstPausedServer(native!, server)]);

    const rounds = new Map<string, Round[]>(all.map((variant) => [variant.name, []]));
    for (const variant of all) await round(variant.send);
    for (let r = 0; r < ROUNDS; r++) {
      // A rotating order, so that no variant always runs first (or right after another).
      for (let i = 0; i < all.length; i++) {
        const variant = all[(r + i) % all.length]!;
        rounds.get(variant.name)!.push(await round(variant.send));
      }
    }
    const floor = median(rounds.get("none")!.map((one) => one.cpuMicrosPerCall));
    console.log(`\n${CALLS} PINGs a round, ${WINDOW} in flight, median of ${ROUNDS} rounds:`);
    console.table(
      all.map(({ name }) => {
        const cpu = median(rounds.get(name)!.map((one) => one.cpuMicrosPerCall));
        return {
          variant: name,
          "CPU µs/call": cpu.toFixed(2),
          "over none": (cpu - floor).toFixed(2),
          "calls/s": Math.round(median(rounds.get(name)!.map((one) => one.callsPerSecond))),
        };
      }),
    );
  } finally {
    for (const variant of all) await variant.close();
    await server.stop();
  }
}

await main();
