import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { MigrationError, UnsupportedServerError } from "../errors.js";
import type { Database } from "./database.js";

/** PostgreSQL 13 is the oldest server the schema and queries are tested against. */
export const MINIMUM_SERVER_VERSION_NUM = 130000;

// Any constant works; it only has to be the same in every process that migrates this schema.
const MIGRATION_LOCK_KEY = 0x5357_4d45; // "SWME"

const MIGRATIONS_DIR = new URL("./migrations/", import.meta.url);

export interface MigrateOptions {
  /** Folder of the `NNN_name.sql` files (default: the product's own). For tests of the checks. */
  directory?: URL;
}

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
export async function listMigrations(directory: URL = MIGRATIONS_DIR): Promise<string[]> {
  const names = await readdir(directory);
  return names.filter((name) => /^\d{3}_[a-z0-9_]+\.sql$/.test(name)).sort();
}

interface Migration {
  name: string;
  sql: string;
  /** sha256 of the file, kept with the applied migration. */
  checksum: string;
}

async function readMigrations(directory: URL): Promise<Migration[]> {
  const names = await listMigrations(directory);
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(new URL(name, directory), "utf8");
      return { name, sql, checksum: createHash("sha256").update(sql).digest("hex") };
    }),
  );
}

/**
 * Applies pending migrations, each in its own transaction under an advisory lock, so that many
 * processes starting at once apply each migration exactly once. Returns what happened instead of
 * throwing midway. Throws before touching anything: `UnsupportedServerError` for an old server,
 * and `MigrationError` when this build does not match what the database has applied (an applied
 * file changed or missing, or a new one sorting before an applied one: running on would leave a
 * schema no build describes).
 */
export async function migrate(db: Database, options: MigrateOptions = {}): Promise<MigrationRun> {
  await assertSupportedServer(db);
  const migrations = await readMigrations(options.directory ?? MIGRATIONS_DIR);
  const applied = await prepareLedger(db, migrations);
  assertMatchesLedger(migrations, applied);
  const results: MigrationResult[] = [];
  for (const [index, migration] of migrations.entries()) {
    try {
      const done = await applyOnce(db, migration);
      results.push({ name: migration.name, status: done ? "applied" : "already-applied" });
    } catch (cause) {
      results.push({ name: migration.name, status: "failed" });
      for (const rest of migrations.slice(index + 1)) results.push({ name: rest.name, status: "not-run" });
      const reason = cause instanceof Error ? cause.message : String(cause);
      return {
        results,
        error: new MigrationError(`migration ${migration.name} failed: ${reason}`, { cause }),
      };
    }
  }
  return { results };
}

/**
 * Creates the ledger of applied migrations if needed and reads it. Ledgers from before checksums
 * get theirs from the files of this build (the first run that knows them vouches for them).
 */
async function prepareLedger(db: Database, migrations: readonly Migration[]): Promise<Map<string, string>> {
  return db.transaction(async (tx) => {
    // Under the lock too: concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalog.
    await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
    await tx.exec(
      `CREATE TABLE IF NOT EXISTS memory_schema_migrations (
         name text PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now()
       );
       ALTER TABLE memory_schema_migrations ADD COLUMN IF NOT EXISTS checksum text`,
    );
    for (const { name, checksum } of migrations) {
      await tx.query(
        "UPDATE memory_schema_migrations SET checksum = $2 WHERE name = $1 AND checksum IS NULL",
        [name, checksum],
      );
    }
    const { rows } = await tx.query<{ name: string; checksum: string | null }>(
      "SELECT name, checksum FROM memory_schema_migrations ORDER BY name",
    );
    return new Map(rows.map((row) => [row.name, row.checksum ?? ""]));
  });
}

function assertMatchesLedger(migrations: readonly Migration[], applied: ReadonlyMap<string, string>): void {
  const files = new Map(migrations.map((migration) => [migration.name, migration.checksum]));
  for (const [name, checksum] of applied) {
    if (!files.has(name)) {
      throw new MigrationError(
        `migration ${name} is applied in this database but missing from this build: run a build that has it`,
      );
    }
    if (files.get(name) !== checksum) {
      throw new MigrationError(
        `migration ${name} changed after it was applied (checksum ${checksum.slice(0, 12)}, file ${(files.get(name) ?? "").slice(0, 12)}): add a new migration instead of editing an applied one`,
      );
    }
  }
  const lastApplied = [...applied.keys()].sort().at(-1);
  const early = migrations.find(
    (migration) => !applied.has(migration.name) && lastApplied && migration.name < lastApplied,
  );
  if (early) {
    throw new MigrationError(
      `migration ${early.name} is new but sorts before the applied ${lastApplied}: number it after the applied ones`,
    );
  }
}

/** Applies one migration unless another process did; true when this call applied it. */
function applyOnce(db: Database, migration: Migration): Promise<boolean> {
  return db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
    const done = await tx.query("SELECT 1 FROM memory_schema_migrations WHERE name = $1", [migration.name]);
    if (done.rows.length > 0) return false;
    await tx.exec(migration.sql);
    await tx.query("INSERT INTO memory_schema_migrations (name, checksum) VALUES ($1, $2)", [
      migration.name,
      migration.checksum,
    ]);
    return true;
  });
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
