// tsc emits only JavaScript; the Lua scripts, the SQL migrations and the embedded database's
// template are read at run time from beside the compiled modules, so they are copied into dist/
// with the same relative paths.
import { cpSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "src");
const dist = join(root, "dist");
const assetEndings = [".lua", ".sql", ".tar.gz"];

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (assetEndings.some((ending) => name.endsWith(ending))) {
      cpSync(path, join(dist, relative(src, path)));
    }
  }
}
walk(src);
