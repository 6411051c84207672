import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgliteDatabase } from "../../src/storage/database.js";

// PGlite runs on a worker thread (src/storage/pglite-worker.ts): what crosses the thread must
// behave as PGlite on the caller's thread did.

// PGlite starts slowly on a loaded 2-core machine.
describe("the embedded database on its worker thread", { timeout: 120_000 }, () => {
  let db: PgliteDatabase;
  beforeAll(async () => {
    db = new PgliteDatabase();
    await db.exec("CREATE TABLE items (id int PRIMARY KEY, n bigint NOT NULL, note text)");
  });
  afterAll(async () => {
    await db.close();
  });

  it("returns rows, with BIGINT as a number", async () => {
    await db.query("INSERT INTO items (id, n) VALUES ($1, $2)", [1, 9_007_199_254_740_991]);
    const { rows } = await db.query<{ id: number; n: number; note: string | null }>("SELECT * FROM items");
    expect(rows).toEqual([{ id: 1, n: 9_007_199_254_740_991, note: null }]);
  });

  it("keeps an error's PostgreSQL fields: code, detail, constraint, table", async () => {
    const error = await db.query("INSERT INTO items (id, n) VALUES (1, 1)").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({
      code: "23505",
      constraint: "items_pkey",
      table: "items",
      detail: "Key (id)=(1) already exists.",
    });
    expect((error as Error).message).toContain("duplicate key");
    const syntax = await db.exec("SELEC 1").catch((e: unknown) => e);
    expect(syntax).toMatchObject({ code: "42601" });
  });

  it("rolls back a transaction whose work throws, and the database goes on", async () => {
    const failure = await db
      .transaction(async (tx) => {
        await tx.query("INSERT INTO items (id, n) VALUES (2, 2)");
        await tx.exec("UPDATE items SET note = 'changed' WHERE id = 1");
        throw new Error("the work failed");
      })
      .catch((e: unknown) => e);
    expect(failure).toMatchObject({ message: "the work failed" });
    const { rows } = await db.query<{ id: number; note: string | null }>(
      "SELECT id, note FROM items ORDER BY id",
    );
    expect(rows).toEqual([{ id: 1, note: null }]);
    // A statement that fails inside a transaction rolls it back too, with the statement's error.
    const violation = await db
      .transaction(async (tx) => {
        await tx.query("INSERT INTO items (id, n) VALUES (3, 3)");
        await tx.query("INSERT INTO items (id, n) VALUES (1, 1)");
      })
      .catch((e: unknown) => e);
    expect(violation).toMatchObject({ code: "23505" });
    expect((await db.query("SELECT id FROM items WHERE id = 3")).rows).toEqual([]);
  });

  it("makes a query outside a transaction wait until it commits", async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let inserted!: () => void;
    const insertedInTx = new Promise<void>((resolve) => {
      inserted = resolve;
    });
    const transaction = db.transaction(async (tx) => {
      await tx.query("INSERT INTO items (id, n) VALUES (10, 10)");
      inserted();
      await held;
      await tx.query("UPDATE items SET n = 11 WHERE id = 10");
      return "committed";
    });
    await insertedInTx;
    let outsideDone = false;
    const outside = db.query<{ n: number }>("SELECT n FROM items WHERE id = 10").then((result) => {
      outsideDone = true;
      return result.rows;
    });
    // Were the outside query run inside the open transaction, it would see n = 10 now.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(outsideDone).toBe(false);
    release();
    expect(await transaction).toBe("committed");
    expect(await outside).toEqual([{ n: 11 }]);
  });

  it("runs transactions one after another", async () => {
    await db.exec("CREATE TABLE counter (n int NOT NULL); INSERT INTO counter VALUES (0)");
    await Promise.all(
      Array.from({ length: 10 }, () =>
        db.transaction(async (tx) => {
          const { rows } = await tx.query<{ n: number }>("SELECT n FROM counter");
          await tx.query("UPDATE counter SET n = $1", [(rows[0]?.n ?? 0) + 1]);
        }),
      ),
    );
    expect((await db.query("SELECT n FROM counter")).rows).toEqual([{ n: 10 }]);
  });
});

describe("closing the embedded database", { timeout: 120_000 }, () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "swm-pglite-worker-"));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("keeps what was written, ends the worker, and frees the folder for another process", async () => {
    const db = new PgliteDatabase({ dataDir });
    await db.exec("CREATE TABLE kept (note text)");
    await db.query("INSERT INTO kept VALUES ($1)", ["written before close"]);
    await db.close();
    await expect(db.query("SELECT 1")).rejects.toThrow(/closed/);

    // Another process opens the folder and reads what this one wrote.
    const script = `
      import { PgliteDatabase } from "./src/storage/database.ts";
      const db = new PgliteDatabase({ dataDir: ${JSON.stringify(dataDir)} });
      const { rows } = await db.query("SELECT note FROM kept");
      await db.close();
      process.stdout.write(JSON.stringify(rows));`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    // The child exits on its own: a closed database leaves no thread keeping it alive.
    const code = await new Promise((resolve) => child.once("exit", resolve));
    expect(code).toBe(0);
    expect(JSON.parse(output)).toEqual([{ note: "written before close" }]);
  });
});
