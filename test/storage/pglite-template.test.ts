import { spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { PGlite } from "@electric-sql/pglite";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PgliteDatabase } from "../../src/storage/database.js";
import { createFromTemplate } from "../../src/storage/pglite-template.js";

// A first start copies a template cluster into the folder (src/storage/pglite-template.ts).

const CLUSTER_FACTS = `SELECT
  (SELECT pg_control_version FROM pg_control_system()) AS control_version,
  (SELECT catalog_version_no FROM pg_control_system()) AS catalog_version,
  current_setting('server_version') AS version,
  current_setting('data_checksums') AS checksums,
  (SELECT json_agg(json_build_object('name', datname, 'encoding', encoding, 'collate', datcollate,
     'ctype', datctype) ORDER BY datname) FROM pg_database)::text AS databases`;

let folder: string;
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "swm-pglite-template-"));
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

describe("the template cluster", { timeout: 120_000 }, () => {
  it("is the cluster the installed PGlite's initdb makes (run `npm run pglite-template` when not)", async () => {
    const dataDir = join(folder, "facts");
    const fromTemplate = new PgliteDatabase({ dataDir });
    const [copied] = (await fromTemplate.query<Record<string, string>>(CLUSTER_FACTS)).rows;
    await fromTemplate.close();
    // PGlite in memory runs initdb.
    const made = await PGlite.create();
    const [initdb] = (await made.query<Record<string, string>>(CLUSTER_FACTS)).rows;
    await made.close();
    expect(Number(copied?.catalog_version)).toBeGreaterThan(0);
    expect(copied).toEqual(initdb);
  });

  it("keeps the database files to their owner", async () => {
    const dataDir = join(folder, "modes");
    await createFromTemplate(dataDir);
    for (const name of ["PG_VERSION", "global/pg_control", "base"]) {
      expect(statSync(join(dataDir, name)).mode & 0o077, name).toBe(0);
    }
  });
});

describe("a first start cut short", { timeout: 120_000 }, () => {
  it("leaves a folder the next start creates the database in, never half a cluster", async () => {
    const dataDir = join(folder, "killed");
    const script = `
      import { createFromTemplate } from "./src/storage/pglite-template.ts";
      await createFromTemplate(${JSON.stringify(dataDir)});
      process.stdout.write("created");`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.once("exit", (_, signal) => resolve(signal)),
    );
    // Killed once some of its ~1,000 files are written, before all of them are.
    let written = 0;
    while (written < 100 && child.exitCode === null) {
      await new Promise((resolve) => setTimeout(resolve, 2));
      written = existsSync(dataDir) ? readdirSync(dataDir, { recursive: true }).length : 0;
    }
    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");
    expect(output).toBe("");
    expect(written).toBeGreaterThanOrEqual(100);

    const db = new PgliteDatabase({ dataDir });
    await db.exec("CREATE TABLE notes (note text)");
    await db.query("INSERT INTO notes VALUES ($1)", ["after the cut"]);
    expect((await db.query("SELECT note FROM notes")).rows).toEqual([{ note: "after the cut" }]);
    await db.close();
  });
});

describe("creating the embedded database in a folder", { timeout: 120_000 }, () => {
  it("names the folder and the reason when it cannot be created there, frees the folder, and creates it once the cause is gone", async () => {
    const dataDir = join(folder, "blocked");
    await mkdir(dataDir);
    // A file where the template has the folder of the databases.
    await writeFile(join(dataDir, "base"), "in the way");
    const failed = new PgliteDatabase({ dataDir });
    const error = await failed.query("SELECT 1").then(
      () => null,
      (reason: unknown) => reason as Error & { code?: string },
    );
    expect(error?.code).toBe("08006");
    expect(error?.message).toContain(`creating the embedded database in ${dataDir} (MEMORY_DATA_DIR)`);
    expect(error?.message).toContain(
      `(MEMORY_DATA_DIR): EEXIST: file already exists, mkdir '${join(dataDir, "base")}'`,
    );
    await failed.close();

    await rm(join(dataDir, "base"));
    const db = new PgliteDatabase({ dataDir });
    expect((await db.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
    await db.close();
  });
});

describe("a folder that is not a whole cluster", { timeout: 120_000 }, () => {
  it("is refused at start, naming the folder", async () => {
    const dataDir = join(folder, "damaged");
    await createFromTemplate(dataDir);
    await rm(join(dataDir, "global"), { recursive: true });
    const db = new PgliteDatabase({ dataDir });
    const error = await db.query("SELECT 1").then(
      () => null,
      (reason: unknown) => reason as Error & { code?: string },
    );
    expect(error?.code).toBe("08006");
    expect(error?.message).toContain(`opening the embedded database in ${dataDir} (MEMORY_DATA_DIR): `);
    await db.close();
  });
});

describe("a template that is not one", () => {
  /** A ustar header and its data, padded to 512-byte blocks. */
  function entry(name: string, type: string, data = "", size = data.length): Buffer {
    const header = Buffer.alloc(512);
    header.write(name, 0, 100);
    header.write("0000600\0", 100);
    header.write(`${size.toString(8).padStart(11, "0")}\0`, 124);
    header.write(type, 156);
    header.write("ustar\0", 257);
    header.write("00", 263);
    const body = Buffer.alloc(Math.ceil(data.length / 512) * 512);
    body.write(data);
    return Buffer.concat([header, body]);
  }
  const cases: [string, Buffer, RegExp][] = [
    ["a link", Buffer.concat([entry("base", "5"), entry("base/link", "2")]), /entry type '2'.*base\/link/],
    ["a name outside the folder", entry("../outside", "0", "x"), /a name outside the folder .*\.\.\/outside/],
    ["an entry cut short", entry("PG_VERSION", "0", "18\n", 4096), /the archive ends inside PG_VERSION/],
    ["no PG_VERSION", entry("global", "5"), /no PG_VERSION in the template/],
  ];
  const written: string[] = [];
  afterEach(async () => {
    for (const path of written.splice(0)) await rm(path, { recursive: true, force: true });
  });

  it.each(cases)(
    "with %s is refused, naming the template and the entry, and writes no cluster",
    async (_, tar, why) => {
      const template = join(folder, `bad-${written.length}-${Math.random()}.tar.gz`);
      const dataDir = join(folder, `bad-${Math.random()}`);
      written.push(template, dataDir);
      await writeFile(template, gzipSync(Buffer.concat([tar, Buffer.alloc(1024)])));
      await expect(createFromTemplate(dataDir, pathToFileURL(template))).rejects.toThrow(why);
      await expect(createFromTemplate(dataDir, pathToFileURL(template))).rejects.toThrow(template);
      expect(existsSync(join(dataDir, "PG_VERSION"))).toBe(false);
      expect(existsSync(join(folder, "outside"))).toBe(false);
    },
  );

  it("that cannot be read is refused, naming it", async () => {
    const template = join(folder, "missing.tar.gz");
    await expect(createFromTemplate(join(folder, "missing"), pathToFileURL(template))).rejects.toThrow(
      `ENOENT: no such file or directory, open '${template}'`,
    );
    expect(await readdir(folder)).not.toContain("missing");
  });

  it("that is not gzip is refused, naming the template", async () => {
    const template = join(folder, "plain.tar.gz");
    await writeFile(template, "not gzip");
    await expect(createFromTemplate(join(folder, "plain"), pathToFileURL(template))).rejects.toThrow(
      `${template}: incorrect header check`,
    );
    expect(await readdir(folder)).not.toContain("plain");
  });
});
