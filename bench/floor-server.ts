/**
 * The floor for `bench:http`: a Fastify server that makes exactly the round trips the memory
 * service makes per request and nothing else. A write is one durable INSERT (a commit, as the
 * transcript append) and then one Redis call (as the buffer append); a read is one Redis call
 * that returns the session's last 30 entries (as the context read). No validation, token
 * counting, authentication, rate limit, summarization, logging or metrics. Whatever latency this
 * server shows under the same load, the machine charges any service doing those round trips.
 *
 * Env: PORT, DATABASE_URL (a scratch database: it creates its table), REDIS_URL, KEY_PREFIX.
 */
import Fastify from "fastify";
import pg from "pg";
import { createClient } from "redis";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 20 });
await pool.query(
  "CREATE TABLE IF NOT EXISTS floor_messages (session text NOT NULL, seq bigserial, body json NOT NULL, PRIMARY KEY (session, seq))",
);
const redis = createClient({ url: process.env.REDIS_URL });
await redis.connect();
const prefix = process.env.KEY_PREFIX ?? "floor";

const app = Fastify({ bodyLimit: 1024 * 1024 });
app.post<{ Params: { id: string } }>("/v1/sessions/:id/messages", async (request, reply) => {
  const body = JSON.stringify(request.body);
  const { rows } = await pool.query({
    name: "floor-insert",
    text: "INSERT INTO floor_messages (session, body) VALUES ($1, $2) RETURNING seq",
    values: [request.params.id, body],
  });
  await redis.rPush(`${prefix}:${request.params.id}`, `${rows[0].seq}:${body}`);
  reply.code(201);
  return { seq: Number(rows[0].seq) };
});
app.get<{ Params: { id: string } }>("/v1/sessions/:id/context", async (request, reply) => {
  const entries = await redis.lRange(`${prefix}:${request.params.id}`, -30, -1);
  reply.type("application/json");
  return `{"session_id":${JSON.stringify(request.params.id)},"buffer_messages":[${entries
    .map((entry) => entry.slice(entry.indexOf(":") + 1))
    .join(",")}]}`;
});
app.get("/ready", async () => ({ ready: true }));
app.get("/metrics", async () => "");

const close = async () => {
  await app.close();
  await redis.quit();
  await pool.end();
  process.exit(0);
};
process.once("SIGTERM", close);
process.once("SIGINT", close);
await app.listen({ port: Number(process.env.PORT), host: "127.0.0.1" });
