import { mergeLargePiece, mergeSmallPiece, SMALL_PIECE_BYTES } from "./merge.js";
import { findRun, PeriodicRunCounter } from "./periodic-runs.js";
import { type CategoryClasses, createSplitPattern, splitPieces, tiktokenCategories } from "./pretokenizer.js";
import { utf8ByteString } from "./utf8.js";
import { type EncodingName, loadVocabulary, type RankMap } from "./vocabulary.js";

/** What the TokenCounter needs from a tokenizer. Replaceable through `TokenCounterOptions.encoder`. */
export interface TokenEncoder {
  /** Name of the encoding, for example `o200k_base`. */
  readonly encoding: string;
  /** Number of tokens in `text`, all of it ordinary text (no special tokens). */
  count(text: string): number;
}

/** Pieces at least this long are checked for a repeated short unit (see periodic-runs.ts). */
const LONG_RUN_BYTES = 8192;
/** Remembered counts of merged small pieces (at most ~1 MB); the table is dropped when full. */
const MAX_REMEMBERED_PIECES = 8192;

/**
 * Exact tiktoken-compatible encoder for one encoding: tiktoken's split pattern with Unicode
 * White_Space (pretokenizer.ts), then byte-pair merging in tiktoken's order (merge.ts) over the
 * official rank file (vocabulary.ts). Special-token strings such as `<|endoftext|>` are ordinary
 * text here, as with tiktoken's `encode_ordinary`.
 */
export class BytePairEncoder implements TokenEncoder {
  readonly encoding: EncodingName;
  readonly #ranks: RankMap;
  readonly #pattern: RegExp;
  readonly #runs: PeriodicRunCounter;
  /**
   * Pieces that are not a single token repeat a lot in non-English text and in digit runs ("ⅫⅫⅫ"
   * splits into thousands of identical pieces), so their merge results are remembered.
   */
  readonly #mergedPieces = new Map<string, number>();

  /**
   * @param categories Unicode category tables for the split pattern. Only the table generator and
   *   tests pass anything but the default (tiktoken's Unicode 16.0 tables).
   */
  constructor(encoding: EncodingName, categories: CategoryClasses = tiktokenCategories()) {
    this.encoding = encoding;
    this.#ranks = loadVocabulary(encoding).ranks;
    this.#pattern = createSplitPattern(encoding, categories);
    this.#runs = new PeriodicRunCounter(this.#ranks);
  }

  count(text: string): number {
    const pieces = splitPieces(this.#pattern, text);
    let tokens = 0;
    for (const piece of pieces) tokens += this.#countPiece(piece);
    return tokens;
  }

  /**
   * Token ids of `text`, always by exact merging (no periodic shortcut); `count(text)` equals
   * `encode(text).length`. Used to prove exactness against tiktoken.
   */
  encode(text: string): number[] {
    const ids: number[] = [];
    const starts: number[] = [];
    for (const piece of splitPieces(this.#pattern, text)) {
      const bytes = utf8ByteString(piece);
      const whole = this.#ranks.get(bytes);
      if (whole !== undefined) {
        ids.push(whole);
        continue;
      }
      starts.length = 0;
      if (bytes.length <= SMALL_PIECE_BYTES) mergeSmallPiece(bytes, this.#ranks, starts);
      else mergeLargePiece(bytes, this.#ranks, starts);
      for (let i = 0; i < starts.length; i++) {
        const token = bytes.slice(starts[i] ?? 0, starts[i + 1] ?? bytes.length);
        // biome-ignore lint/style/noNonNullAssertion: every merge result is a token of the vocabulary
        ids.push(this.#ranks.get(token)!);
      }
    }
    return ids;
  }

  /** The pre-tokenized pieces of `text` (they concatenate to `text`). */
  split(text: string): string[] {
    return splitPieces(this.#pattern, text);
  }

  #countPiece(piece: string): number {
    const bytes = utf8ByteString(piece);
    if (this.#ranks.has(bytes)) return 1;
    if (bytes.length <= SMALL_PIECE_BYTES) {
      const remembered = this.#mergedPieces.get(bytes);
      if (remembered !== undefined) return remembered;
      const tokens = mergeSmallPiece(bytes, this.#ranks);
      if (this.#mergedPieces.size >= MAX_REMEMBERED_PIECES) this.#mergedPieces.clear();
      this.#mergedPieces.set(bytes, tokens);
      return tokens;
    }
    if (bytes.length >= LONG_RUN_BYTES) {
      const run = findRun(piece);
      const count = run ? this.#runs.count(run) : undefined;
      if (count !== undefined) return count;
    }
    return mergeLargePiece(bytes, this.#ranks);
  }
}

const encoders = new Map<EncodingName, BytePairEncoder>();

/** The process-wide encoder for `encoding` (the rank table is loaded on first use, ~80 ms for o200k). */
export function getEncoder(encoding: EncodingName): BytePairEncoder {
  let encoder = encoders.get(encoding);
  if (!encoder) {
    encoder = new BytePairEncoder(encoding);
    encoders.set(encoding, encoder);
  }
  return encoder;
}
