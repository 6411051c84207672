/**
 * A first start of the embedded database copies a template cluster into its empty folder instead
 * of running initdb: `pglite-template.tar.gz` beside this module, what initdb of the PGlite
 * version package.json pins makes (written by `npm run pglite-template`). Measured on an idle
 * 2-core machine, opening an empty folder: initdb 4.9 s; PGlite's own `loadDataDir` with this
 * template 1.5-1.6 s (it copies the tarball into WebAssembly a byte at a time); these 0.6 s
 * (node-tar 0.9 s) plus the 0.5 s of opening the folder, each file synced to disk.
 *
 * Read by hand, not with a tar library, for the order and the syncing: PG_VERSION, which makes
 * a folder a cluster for PGlite, is written last, after every other file is on disk, so a first
 * start that is cut short (killed, power lost) leaves a folder the next start creates again,
 * never half a cluster that would be opened. The template holds only folders and plain files
 * (ustar, short names), which is all that is accepted.
 */
import { mkdir, open, readFile } from "node:fs/promises";
import { join, normalize, sep } from "node:path";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";

export const TEMPLATE_URL = new URL("./pglite-template.tar.gz", import.meta.url);

/** The file whose presence makes a folder a cluster: written last. */
export const CLUSTER_MARK = "PG_VERSION";

interface TemplateEntry {
  /** Path relative to the cluster's folder, with `/` separators. */
  name: string;
  /** Null for a folder. */
  data: Buffer | null;
}

/** Writes the template cluster into `dataDir` (created when missing), PG_VERSION last. */
export async function createFromTemplate(dataDir: string, template: URL = TEMPLATE_URL): Promise<void> {
  const archive = await promisify(gunzip)(await readFile(template)).catch((error: Error) => {
    throw new Error(`${template.pathname}: ${error.message}`, { cause: error });
  });
  const entries = templateEntries(archive, template);
  const folders = [dataDir, ...entries.filter((e) => e.data === null).map((e) => join(dataDir, e.name))];
  for (const folder of folders) await mkdir(folder, { recursive: true, mode: 0o700 });
  const files = entries.filter((e) => e.data !== null && e.name !== CLUSTER_MARK);
  await inParallel(files, 4, (e) => writeSynced(join(dataDir, e.name), e.data as Buffer));
  // The folders' entries of the files, then the mark and its own entry.
  for (const folder of folders) await syncFolder(folder);
  const mark = entries.find((e) => e.name === CLUSTER_MARK);
  if (!mark?.data) throw new Error(`${template.pathname}: no ${CLUSTER_MARK} in the template`);
  await writeSynced(join(dataDir, CLUSTER_MARK), mark.data);
  await syncFolder(dataDir);
}

/** The entries of an uncompressed ustar archive; anything else than folders and files is refused. */
function templateEntries(archive: Buffer, template: URL): TemplateEntry[] {
  const entries: TemplateEntry[] = [];
  for (let at = 0; at + 512 <= archive.length && archive[at] !== 0; ) {
    const header = archive.subarray(at, at + 512);
    const prefix = field(header, 345, 155);
    const name = normalize(prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    const size = Number.parseInt(field(header, 124, 12).trim() || "0", 8);
    const type = String.fromCharCode(header[156] || 0x30);
    const refused =
      field(header, 257, 5) !== "ustar"
        ? "not a ustar header"
        : !Number.isSafeInteger(size) || at + 512 + size > archive.length
          ? "a size past the end of the archive"
          : name.startsWith("..") || name.startsWith(sep) || name.includes(`${sep}..`)
            ? "a name outside the folder"
            : type !== "0" && type !== "5"
              ? `entry type '${type}' (only folders and files)`
              : null;
    if (refused) throw new Error(`${template.pathname}: ${refused} at byte ${at} (${name || "no name"})`);
    const data = type === "5" ? null : archive.subarray(at + 512, at + 512 + size);
    entries.push({ name: name.replace(/\/$/, ""), data });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return entries;
}

/** A NUL-terminated header field as text. */
function field(header: Buffer, start: number, length: number): string {
  const bytes = header.subarray(start, start + length);
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end < 0 ? length : end).toString("utf8");
}

async function writeSynced(path: string, data: Buffer): Promise<void> {
  const file = await open(path, "w", 0o600);
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
}

async function syncFolder(path: string): Promise<void> {
  const folder = await open(path, "r");
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

/** Runs `work` on every item, `width` at a time (libuv's file-system threads are four). */
async function inParallel<T>(
  items: readonly T[],
  width: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: width }, lane));
}
