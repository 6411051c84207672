import type { PGlite } from "@electric-sql/pglite";

/**
 * Opens the PGlite database the embedded default runs on (pglite-worker.ts): a folder created
 * from the template (pglite-template.ts), or, with no folder, one in memory made by initdb.
 */
export async function openPglite(dataDir: string | undefined): Promise<PGlite> {
  const [{ PGlite }, { pg_trgm }] = await Promise.all([
    import("@electric-sql/pglite"),
    import("@electric-sql/pglite/contrib/pg_trgm"),
  ]);
  // BIGINT (OID 20) as a number, as the pg pool is set up to return it. pg_trgm: the substring
  // search's index (migration 013); only `create` loads extensions (PGlite 0.5). 16 MB of shared
  // buffers instead of 128 MB: resident memory ~110 MB lower, no slower on our statements (the
  // folder's pages stay in the OS cache). A start parameter, so that postgresql.conf is kept.
  return PGlite.create(dataDir, {
    parsers: { 20: (value: string) => Number.parseInt(value, 10) },
    extensions: { pg_trgm },
    // Generic plans, as the PostgreSQL pool has them: statements are prepared once (see
    // PgliteStatements) and each is written to use its index whatever the statistics say.
    startParams: [
      ...PGlite.defaultStartParams,
      "-c",
      "shared_buffers=16MB",
      "-c",
      "plan_cache_mode=force_generic_plan",
    ],
  });
}

/** WASI's numbers for the file-system errors a folder can cause (Emscripten's ErrnoError carries only the number). */
const WASI_ERRNO: Readonly<Record<number, string>> = {
  2: "EACCES: permission denied",
  20: "EEXIST: already exists",
  31: "EISDIR: is a folder",
  44: "ENOENT: no such file or folder",
  51: "ENOSPC: no space left on the device",
  54: "ENOTDIR: a file is in the way of a folder",
  55: "ENOTEMPTY: folder not empty",
  63: "EPERM: operation not permitted",
  69: "EROFS: read-only file system",
};

/**
 * A PGlite failure as one line. Besides Errors, PGlite throws Emscripten's file-system errors,
 * plain objects `{ name: "ErrnoError", errno }` that would otherwise print as "[object Object]".
 */
export function pgliteErrorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  const errno = (error as { errno?: unknown } | null)?.errno;
  if (typeof errno !== "number") return String(error);
  return `file system error in the database folder: ${WASI_ERRNO[errno] ?? `WASI errno ${errno}`}`;
}
