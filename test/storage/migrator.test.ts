import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import pg from "pg";
import { afterAll, describe, expect, inject, it } from "vitest";
import { MigrationError, UnsupportedServerError } from "../../src/errors.js";
import { redisUrlFromEnv } from "../../src/manager/create-memory-manager.js";
import { type Database, PgliteDatabase, PostgresDatabase } from "../../src/storage/database.js";
import { listMigrations, migrate } from "../../src/storage/migrator.js";
import { uniqueName } from "../support/servers.js";
import { TEST_DATABASE_ADMIN_URL } from "../support/urls.js";

const created: string[] = [];

async function emptyDatabase(): Promise<PostgresDatabase> {
  const name = uniqueName("swm_migrate");
  const admin = new pg.Client({ connectionString: TEST_DATABASE_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  created.push(name);
  const url = new URL(TEST_DATABASE_ADMIN_URL);
  url.pathname = `/${name}`;
  return new PostgresDatabase({ connectionString: url.toString() });
}

afterAll(async () => {
  if (created.length === 0) return;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_ADMIN_URL });
  await admin.connect();
  for (const name of created) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

describe.skipIf(!inject("postgresAvailable"))("migrations on PostgreSQL", () => {
  it("apply each migration exactly once when many processes start together", async () => {
    const first = await emptyDatabase();
    const url = (first.pool as unknown as { options: { connectionString: string } }).options.connectionString;
    const others = [1, 2, 3].map(() => new PostgresDatabase({ connectionString: url }));
    const runs = await Promise.all([first, ...others].map((db) => migrate(db)));
    const migrations = await listMigrations();
    const applied = runs.flatMap((run) =>
      run.results.filter((r) => r.status === "applied").map((r) => r.name),
    );
    expect(applied.sort()).toEqual([...migrations].sort());
    expect(runs.every((run) => run.error === undefined)).toBe(true);
    const again = await migrate(first);
    expect(again.results.every((r) => r.status === "already-applied")).toBe(true);
    const { rows } = await first.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM memory_schema_migrations",
    );
    expect(rows[0]!.n).toBe(migrations.length);
    await Promise.all([first, ...others].map((db) => db.close()));
  });

  it("returns a failed migration as a result, leaving the earlier ones applied", async () => {
    const db = await emptyDatabase();
    // A table in the way of the first migration makes it fail like a real conflict would.
    await db.query("CREATE TABLE memory_sessions (x int)");
    const run = await migrate(db);
    expect(run.error).toBeInstanceOf(MigrationError);
    expect(run.results[0]).toEqual({ name: "001_initial.sql", status: "failed" });
    expect(run.results.slice(1).every((r) => r.status === "not-run")).toBe(true);
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM memory_schema_migrations");
    expect(rows[0]!.n).toBe(0);
    await db.close();
  });
});

describe("migrations", () => {
  it("refuse a server older than PostgreSQL 13 with a typed error, before changing anything", async () => {
    const real = new PgliteDatabase();
    const statements: string[] = [];
    // The real embedded server, reporting an old version number as a PostgreSQL 12 would.
    const old: Database = {
      kind: real.kind,
      async query<Row extends object>(sql: string, params?: readonly unknown[]) {
        statements.push(sql);
        if (sql === "SHOW server_version_num")
          return { rows: [{ server_version_num: "120017" } as unknown as Row] };
        return real.query<Row>(sql, params);
      },
      transaction: (work) => real.transaction(work),
      exec: (sql) => real.exec(sql),
      close: () => real.close(),
    };
    await expect(migrate(old)).rejects.toBeInstanceOf(UnsupportedServerError);
    expect(statements).toEqual(["SHOW server_version_num"]);
    await old.close();
  });
});

describe("migrations that no longer match the database", () => {
  /** A folder of numbered migrations, written fresh; returns its URL and a writer for more. */
  async function folder(files: Record<string, string>) {
    const dir = await mkdtemp(join(tmpdir(), "swm-migrations-"));
    folders.push(dir);
    const put = (name: string, sql: string) => writeFile(join(dir, name), sql);
    for (const [name, sql] of Object.entries(files)) await put(name, sql);
    return { url: pathToFileURL(`${dir}/`), put, remove: (name: string) => rm(join(dir, name)) };
  }
  const folders: string[] = [];
  afterAll(async () => {
    for (const dir of folders) await rm(dir, { recursive: true, force: true });
  });
  const tables = async (db: Database) =>
    (
      await db.query<{ t: string }>(
        "SELECT table_name AS t FROM information_schema.tables WHERE table_name LIKE 'm\\_%' ORDER BY 1",
      )
    ).rows.map((row) => row.t);

  it("refuse to run when an applied migration's file changed, applying nothing", async () => {
    const db = new PgliteDatabase();
    const migrations = await folder({ "001_one.sql": "CREATE TABLE m_one (x int);" });
    expect((await migrate(db, { directory: migrations.url })).error).toBeUndefined();
    await migrations.put("001_one.sql", "CREATE TABLE m_one (x bigint);");
    await migrations.put("002_two.sql", "CREATE TABLE m_two (x int);");
    const error = await migrate(db, { directory: migrations.url }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as Error).message).toMatch(/^migration 001_one\.sql changed after it was applied/);
    expect(await tables(db)).toEqual(["m_one"]);
    await db.close();
  });

  it("refuse to run when an applied migration's file is missing", async () => {
    const db = new PgliteDatabase();
    const migrations = await folder({ "001_one.sql": "CREATE TABLE m_one (x int);" });
    await migrate(db, { directory: migrations.url });
    await migrations.remove("001_one.sql");
    await migrations.put("002_two.sql", "CREATE TABLE m_two (x int);");
    await expect(migrate(db, { directory: migrations.url })).rejects.toThrow(
      /^migration 001_one\.sql is applied in this database but missing from this build/,
    );
    expect(await tables(db)).toEqual(["m_one"]);
    await db.close();
  });

  it("refuse a new migration that sorts before an applied one", async () => {
    const db = new PgliteDatabase();
    const migrations = await folder({ "002_two.sql": "CREATE TABLE m_two (x int);" });
    await migrate(db, { directory: migrations.url });
    await migrations.put("001_one.sql", "CREATE TABLE m_one (x int);");
    await expect(migrate(db, { directory: migrations.url })).rejects.toThrow(
      /^migration 001_one\.sql is new but sorts before the applied 002_two\.sql/,
    );
    expect(await tables(db)).toEqual(["m_two"]);
    await db.close();
  });

  it("give a ledger from before checksums this build's, then hold later edits to them", async () => {
    const db = new PgliteDatabase();
    const migrations = await folder({ "001_one.sql": "CREATE TABLE m_one (x int);" });
    await db.exec(
      `CREATE TABLE memory_schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
       CREATE TABLE m_one (x int);
       INSERT INTO memory_schema_migrations (name) VALUES ('001_one.sql');`,
    );
    const run = await migrate(db, { directory: migrations.url });
    expect(run.results).toEqual([{ name: "001_one.sql", status: "already-applied" }]);
    await migrations.put("001_one.sql", "CREATE TABLE m_one (y int);");
    await expect(migrate(db, { directory: migrations.url })).rejects.toThrow(/001_one\.sql changed/);
    await db.close();
  });
});

describe("Redis settings from the environment", () => {
  it("builds the URL from the specification's REDIS_HOST / REDIS_PORT / REDIS_DB", () => {
    expect(redisUrlFromEnv({})).toBeNull();
    expect(redisUrlFromEnv({ REDIS_URL: "redis://r:1/2", REDIS_HOST: "ignored" })).toBe("redis://r:1/2");
    expect(redisUrlFromEnv({ REDIS_HOST: "localhost" })).toBe("redis://localhost:6379/0");
    expect(
      redisUrlFromEnv({ REDIS_HOST: "h", REDIS_PORT: "6380", REDIS_DB: "3", REDIS_PASSWORD: "p@ss" }),
    ).toBe("redis://:p%40ss@h:6380/3");
    expect(() => redisUrlFromEnv({ REDIS_HOST: "h", REDIS_PORT: "x" })).toThrow(/REDIS_PORT/);
  });
});

/**
 * Migration 009 gives the sessions written before it what the listing shows: the title from
 * the first user message with text, the newest user message, on PostgreSQL and PGlite alike.
 */
async function backfillsListingColumns(db: Database): Promise<void> {
  const folder = await mkdtemp(join(tmpdir(), "swm-before-009-"));
  try {
    const source = new URL("../../src/storage/migrations/", import.meta.url);
    for (const name of (await listMigrations()).filter((file) => file < "009")) {
      await writeFile(join(folder, name), await readFile(new URL(name, source)));
    }
    expect((await migrate(db, { directory: pathToFileURL(`${folder}/`) })).error).toBeUndefined();
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
  const messages = [
    { role: "system", content: "You help." },
    { role: "assistant", content: null, tool_calls: [] },
    {
      role: "user",
      content: [
        { type: "text", text: "  Which   laptop" },
        { type: "text", text: "is light?" },
      ],
    },
    { role: "user", content: "x".repeat(30) + " " + "y".repeat(40) },
  ];
  await db.query(
    "INSERT INTO memory_sessions (tenant, session_id, next_seq) VALUES ('t', 'old', 5), ('t', 'quiet', 2)",
  );
  for (const [index, message] of messages.entries()) {
    await db.query(
      "INSERT INTO memory_messages (tenant, session_id, seq, message, tokens) VALUES ('t', 'old', $1, $2::json, 5)",
      [index + 1, JSON.stringify(message)],
    );
  }
  await db.query(
    `INSERT INTO memory_messages (tenant, session_id, seq, message, tokens)
     VALUES ('t', 'quiet', 1, '{"role":"assistant","content":"Hi"}', 3)`,
  );
  expect((await migrate(db)).error).toBeUndefined();
  const { rows } = await db.query<Record<string, string | null>>(
    "SELECT session_id, default_title, last_user_message, user_id FROM memory_sessions ORDER BY session_id",
  );
  expect(rows).toEqual([
    {
      session_id: "old",
      default_title: "Which laptop is light?",
      last_user_message: `${"x".repeat(30)} ${"y".repeat(17)}`,
      user_id: null,
    },
    { session_id: "quiet", default_title: null, last_user_message: null, user_id: null },
  ]);
}

describe("migration 009 (session listing)", () => {
  it.skipIf(!inject("postgresAvailable"))("backfills the listing's columns on PostgreSQL", async () => {
    const db = await emptyDatabase();
    try {
      await backfillsListingColumns(db);
    } finally {
      await db.close();
    }
  });

  it("backfills the listing's columns on PGlite", async () => {
    const db = new PgliteDatabase();
    try {
      await backfillsListingColumns(db);
    } finally {
      await db.close();
    }
  });
});
