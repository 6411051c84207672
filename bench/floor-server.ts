/**
 * The floor for `bench:http`: a Fastify server that makes exactly the round trips the memory
 * service makes per request and nothing else. A write is one durable INSERT (a commit, as the
 * transcript append) and then one Redis call (as the buffer append); a read is one Redis call
 * that returns the session's last 30 entries (as the context read). No validation, token
 * counting, authentication, rate limit, summarization, logging or metrics. Whatever latency this
 * server shows under the same load, the machine charges any service doing those round trips.
 *
 * Its /metrics has one thing: the event-loop delay as the service's prom-client measures it (a
 * timer every 10 ms, reset on each scrape), under the service's metric names. That monitor counts
 * its own 10 ms interval in every sample (an idle process reads p50 9.8 ms, p99 11 ms), so the
 * service's figure means something only beside this one.
 *
 * With MEMORY_DATA_DIR (the embedded default's floor, `bench:embedded`) it makes the same
 * statements on PGlite in its own process: one INSERT a write, one SELECT of the last 30 a read.
 *
 * With FLOOR_STATEMENTS=product (the statement floor) a write is the product's own append instead
 * of the plain INSERT: `Transcript.append` on the migrated schema (its search indexes, session
 * listing, seq block and idempotency index; appends in flight at once go in one statement, as the
 * service batches them), then the same Redis call. Against it, the service's figures show what
 * its logic costs apart from what the transcript keeps per message.
 *
 * With FLOOR_BURN_US=n, each request also spends n microseconds of CPU on the event loop before
 * it is handled: given the service's own CPU a request above this floor's (`bench:http` prints
 * both), it tells whether the service's tail comes from that CPU or from something else.
 *
 * Env: PORT, DATABASE_URL (a scratch database: it creates its table, or with FLOOR_STATEMENTS=
 * product migrates it), REDIS_URL, KEY_PREFIX, MEMORY_DATA_DIR, FLOOR_STATEMENTS, FLOOR_BURN_US.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { PGlite } from "@electric-sql/pglite";
import Fastify from "fastify";
import pg from "pg";
import { createClient } from "redis";
import { PostgresDatabase } from "../src/storage/database.js";
import { migrate } from "../src/storage/migrator.js";
import { CLUSTER_MARK, createFromTemplate } from "../src/storage/pglite-template.js";
import { Transcript } from "../src/storage/transcript.js";

/** A whole number of microseconds from `name`, 0 when unset; anything else stops the server. */
function microsecondsFromEnv(name: string): number {
  const value = process.env[name] ?? "";
  if (value === "") return 0;
  if (!/^\d+$/.test(value)) throw new Error(`${name} must be a whole number of microseconds, got '${value}'`);
  return Number(value);
}

/** Where the floor keeps messages: the same statements on PostgreSQL + Redis, or on PGlite alone. */
interface FloorStore {
  append(session: string, body: string): Promise<number>;
  recent(session: string): Promise<string[]>;
  close(): Promise<void>;
}

const TABLE =
  "CREATE TABLE IF NOT EXISTS floor_messages (session text NOT NULL, seq bigserial, body json NOT NULL, PRIMARY KEY (session, seq))";

/** The durable statement of a write: the seq it stored the body at. */
interface FloorStatement {
  insert(session: string, body: string): Promise<number>;
  close(): Promise<void>;
}

async function plainInsert(): Promise<FloorStatement> {
  // Connections kept as the product's pool keeps them (PostgresDatabase's idleTimeoutMs).
  const pool = new pg.Pool({
    connectionString: process.env.DATABASE_URL,
    max: 20,
    idleTimeoutMillis: 600_000,
  });
  await pool.query(TABLE);
  return {
    async insert(session, body) {
      const { rows } = await pool.query({
        name: "floor-insert",
        text: "INSERT INTO floor_messages (session, body) VALUES ($1, $2) RETURNING seq",
        values: [session, body],
      });
      return Number(rows[0].seq);
    },
    close: () => pool.end(),
  };
}

/**
 * The product's append statement, with none of the logic around it: no validation, and the
 * token count an estimate (it changes nothing of what the statement does).
 */
async function productAppend(): Promise<FloorStatement> {
  const database = new PostgresDatabase({ connectionString: process.env.DATABASE_URL });
  await migrate(database);
  const transcript = new Transcript(database);
  return {
    async insert(session, body) {
      const entry = {
        message: JSON.parse(body),
        json: body,
        tokens: body.length >> 2,
        tokensEstimated: true,
      };
      const [stored] = await transcript.append({ tenant: "default", sessionId: session }, [entry]);
      return stored?.seq ?? 0;
    },
    close: () => database.close(),
  };
}

async function postgresAndRedis(statement: FloorStatement): Promise<FloorStore> {
  const redis = createClient({ url: process.env.REDIS_URL });
  await redis.connect();
  const prefix = process.env.KEY_PREFIX ?? "floor";
  return {
    async append(session, body) {
      const seq = await statement.insert(session, body);
      await redis.rPush(`${prefix}:${session}`, `${seq}:${body}`);
      return seq;
    },
    async recent(session) {
      const entries = await redis.lRange(`${prefix}:${session}`, -30, -1);
      return entries.map((entry) => entry.slice(entry.indexOf(":") + 1));
    },
    async close() {
      await redis.quit();
      await statement.close();
    },
  };
}

/**
 * The embedded default's floor: one INSERT a write and one SELECT a read, on PGlite in this
 * process. An empty folder is created from the template first, as the service creates it.
 */
async function embedded(dataDir: string): Promise<FloorStore> {
  if (!existsSync(join(dataDir, CLUSTER_MARK))) {
    await createFromTemplate(dataDir);
  }
  const db = await PGlite.create(dataDir);
  await db.query(TABLE);
  return {
    async append(session, body) {
      const { rows } = await db.query<{ seq: string }>(
        "INSERT INTO floor_messages (session, body) VALUES ($1, $2) RETURNING seq",
        [session, body],
      );
      return Number(rows[0]?.seq);
    },
    async recent(session) {
      const { rows } = await db.query<{ body: string }>(
        "SELECT body::text AS body FROM (SELECT seq, body FROM floor_messages WHERE session = $1 ORDER BY seq DESC LIMIT 30) r ORDER BY seq",
        [session],
      );
      return rows.map((row) => row.body);
    },
    close: () => db.close(),
  };
}

const burnMs = microsecondsFromEnv("FLOOR_BURN_US") / 1000;
const store = process.env.MEMORY_DATA_DIR
  ? await embedded(process.env.MEMORY_DATA_DIR)
  : await postgresAndRedis(
      process.env.FLOOR_STATEMENTS === "product" ? await productAppend() : await plainInsert(),
    );

const app = Fastify({ bodyLimit: 1024 * 1024 });
if (burnMs > 0) {
  app.addHook("onRequest", async (request) => {
    if (!request.url.startsWith("/v1/")) return;
    // A busy wait, not a timer: the point is to hold a core as the service's logic does.
    const end = performance.now() + burnMs;
    while (performance.now() < end);
  });
}
app.post<{ Params: { id: string } }>("/v1/sessions/:id/messages", async (request, reply) => {
  const seq = await store.append(request.params.id, JSON.stringify(request.body));
  reply.code(201);
  return { seq };
});
app.get<{ Params: { id: string } }>("/v1/sessions/:id/context", async (request, reply) => {
  const entries = await store.recent(request.params.id);
  reply.type("application/json");
  return `{"session_id":${JSON.stringify(request.params.id)},"buffer_messages":[${entries.join(",")}]}`;
});
app.get("/ready", async () => ({ ready: true }));
// prom-client's default eventLoopMonitoringPrecision, which the service keeps.
const eventLoop = monitorEventLoopDelay({ resolution: 10 });
eventLoop.enable();
app.get("/metrics", async () => {
  const seconds = (nanoseconds: number) => nanoseconds / 1e9;
  const text =
    `swisper_memory_nodejs_eventloop_lag_p99_seconds ${seconds(eventLoop.percentile(99))}\n` +
    `swisper_memory_nodejs_eventloop_lag_max_seconds ${seconds(eventLoop.max)}\n`;
  eventLoop.reset();
  return text;
});

const close = async () => {
  await app.close();
  await store.close();
  process.exit(0);
};
process.once("SIGTERM", close);
process.once("SIGINT", close);
await app.listen({ port: Number(process.env.PORT), host: "127.0.0.1" });
