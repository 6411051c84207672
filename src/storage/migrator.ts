import { readdir, readFile } from "node:fs/promises";
import { MigrationError, UnsupportedServerError } from "../errors.js";
import type { Database } from "./database.js";

/** PostgreSQL 13 is the oldest server the schema and queries are tested against. */
export const MINIMUM_SERVER_VERSION_NUM = 130000;

// Any constant works; it only has to be the same in every process that migrates this schema.
const MIGRATION_LOCK_KEY = 0x5357_4d45; // "SWME"

const MIGRATIONS_DIR = new URL("./migrations/", import.meta.url);

export interface MigrationResult {
  name: string;
  status: "applied" | "already-applied" | "failed" | "not-run";
}

export interface MigrationRun {
  results: MigrationResult[];
  /** Set when a migration failed; those before it stay applied, those after were not run. */
  error?: MigrationError;
}

/** Lists the numbered `NNN_name.sql` files, in order. */
export async function listMigrations(): Promise<string[]> {
  const names = await readdir(MIGRATIONS_DIR);
  return names.filter((name) => /^\d{3}_[a-z0-9_]+\.sql$/.test(name)).sort();
}

/**
 * Applies pending migrations, each in its own transaction under an advisory lock, so that many
 * processes starting at once apply each migration exactly once. Returns what happened instead of
 * throwing midway; throws only `UnsupportedServerError` before touching anything.
 */
export async function migrate(db: Database): Promise<MigrationRun> {
  await assertSupportedServer(db);
  // Under the lock too: concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalog.
  await db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
    await tx.exec(
      `CREATE TABLE IF NOT EXISTS memory_schema_migrations (
         name text PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
  });
  const names = await listMigrations();
  const results: MigrationResult[] = [];
  for (const [index, name] of names.entries()) {
    try {
      const applied = await db.transaction(async (tx) => {
        await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
        const done = await tx.query("SELECT 1 FROM memory_schema_migrations WHERE name = $1", [name]);
        if (done.rows.length > 0) return false;
        await tx.exec(await readFile(new URL(name, MIGRATIONS_DIR), "utf8"));
        await tx.query("INSERT INTO memory_schema_migrations (name) VALUES ($1)", [name]);
        return true;
      });
      results.push({ name, status: applied ? "applied" : "already-applied" });
    } catch (cause) {
      results.push({ name, status: "failed" });
      for (const rest of names.slice(index + 1)) results.push({ name: rest, status: "not-run" });
      const reason = cause instanceof Error ? cause.message : String(cause);
      return { results, error: new MigrationError(`migration ${name} failed: ${reason}`, { cause }) };
    }
  }
  return { results };
}

async function assertSupportedServer(db: Database): Promise<void> {
  const { rows } = await db.query<{ server_version_num: string }>("SHOW server_version_num");
  const versionNum = Number(rows[0]?.server_version_num);
  if (!(versionNum >= MINIMUM_SERVER_VERSION_NUM)) {
    throw new UnsupportedServerError(
      `PostgreSQL server_version_num ${rows[0]?.server_version_num ?? "unknown"} is older than the minimum ${MINIMUM_SERVER_VERSION_NUM}`,
    );
  }
}
