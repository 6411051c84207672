/**
 * The worker thread behind `PgliteDatabase`: owns the PGlite instance, whose every query runs
 * WebAssembly synchronously for its whole length. Here it holds this thread, not the service's
 * event loop, which keeps parsing requests, counting tokens and answering from the buffer.
 *
 * One request a message. While a transaction is open, a request that is not part of it waits
 * until it commits or rolls back, as PGlite's own `transaction()` makes other queries wait.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { PGlite } from "@electric-sql/pglite";
import { openPglite, pgliteErrorMessage } from "./pglite-open.js";
import { PgliteStatements } from "./pglite-statements.js";

export interface PgliteWorkerInit {
  /** Folder of the database files (created beforehand from the template: see pglite-template.ts); undefined for an in-memory database. */
  dataDir: string | undefined;
}

export type PgliteWorkerRequest =
  | { id: number; op: "query"; sql: string; params: readonly unknown[] | undefined; tx: number | null }
  | { id: number; op: "exec"; sql: string; tx: number | null }
  | { id: number; op: "begin" | "commit" | "rollback"; tx: number }
  | { id: number; op: "close" };

/** An error as it crosses the thread: its message and the PostgreSQL fields (code, detail, ...). */
export interface PgliteWorkerFailure {
  name: string;
  message: string;
  fields: Record<string, string | number | boolean>;
}

export type PgliteWorkerReply =
  | { id: number; ok: true; rows: object[] }
  | { id: number; ok: false; error: PgliteWorkerFailure };

const init = workerData as PgliteWorkerInit;
// PGlite's own reasons ("PGlite failed to initialize properly") do not say which folder. SQLSTATE
// 08006 (connection failure), as for a PostgreSQL server that cannot be reached.
const database: Promise<PGlite> = openPglite(init.dataDir).catch((error: unknown) => {
  const where = init.dataDir === undefined ? "in memory" : `in ${init.dataDir} (MEMORY_DATA_DIR)`;
  const message = `opening the embedded database ${where}: ${pgliteErrorMessage(error)}`;
  throw Object.assign(new Error(message, { cause: error }), { code: "08006" });
});
/** The statements the `query` requests run, each prepared once. */
const statements = database.then((db) => new PgliteStatements(db));
statements.catch(() => {});
// A failed start is answered to each request; this keeps it from also ending the thread.
database.catch(() => {});

if (!parentPort) throw new Error("pglite-worker.js runs as a worker thread (see PgliteDatabase)");
const port = parentPort;

/** The transaction that holds the database, and the requests waiting for it to end. */
let openTransaction: number | null = null;
const waiting: PgliteWorkerRequest[] = [];

port.on("message", receive);

function receive(request: PgliteWorkerRequest): void {
  const tx = "tx" in request ? request.tx : null;
  if (openTransaction !== null && tx !== openTransaction) {
    waiting.push(request);
    return;
  }
  // PGlite runs its calls in the order they are made, so marking the transaction open here,
  // before anything else is called, keeps every later request behind it.
  if (request.op === "begin") openTransaction = request.tx;
  const ends = request.op === "commit" || request.op === "rollback";
  void answer(request.id, run(request));
  if (ends) {
    openTransaction = null;
    for (const next of waiting.splice(0)) receive(next);
  }
}

async function run(request: PgliteWorkerRequest): Promise<object[]> {
  // Closing a database that never opened has nothing to do; every other request gets its error.
  if (
    request.op === "close" &&
    !(await database.then(
      () => true,
      () => false,
    ))
  )
    return [];
  const db = await database;
  switch (request.op) {
    case "query":
      return (await statements).query(request.sql, request.params);
    case "exec":
      await db.exec(request.sql);
      return [];
    case "begin":
      await db.exec("BEGIN");
      return [];
    case "commit":
      await db.exec("COMMIT");
      return [];
    case "rollback":
      await db.exec("ROLLBACK");
      return [];
    case "close":
      await db.close();
      return [];
  }
}

async function answer(id: number, result: Promise<object[]>): Promise<void> {
  let reply: PgliteWorkerReply;
  try {
    reply = { id, ok: true, rows: await result };
  } catch (error) {
    reply = { id, ok: false, error: describe(error) };
  }
  try {
    port.postMessage(reply);
  } catch (error) {
    // A row that cannot be cloned (none of our statements returns one) fails its caller only.
    port.postMessage({ id, ok: false, error: describe(error) } satisfies PgliteWorkerReply);
  }
}

/** The error's message and its own plain fields: PostgreSQL's code, detail, constraint, ... */
function describe(error: unknown): PgliteWorkerFailure {
  if (!(error instanceof Error)) return { name: "Error", message: pgliteErrorMessage(error), fields: {} };
  const fields: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(error)) {
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
      fields[key] = value;
    }
  }
  return { name: error.name, message: error.message, fields };
}
