/**
 * Writes src/storage/pglite-template.tar.gz, the cluster a first start of the embedded database
 * copies into its empty folder (see src/storage/pglite-template.ts): what the installed PGlite's
 * initdb makes, shut down cleanly, packed with PG_VERSION last. Run it after changing PGlite's
 * version (`npm run pglite-template`); test/storage/pglite-template.test.ts fails until then.
 */
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { create } from "tar";

const out = new URL("../src/storage/pglite-template.tar.gz", import.meta.url);
const folder = await mkdtemp(join(tmpdir(), "swm-pglite-template-"));
try {
  await (await PGlite.create(folder)).close();
  const entries = await listed(folder, "");
  // A folder holding PG_VERSION is taken for a whole cluster: it must be the last file written.
  const order = [...entries.filter((name) => name !== "PG_VERSION"), "PG_VERSION"];
  await create(
    { cwd: folder, file: out.pathname, gzip: { level: 9 }, portable: true, noDirRecurse: true },
    order,
  );
  console.log(`${out.pathname}: ${order.length} entries, ${(await stat(out)).size} bytes`);
} finally {
  await rm(folder, { recursive: true, force: true });
}

/** Every entry under `folder`, each folder before what it holds, in name order. */
async function listed(folder: string, under: string): Promise<string[]> {
  const names: string[] = [];
  for (const entry of (await readdir(join(folder, under), { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    const name = under ? `${under}/${entry.name}` : entry.name;
    names.push(name);
    if (entry.isDirectory()) names.push(...(await listed(folder, name)));
  }
  return names;
}
