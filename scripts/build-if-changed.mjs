// `npm start` builds only when a source is newer than the last build: a rebuild takes ~15 s on a
// 2-core machine, and most starts change nothing.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const stamp = join(root, "dist", "cli", "main.js");

function newest(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name))));
}

const inputs = ["src", "package.json", "tsconfig.json", "tsconfig.build.json"].map((name) =>
  join(root, name),
);
if (!existsSync(stamp) || Math.max(...inputs.map(newest)) > statSync(stamp).mtimeMs) {
  process.stderr.write("building (the sources changed since the last build)...\n");
  execFileSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" });
}
