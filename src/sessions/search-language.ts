import { ValidationError } from "../errors.js";
import type { Queryable } from "../storage/database.js";

/** The configuration the full-text index (migration 011) is built with. */
export const INDEXED_LANGUAGE = "simple";

// Per database: its text search configurations and whether it has the trigram index, read once.
const languages = new WeakMap<object, Promise<Set<string>>>();
const trigramIndexes = new WeakMap<object, Promise<boolean>>();

/**
 * The language when the database has a text search configuration of that name; else a
 * ValidationError on `field`, listing the ones it has. The name goes into the SQL as a literal
 * (so that `simple` matches the index expression), so only names found here are used.
 */
export async function checkLanguage(db: Queryable, language: string, field: string): Promise<string> {
  const known = await memo(languages, db, async () => {
    const { rows } = await db.query<{ name: string }>("SELECT cfgname::text AS name FROM pg_ts_config");
    return new Set(rows.map((row) => row.name));
  });
  if (known.has(language)) return language;
  throw new ValidationError(
    field,
    `is not a text search configuration of this database ('${language}'); it has: ${[...known].sort().join(", ")}`,
  );
}

/** Whether migration 013 could build the trigram index (pg_trgm was available). */
export function hasTrigramIndex(db: Queryable): Promise<boolean> {
  return memo(trigramIndexes, db, async () => {
    const { rows } = await db.query(
      "SELECT 1 FROM pg_indexes WHERE tablename = 'memory_messages' AND indexname = 'memory_messages_substring'",
    );
    return rows.length > 0;
  });
}

function memo<T>(cache: WeakMap<object, Promise<T>>, db: object, read: () => Promise<T>): Promise<T> {
  let found = cache.get(db);
  if (!found) {
    // A failed read is not kept: the next search asks again.
    found = read().catch((error: unknown) => {
      cache.delete(db);
      throw error;
    });
    cache.set(db, found);
  }
  return found;
}
