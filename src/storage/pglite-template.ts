/**
 * A first start of the embedded database copies a template cluster into its empty folder instead
 * of running initdb: `pglite-template.tar.gz` beside this module, what initdb of the PGlite
 * version package.json pins makes (written by `npm run pglite-template`). Measured on an idle
 * 2-core machine, opening an empty folder: initdb 4.9 s; PGlite's own `loadDataDir` with this
 * template 1.5-1.6 s (it copies the tarball into WebAssembly a byte at a time); this module about
 * 0.6 s (node-tar 0.9 s, without syncing) plus the 0.5 s of opening the folder.
 *
 * Read by hand, not with a tar library, for the order and the syncing: PG_VERSION, which makes
 * a folder a cluster for PGlite, is written last, after every other file is on disk, so a first
 * start that is cut short (killed, power lost) leaves a folder the next start creates again,
 * never half a cluster that would be opened. Streamed, a chunk at a time: the 40 MB unpacked at
 * once stayed resident in the service (RSS once it answered 385-397 MB against 299-310). The
 * template holds only folders and plain files (ustar, short names): nothing else is accepted.
 */
import { createReadStream } from "node:fs";
import { type FileHandle, mkdir, open } from "node:fs/promises";
import { join, normalize, sep } from "node:path";
import { createGunzip } from "node:zlib";

export const TEMPLATE_URL = new URL("./pglite-template.tar.gz", import.meta.url);

/** The file whose presence makes a folder a cluster: written last. */
export const CLUSTER_MARK = "PG_VERSION";

const BLOCK = 512;

/** An entry being unpacked: its file (null for a folder or the mark) and the bytes still to come. */
interface Unpacking {
  name: string;
  file: FileHandle | null;
  left: number;
  padding: number;
}

/** Writes the template cluster into `dataDir` (created when missing), PG_VERSION last. */
export async function createFromTemplate(dataDir: string, template: URL = TEMPLATE_URL): Promise<void> {
  const where = template.pathname;
  const folders = [dataDir];
  const files: string[] = [];
  const mark: Buffer[] = [];
  let entry: Unpacking | null = null;
  let pending: Buffer = Buffer.alloc(0);
  let offset = 0;
  try {
    for await (const chunk of gunzipped(template)) {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length > 0) {
        if (entry === null) {
          if (pending.length < BLOCK) break;
          const header = pending.subarray(0, BLOCK);
          pending = pending.subarray(BLOCK);
          offset += BLOCK;
          if (header[0] === 0) continue; // the archive's closing blocks
          const { name, size, folder } = readHeader(header, `${where}: at byte ${offset - BLOCK}`);
          if (offset === BLOCK) await mkdir(dataDir, { recursive: true, mode: 0o700 });
          const path = join(dataDir, name);
          if (folder) await mkdir(path, { recursive: true, mode: 0o700 });
          if (folder) folders.push(path);
          else if (name !== CLUSTER_MARK) files.push(path);
          const file = folder || name === CLUSTER_MARK ? null : await open(path, "w", 0o600);
          entry = { name, file, left: size, padding: (BLOCK - (size % BLOCK)) % BLOCK };
        }
        const data = pending.subarray(0, Math.min(entry.left, pending.length));
        if (entry.file) await entry.file.write(data);
        else if (entry.name === CLUSTER_MARK) mark.push(Buffer.from(data));
        entry.left -= data.length;
        const skipped = Math.min(entry.padding, pending.length - data.length);
        entry.padding -= skipped;
        pending = pending.subarray(data.length + skipped);
        offset += data.length + skipped;
        if (entry.left > 0 || entry.padding > 0) break;
        await entry.file?.close();
        entry = null;
      }
    }
    if (entry) throw new Error(`${where}: the archive ends inside ${entry.name}`);
  } catch (error) {
    await entry?.file?.close();
    // A file-system error names its own path (the folder's, or the template's when it cannot be
    // read); the others (zlib's "incorrect header check") are the template's.
    if (error instanceof Error && !("path" in error) && !error.message.startsWith(where)) {
      throw new Error(`${where}: ${error.message}`, { cause: error });
    }
    throw error;
  }
  if (mark.length === 0) throw new Error(`${where}: no ${CLUSTER_MARK} in the template`);
  // Every file and the folders' entries of them on disk, then the mark and its own entry.
  await inParallel(files, 4, (path) => synced(path, "r"));
  for (const folder of folders) await synced(folder, "r");
  await synced(join(dataDir, CLUSTER_MARK), "w", Buffer.concat(mark));
  await synced(dataDir, "r");
}

/** The template's tar stream, in 64 kB chunks. */
function gunzipped(template: URL): AsyncIterable<Buffer> {
  const gunzip = createGunzip({ chunkSize: 64 * 1024 });
  const source = createReadStream(template);
  source.on("error", (error) => gunzip.destroy(error));
  return source.pipe(gunzip);
}

/** A ustar header: a folder or a plain file with a name inside the cluster's folder, or an error. */
function readHeader(header: Buffer, at: string): { name: string; size: number; folder: boolean } {
  const prefix = field(header, 345, 155);
  const name = normalize(prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100)).replace(
    /\/$/,
    "",
  );
  const size = Number.parseInt(field(header, 124, 12).trim() || "0", 8);
  const type = String.fromCharCode(header[156] || 0x30);
  const refused =
    field(header, 257, 5) !== "ustar"
      ? "not a ustar header"
      : !Number.isSafeInteger(size) || size < 0
        ? "no size"
        : name === "." || name.startsWith("..") || name.startsWith(sep) || name.includes(`${sep}..`)
          ? "a name outside the folder"
          : type !== "0" && type !== "5"
            ? `entry type '${type}' (only folders and files)`
            : null;
  if (refused) throw new Error(`${at}: ${refused} (${name || "no name"})`);
  return { name, size, folder: type === "5" };
}

/** A NUL-terminated header field as text. */
function field(header: Buffer, start: number, length: number): string {
  const bytes = header.subarray(start, start + length);
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end < 0 ? length : end).toString("utf8");
}

/** Opens `path`, writes `data` when given, and syncs it to disk (a folder: its entries). */
async function synced(path: string, flags: "r" | "w", data?: Buffer): Promise<void> {
  const handle = await open(path, flags, 0o600);
  try {
    if (data) await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
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
