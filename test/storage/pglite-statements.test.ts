import { PGlite } from "@electric-sql/pglite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgliteStatements } from "../../src/storage/pglite-statements.js";

// The embedded database's statements run prepared (PgliteStatements) instead of through
// PGlite's query. Whatever a statement is, the caller must get what PGlite's query gives.
describe("PgliteStatements", () => {
  let db: PGlite;
  let statements: PgliteStatements;
  beforeAll(async () => {
    db = await PGlite.create({ parsers: { 20: (value: string) => Number.parseInt(value, 10) } });
    statements = new PgliteStatements(db, { maxPrepared: 4 });
    await db.exec(
      "CREATE TABLE t (id bigint PRIMARY KEY, body json, tags text[], at timestamptz, flag boolean, note text)",
    );
  });
  afterAll(async () => {
    await db.close();
  });

  it("answers the rows PGlite's query answers, parameters of every type included", async () => {
    const insert = "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6) RETURNING *";
    const at = new Date("2026-12-02T10:11:12.345Z");
    const rows = [
      [1, { role: "user", content: "é 日本 \u0001" }, ["a", "b,c", 'd"e'], at, true, null],
      [2, '{"as":"text"}', [], at.toISOString(), false, "x"],
    ];
    for (const [index, values] of rows.entries()) {
      const mine = await statements.query(insert, values);
      await db.query("DELETE FROM t");
      const theirs = (await db.query<object>(insert, values)).rows;
      expect(mine, `row ${index}`).toEqual(theirs);
      expect(mine).toHaveLength(1);
    }
    const select = "SELECT id, body, tags, at, flag, note FROM t WHERE id = ANY($1::bigint[]) ORDER BY id";
    const read = await statements.query(select, [[1, 2]]);
    expect(read).toEqual((await db.query<object>(select, [[1, 2]])).rows);
    expect(read).toMatchObject([{ id: 2, body: { as: "text" }, flag: false, note: "x" }]);
  });

  it("throws PostgreSQL's error with its code, and the next statement runs", async () => {
    const insert = "INSERT INTO t (id) VALUES ($1)";
    await statements.query(insert, [10]);
    await expect(statements.query(insert, [10])).rejects.toMatchObject({ code: "23505" });
    await expect(statements.query("SELECT 1/$1::int AS x", [0])).rejects.toMatchObject({ code: "22012" });
    await expect(statements.query("SELEC nothing", [])).rejects.toMatchObject({ code: "42601" });
    expect(await statements.query("SELECT 1/$1::int AS x", [1])).toEqual([{ x: 1 }]);
  });

  it("answers a statement prepared before its table changed, with the new columns", async () => {
    await db.exec("CREATE TABLE changing (a int)");
    await db.exec("INSERT INTO changing VALUES (1)");
    const select = "SELECT * FROM changing WHERE a = $1";
    const prepared = new PgliteStatements(db);
    expect(await prepared.query(select, [1])).toEqual([{ a: 1 }]);
    await db.exec("ALTER TABLE changing ADD COLUMN b text DEFAULT 'new'");
    expect(await prepared.query(select, [1])).toEqual([{ a: 1, b: "new" }]);
  });

  it("keeps answering past the number of statements it keeps prepared", async () => {
    const answers = [];
    for (let n = 0; n < 10; n++) answers.push(await statements.query(`SELECT $1::int + ${n} AS v`, [n]));
    expect(answers.map((rows) => rows[0])).toEqual(Array.from({ length: 10 }, (_, n) => ({ v: 2 * n })));
  });

  it("runs the statements of a transaction in it", async () => {
    await db.exec("BEGIN");
    await statements.query("INSERT INTO t (id) VALUES ($1)", [20]);
    await db.exec("ROLLBACK");
    expect(await statements.query("SELECT count(*)::int AS n FROM t WHERE id = $1", [20])).toEqual([
      { n: 0 },
    ]);
  });
});
