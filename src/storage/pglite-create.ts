/**
 * Creates the embedded database in an empty folder, then ends: `node pglite-create.js <folder>`,
 * run by PgliteDatabase on a first start. Its own process, not a thread: creating runs initdb in
 * WebAssembly instances of its own, and the memory it takes stayed resident in the serving
 * process after a creating thread had ended (measured, `serve` in an empty folder, idle after
 * start: 370-390 MB resident with a thread, 313-329 MB with a process, 274-299 MB opening a
 * folder created before). A failure is one line on stderr and exit code 1.
 */
import { openPglite, pgliteErrorMessage } from "./pglite-open.js";

const dataDir = process.argv[2];
try {
  if (!dataDir) throw new Error("usage: pglite-create <folder>");
  await (await openPglite(dataDir)).close();
} catch (error) {
  process.stderr.write(`${pgliteErrorMessage(error)}\n`);
  process.exitCode = 1;
}
