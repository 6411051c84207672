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

describe("Redis settings from the environment", () => {
  it("builds the URL from the seed's REDIS_HOST / REDIS_PORT / REDIS_DB", () => {
    expect(redisUrlFromEnv({})).toBeNull();
    expect(redisUrlFromEnv({ REDIS_URL: "redis://r:1/2", REDIS_HOST: "ignored" })).toBe("redis://r:1/2");
    expect(redisUrlFromEnv({ REDIS_HOST: "localhost" })).toBe("redis://localhost:6379/0");
    expect(
      redisUrlFromEnv({ REDIS_HOST: "h", REDIS_PORT: "6380", REDIS_DB: "3", REDIS_PASSWORD: "p@ss" }),
    ).toBe("redis://:p%40ss@h:6380/3");
    expect(() => redisUrlFromEnv({ REDIS_HOST: "h", REDIS_PORT: "x" })).toThrow(/REDIS_PORT/);
  });
});
