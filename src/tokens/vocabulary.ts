// biome-ignore-all lint/style/noNonNullAssertion: reads of typed arrays and strings at indexes the loop bounds keep in range; a check would cost in the tokenizer's hot loop
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { RankTable, type RankTableBuffers } from "./rank-table.js";

/** The OpenAI encodings this package counts exactly. */
export type EncodingName = "o200k_base" | "cl100k_base";

/**
 * Token bytes to rank. A key holds one UTF-16 code unit per byte (0x00-0xFF, "latin1"), so any byte
 * sequence, valid UTF-8 or not, is a plain string key. The rank is also the token id.
 */
export type RankMap = Pick<ReadonlyMap<string, number>, "get" | "has" | "size">;

export interface Vocabulary {
  readonly encoding: EncodingName;
  readonly ranks: RankTable;
}

/** What a worker thread needs to read a vocabulary this thread loaded (see `adoptVocabulary`). */
export interface SharedVocabulary {
  readonly encoding: EncodingName;
  readonly buffers: RankTableBuffers;
}

/**
 * SHA-256 of OpenAI's published rank files: the `expected_hash` values in tiktoken's
 * `tiktoken_ext/openai_public.py`. A file that does not match is refused rather than miscounted.
 */
const EXPECTED_SHA256: Readonly<Record<EncodingName, string>> = {
  o200k_base: "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
  cl100k_base: "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
};

const BASE64_VALUES = (() => {
  const values = new Int8Array(256).fill(-1);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (let i = 0; i < alphabet.length; i++) values[alphabet.charCodeAt(i)] = i;
  return values;
})();

const SPACE = 0x20;
const NEWLINE = 0x0a;
const EQUALS = 0x3d;
const ZERO = 0x30;

const loaded = new Map<EncodingName, Vocabulary>();

/**
 * The rank table of an encoding, read once per process from the `.tiktoken` file that the
 * `gpt-tokenizer` package ships (OpenAI's own file format: one `base64(token bytes) rank` per line).
 * Loading is lazy and synchronous: a process that only counts for gpt-4o never reads cl100k_base.
 */
export function loadVocabulary(encoding: EncodingName): Vocabulary {
  const cached = loaded.get(encoding);
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const file = readFileSync(require.resolve(`gpt-tokenizer/data/${encoding}.tiktoken`));
  const digest = createHash("sha256").update(file).digest("hex");
  if (digest !== EXPECTED_SHA256[encoding]) {
    throw new Error(`${encoding}: rank file does not match OpenAI's published SHA-256 (got ${digest})`);
  }
  const vocabulary: Vocabulary = { encoding, ranks: parseRankFile(file) };
  loaded.set(encoding, vocabulary);
  return vocabulary;
}

/** The vocabulary of `encoding`, loaded here if need be, to hand to a worker thread. */
export function shareVocabulary(encoding: EncodingName): SharedVocabulary {
  return { encoding, buffers: loadVocabulary(encoding).ranks.buffers };
}

/**
 * Makes this thread count with a vocabulary another thread loaded (`shareVocabulary`), reading the
 * same memory, rather than reading and holding the rank file again.
 */
export function adoptVocabulary(shared: SharedVocabulary): void {
  if (!loaded.has(shared.encoding))
    loaded.set(shared.encoding, { encoding: shared.encoding, ranks: new RankTable(shared.buffers) });
}

/** Parses `base64 rank\n` lines. Hand-rolled because Buffer-per-line decoding is twice as slow. */
function parseRankFile(file: Uint8Array): RankTable {
  // Base64 is 4 characters for 3 bytes, so the tokens' bytes fit in 3/4 of the file.
  const bytes = new Uint8Array(Math.ceil((file.length * 3) / 4));
  const starts: number[] = [0];
  const ranks: number[] = [];
  let length = 0;
  let position = 0;
  while (position < file.length) {
    let bits = 0;
    let accumulator = 0;
    for (let byte = file[position++]!; byte !== SPACE; byte = file[position++]!) {
      if (byte === EQUALS) continue;
      const value = BASE64_VALUES[byte]!;
      if (value < 0) throw new Error(`invalid base64 byte ${byte} in rank file at offset ${position - 1}`);
      accumulator = ((accumulator << 6) | value) & 0xffffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes[length++] = (accumulator >> bits) & 0xff;
      }
    }
    let rank = 0;
    while (position < file.length) {
      const byte = file[position++]!;
      if (byte === NEWLINE) break;
      rank = rank * 10 + (byte - ZERO);
    }
    starts.push(length);
    ranks.push(rank);
  }
  return RankTable.build(bytes.subarray(0, length), Int32Array.from(starts), Int32Array.from(ranks));
}
