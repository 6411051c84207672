// biome-ignore-all lint/style/noNonNullAssertion: reads of typed arrays and strings at indexes the loop bounds keep in range; a check would cost in the tokenizer's hot loop
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

/** The OpenAI encodings this package counts exactly. */
export type EncodingName = "o200k_base" | "cl100k_base";

/**
 * Token bytes to rank. A key holds one UTF-16 code unit per byte (0x00-0xFF, "latin1"), so any byte
 * sequence, valid UTF-8 or not, is a plain string key. The rank is also the token id.
 */
export type RankMap = ReadonlyMap<string, number>;

export interface Vocabulary {
  readonly encoding: EncodingName;
  readonly ranks: RankMap;
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

/** Parses `base64 rank\n` lines. Hand-rolled because Buffer-per-line decoding is twice as slow. */
function parseRankFile(file: Uint8Array): Map<string, number> {
  const ranks = new Map<string, number>();
  const tokenBytes: number[] = [];
  let position = 0;
  while (position < file.length) {
    tokenBytes.length = 0;
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
        tokenBytes.push((accumulator >> bits) & 0xff);
      }
    }
    let rank = 0;
    while (position < file.length) {
      const byte = file[position++]!;
      if (byte === NEWLINE) break;
      rank = rank * 10 + (byte - ZERO);
    }
    ranks.set(String.fromCharCode(...tokenBytes), rank);
  }
  return ranks;
}
