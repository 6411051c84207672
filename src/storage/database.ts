import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import pg from "pg";
import { type Logger, stderrLogger } from "../logger.js";
import { workerEntry } from "../worker-url.js";
import { lockDataDir } from "./data-dir-lock.js";
import { CLUSTER_MARK, createFromTemplate } from "./pglite-template.js";
import type { PgliteWorkerInit, PgliteWorkerReply, PgliteWorkerRequest } from "./pglite-worker.js";
import { addressOf } from "./server-address.js";

/** The part of a database connection the stores use: parameterised queries and transactions. */
export interface Queryable {
  query<Row extends object>(sql: string, params?: readonly unknown[]): Promise<{ rows: Row[] }>;
}

/** A connection inside a transaction. */
export interface Transaction extends Queryable {
  /** Runs a script of several statements; no parameters. */
  exec(sql: string): Promise<void>;
}

/**
 * The system of record: PostgreSQL through a `pg` pool, or embedded PGlite. Both speak the same
 * SQL, so every store and migration runs unchanged on either.
 */
export interface Database extends Queryable {
  readonly kind: "postgres" | "pglite";
  /** Runs `work` in one transaction on one connection; rolls back if it throws. */
  transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Runs a script of several statements (migrations); no parameters. */
  exec(sql: string): Promise<void>;
  /** Closes the connection only when this object created it. */
  close(): Promise<void>;
}

export interface PostgresDatabaseOptions {
  /** Connection string, e.g. `postgres://user@127.0.0.1:5432/db`. Ignored when `pool` is given. */
  connectionString?: string;
  /**
   * A pool the caller owns; it is never closed by `close()`. Give it
   * `options: "-c plan_cache_mode=force_generic_plan"` to spare the server a plan per statement, as
   * a pool of ours does.
   */
  pool?: pg.Pool;
  /** Maximum pooled connections (default 20, the specification's production pool size). */
  maxConnections?: number;
  /** Milliseconds to wait for a connection before failing (default 5000). */
  connectTimeoutMs?: number;
  /**
   * Milliseconds an unused connection stays open (default 600000, ten minutes, as HikariCP's
   * idleTimeout). Long because a new connection plans each statement again on its first use, and
   * a request waits for that: the append's first run on a connection took 21 ms where later ones
   * took 1-2 ms, and 50-180 ms under load. With node-postgres' 10 s, a pause in traffic closed
   * the connections and the next burst paid it on each (`npm run bench:http`: p99 several times
   * the floor's).
   */
  idleTimeoutMs?: number;
  /**
   * Milliseconds a query may take before it fails (default 10000), so that a server that stops
   * answering without closing connections (paused, partitioned) counts as down.
   */
  queryTimeoutMs?: number;
  /**
   * Where `connectionString` came from (`DATABASE_URL`, an option's name), named with the
   * server's address and the error code when a connection fails (default "the PostgreSQL URL").
   */
  source?: string;
  /** Where a lost idle connection is reported (default: JSON lines on stderr). */
  logger?: Logger;
}

/**
 * A connection to PostgreSQL failed: the server is unreachable (ECONNREFUSED, ENOTFOUND, a
 * connect timeout) or refused us (SQLSTATE 28000 no such role, 28P01 bad password, 3D000 no such
 * database). Names the address, the variable the URL came from and the code; `code` is the
 * driver's, so the circuit breaker classifies it as it would the driver's error.
 */
export class DatabaseConnectError extends Error {
  readonly code: string;
  constructor(address: string, source: string, cause: Error & { code?: unknown }) {
    const code = typeof cause.code === "string" && cause.code !== "" ? cause.code : "ETIMEDOUT";
    const verdict = /^(28|3D)/.test(code) ? "refused the connection" : "is unreachable";
    super(`PostgreSQL at ${address} (${source}) ${verdict}: ${code} (${cause.message})`, { cause });
    this.name = "DatabaseConnectError";
    this.code = code;
  }
}

const REFUSED_CONNECTION = /^(28|3D000)/;
// ENOENT: a Unix socket (DATABASE_URL's ?host=/folder) with no server behind it; the server
// removes its socket file when it stops.
const UNREACHABLE = ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ENOENT"];

/** Whether `error` is a failure to connect (not a query the server refused, nor a lost connection). */
function isConnectFailure(error: unknown): error is Error & { code?: unknown } {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (UNREACHABLE.includes(code) || REFUSED_CONNECTION.test(code))) return true;
  return /timeout exceeded when trying to connect/.test(error.message);
}

// BIGINT (seq, token sums) fits a JS number for any realistic transcript; parse it as one so that
// rows carry numbers rather than strings.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number.parseInt(value, 10));

export class PostgresDatabase implements Database {
  readonly kind = "postgres" as const;
  readonly pool: pg.Pool;
  readonly #ownsPool: boolean;
  /** host:port and the variable it came from, for connection errors; null for a pool passed in. */
  readonly #origin: { address: string; source: string } | null;

  constructor(options: PostgresDatabaseOptions) {
    const {
      connectionString,
      pool,
      maxConnections = 20,
      connectTimeoutMs = 5000,
      idleTimeoutMs = 600_000,
      queryTimeoutMs = 10_000,
      source = "the PostgreSQL URL",
      logger = stderrLogger,
    } = options;
    const address = pool || !connectionString ? null : addressOf(connectionString, 5432);
    this.#origin = address ? { address, source } : null;
    if (pool) {
      this.pool = pool;
      this.#ownsPool = false;
    } else {
      this.pool = new pg.Pool({
        connectionString,
        max: maxConnections,
        connectionTimeoutMillis: connectTimeoutMs,
        idleTimeoutMillis: idleTimeoutMs,
        query_timeout: queryTimeoutMs,
        // Plan each named statement once per connection. Left to choose, the server re-plans the
        // append on every call (its unnest of parameter arrays looks cheaper planned with the
        // values): ~0.4 ms of server CPU a write, more than running it. Every statement is a
        // keyed lookup written to use its index whatever the statistics say, so a plan made while
        // the tables were empty stays right (test/storage/query-plans.test.ts holds them to it).
        // No JIT: a generic plan costs `LIMIT $n` as a tenth of the table, so at a million
        // sessions a 20-row listing page crossed jit_above_cost and spent ~350 ms compiling a
        // query that runs in 1 ms (npm run bench:sessions); these short keyed queries never gain.
        options: "-c plan_cache_mode=force_generic_plan -c jit=off",
      });
      // An idle client that loses its server emits here; without a listener the process exits.
      // The pool replaces it; the next query that fails is what the circuit breaker counts.
      this.pool.on("error", (error: Error & { code?: string }) =>
        logger.warn(
          { address, code: error.code ?? error.name, error: error.message },
          "an idle PostgreSQL connection was lost; the pool replaces it",
        ),
      );
      this.#ownsPool = true;
    }
  }

  async query<Row extends object>(sql: string, params?: readonly unknown[]): Promise<{ rows: Row[] }> {
    try {
      const result = await this.pool.query<Row>({
        text: sql,
        values: params as unknown[] | undefined,
        name: statementName(sql),
      });
      return { rows: result.rows };
    } catch (error) {
      throw this.#explain(error);
    }
  }

  /** A connect failure as a DatabaseConnectError naming the server; any other error as it is. */
  #explain(error: unknown): unknown {
    if (!this.#origin || !isConnectFailure(error)) return error;
    return new DatabaseConnectError(this.#origin.address, this.#origin.source, error);
  }

  async transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    const client = await this.pool.connect().catch((error: unknown) => {
      throw this.#explain(error);
    });
    let broken = false;
    try {
      await client.query("BEGIN");
      const tx: Transaction = {
        query: async <Row extends object>(sql: string, params?: readonly unknown[]) => {
          const result = await client.query<Row>(sql, params as unknown[] | undefined);
          return { rows: result.rows };
        },
        exec: async (sql: string) => {
          await client.query(sql);
        },
      };
      const value = await work(tx);
      await client.query("COMMIT");
      return value;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  async exec(sql: string): Promise<void> {
    await this.pool.query(sql).catch((error: unknown) => {
      throw this.#explain(error);
    });
  }

  async close(): Promise<void> {
    if (this.#ownsPool) await this.pool.end();
  }
}

const statementNames = new Map<string, string>();

/**
 * A name for the statement, so that each pooled connection parses and plans it once and then
 * only binds and executes it (the append statement costs about half as much that way). Every
 * statement this library sends is a constant text with parameters, so the names stay few.
 */
function statementName(sql: string): string {
  let name = statementNames.get(sql);
  if (!name) {
    name = `swm_${createHash("sha1").update(sql).digest("hex").slice(0, 16)}`;
    statementNames.set(sql, name);
  }
  return name;
}

/**
 * The one row an aggregate, a RETURNING or an upsert statement always gives; its absence is a
 * bug in the statement, said plainly instead of a TypeError further on.
 */
export function onlyRow<Row>(rows: readonly Row[], statement: string): Row {
  const [row] = rows;
  if (row === undefined) throw new Error(`${statement} returned no row`);
  return row;
}

/**
 * Errors that mean no server answered (as opposed to a query the server refused): node's socket
 * errors, pg's own connection errors, and SQLSTATE class 08 (connection exception) and 57P
 * (operator intervention: shutdown, crash).
 */
export function isConnectionError(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") {
    if (code.startsWith("08") || code.startsWith("57P")) return true;
    if (UNREACHABLE.includes(code) || ["ECONNRESET", "EPIPE", "ETIMEDOUT"].includes(code)) return true;
  }
  const message = (error as { message?: unknown }).message;
  return (
    typeof message === "string" &&
    /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Cannot use a pool after calling end/.test(
      message,
    )
  );
}

export interface PgliteDatabaseOptions {
  /** Folder for the embedded database files; omit for an in-memory database. */
  dataDir?: string;
}

/** A request to the worker, without the id `#send` gives it. */
type PgliteRequest = PgliteWorkerRequest extends infer R
  ? R extends unknown
    ? Omit<R, "id">
    : never
  : never;

interface PendingQuery {
  resolve(rows: object[]): void;
  reject(error: Error): void;
}

/**
 * Embedded PostgreSQL (PGlite, a real Postgres compiled to WebAssembly) on a worker thread of its
 * own. Used when no `DATABASE_URL` is configured. A PGlite query holds its thread for its whole
 * length; on the main thread that stalled every request behind it (event-loop delay of hundreds of
 * milliseconds under load). PGlite runs one query at a time, and a transaction holds it: other
 * queries wait until it ends. Errors keep PostgreSQL's fields (`code`, `detail`, `constraint`...).
 */
export class PgliteDatabase implements Database {
  readonly kind = "pglite" as const;
  /** The worker that serves queries; null until it is started, and after it stopped. */
  #worker: Worker | null = null;
  /** Requests sent before the worker started, in order. */
  readonly #backlog: PgliteWorkerRequest[] = [];
  readonly #started: Promise<void>;
  readonly #pending = new Map<number, PendingQuery>();
  readonly #unlock: () => void;
  #nextId = 1;
  #nextTransaction = 1;
  /** Why the worker cannot answer any more (it stopped, or close() was called); null while it can. */
  #stopped: Error | null = null;
  #closing: Promise<void> | null = null;

  /** Throws DataDirInUseError when another running process owns `dataDir`. */
  constructor(options: PgliteDatabaseOptions = {}) {
    const { dataDir } = options;
    // The folder is taken before anything is read from it, and by this thread, whose process is
    // the one named in the lock: a second process fails at once.
    const unlock = dataDir === undefined ? () => {} : lockDataDir(dataDir);
    // Once only: by then this process may hold the folder again through another instance.
    let locked = true;
    this.#unlock = () => {
      if (locked) unlock();
      locked = false;
    };
    this.#started = this.#start(dataDir).catch((error: unknown) => this.#stop(error));
  }

  async #start(dataDir: string | undefined): Promise<void> {
    if (dataDir !== undefined && !existsSync(join(dataDir, CLUSTER_MARK))) {
      await createPgliteFolder(dataDir);
    }
    if (this.#stopped) return;
    const init: PgliteWorkerInit = { dataDir };
    const worker = new Worker(workerEntry(import.meta.url, "pglite-worker"), {
      eval: true,
      workerData: init,
    });
    // An idle database does not keep the process alive, as PGlite on the main thread did not;
    // a query in flight does.
    if (this.#pending.size === 0) worker.unref();
    worker.on("message", (reply: PgliteWorkerReply) => {
      const pending = this.#settle(reply.id);
      if (!pending) return;
      if (reply.ok) pending.resolve(reply.rows);
      else
        pending.reject(
          Object.assign(new Error(reply.error.message), { name: reply.error.name }, reply.error.fields),
        );
    });
    worker.on("error", (error) => this.#stop(error));
    worker.on("exit", (code) => this.#stop(`its worker thread exited with code ${code}`));
    this.#worker = worker;
    for (const request of this.#backlog.splice(0)) worker.postMessage(request);
  }

  /** The worker stopped or could not start: every query, pending or later, fails. */
  #stop(cause: unknown): void {
    if (this.#stopped) return;
    // SQLSTATE 08006 (connection failure): the breaker and the HTTP layer treat it as a
    // database that does not answer, as they would a lost PostgreSQL connection.
    const reason = cause instanceof Error ? cause.message : String(cause);
    this.#stopped = Object.assign(new Error(`the embedded database stopped: ${reason}`, { cause }), {
      code: "08006",
    });
    this.#worker = null;
    this.#unlock();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#backlog.length = 0;
    for (const query of pending) query.reject(this.#stopped);
  }

  async query<Row extends object>(sql: string, params?: readonly unknown[]): Promise<{ rows: Row[] }> {
    return { rows: (await this.#send({ op: "query", sql, params, tx: null })) as Row[] };
  }

  async transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    const tx = this.#nextTransaction++;
    await this.#send({ op: "begin", tx });
    try {
      const value = await work({
        query: async <Row extends object>(sql: string, params?: readonly unknown[]) => ({
          rows: (await this.#send({ op: "query", sql, params, tx })) as Row[],
        }),
        exec: async (sql: string) => {
          await this.#send({ op: "exec", sql, tx });
        },
      });
      await this.#send({ op: "commit", tx });
      return value;
    } catch (error) {
      // A COMMIT that failed has ended the transaction already; this ROLLBACK is then a no-op,
      // and it must still be sent so that the worker lets the waiting queries run.
      await this.#send({ op: "rollback", tx }).catch(() => {});
      throw error;
    }
  }

  async exec(sql: string): Promise<void> {
    await this.#send({ op: "exec", sql, tx: null });
  }

  /** Waits for the queries sent before it, closes PGlite, ends the worker, frees the folder. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#started;
    const worker = this.#worker;
    try {
      if (!this.#stopped) await this.#send({ op: "close" });
    } finally {
      this.#stopped ??= new Error("the embedded database is closed");
      this.#worker = null;
      await worker?.terminate();
      this.#unlock();
    }
  }

  #send(request: PgliteRequest): Promise<object[]> {
    if (this.#stopped) return Promise.reject(this.#stopped);
    if (this.#closing && request.op !== "close") {
      return Promise.reject(new Error("the embedded database is closed"));
    }
    const id = this.#nextId++;
    return new Promise<object[]>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      if (this.#pending.size === 1) this.#worker?.ref();
      const message = { ...request, id } as PgliteWorkerRequest;
      if (this.#worker) this.#worker.postMessage(message);
      else this.#backlog.push(message);
    });
  }

  #settle(id: number): PendingQuery | undefined {
    const pending = this.#pending.get(id);
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#worker?.unref();
    return pending;
  }
}

/** Creates the embedded database in the empty folder `dataDir` from the template cluster. */
async function createPgliteFolder(dataDir: string): Promise<void> {
  try {
    await createFromTemplate(dataDir);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`creating the embedded database in ${dataDir} (MEMORY_DATA_DIR): ${why}`, {
      cause: error,
    });
  }
}
