import { CATEGORY_RANGES } from "./unicode-categories.js";
import type { EncodingName } from "./vocabulary.js";

/**
 * Unicode White_Space: what `\s` means in the Rust `regex` crate behind tiktoken. JavaScript's `\s`
 * is a different set (it adds U+FEFF and lacks U+0085), which is why a pattern copied verbatim into a
 * JavaScript RegExp splits text differently from tiktoken around those two characters.
 */
const WHITE_SPACE = String.raw`\t\n\v\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000`;
const SPACE = `[${WHITE_SPACE}]`;
const NOT_SPACE = `[^${WHITE_SPACE}]`;

/**
 * tiktoken writes the contractions as `(?i:'s|'t|'re|'ve|'m|'ll|'d)`. Rust case-insensitive matching
 * uses Unicode simple case folding, under which U+017F (long s) is an `s`; RegExp modifiers are not
 * available on Node 20, so the folded letters are spelled out.
 */
const CONTRACTION = String.raw`'(?:[sS\u017F]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])`;

/**
 * Regex class bodies (usable inside `[...]` of a `v`-flag RegExp) for the Unicode general
 * categories the split patterns use.
 */
export interface CategoryClasses {
  Lu: string;
  Ll: string;
  Lt: string;
  Lm: string;
  Lo: string;
  /** All marks: Mn, Mc, Me. */
  M: string;
  /** All numbers: Nd, Nl, No. */
  N: string;
}

export type CategoryName = keyof CategoryClasses;
const CATEGORY_NAMES: readonly CategoryName[] = ["Lu", "Ll", "Lt", "Lm", "Lo", "M", "N"];

/**
 * The JavaScript engine's own tables. They follow the ICU the runtime was built with (Unicode 15.1
 * to 17.0 across Node 20-24), so counting never uses them as they are; see tiktokenCategories.
 */
export const RUNTIME_CATEGORIES: CategoryClasses = {
  Lu: String.raw`\p{Lu}`,
  Ll: String.raw`\p{Ll}`,
  Lt: String.raw`\p{Lt}`,
  Lm: String.raw`\p{Lm}`,
  Lo: String.raw`\p{Lo}`,
  M: String.raw`\p{M}`,
  N: String.raw`\p{N}`,
};

/**
 * tiktoken's view of a category (Unicode 16.0, from unicode-categories.ts) as an explicit list of
 * ranges. Exact but slow to match: V8 backtracks through a class of a thousand explicit ranges
 * several times slower than through the equivalent `\p{..}` class.
 */
export function explicitCategory(name: CategoryName): string {
  let body = "";
  let next = 0;
  const numbers = CATEGORY_RANGES[name].split(" ").map((number) => Number.parseInt(number, 36));
  for (let i = 0; i + 1 < numbers.length; i += 2) {
    const [gap = 0, length = 0] = numbers.slice(i, i + 2);
    const start = next + gap;
    const end = start + length;
    body += start === end ? codePointEscape(start) : `${codePointEscape(start)}-${codePointEscape(end)}`;
    next = end + 1;
  }
  return body;
}

let resolvedCategories: CategoryClasses | undefined;

/**
 * The categories as tiktoken 1.0.22 sees them (Rust regex-syntax 0.8.5: Unicode 16.0), written as
 * the runtime's `\p{..}` class corrected by set operations: minus the code points the runtime knows
 * but tiktoken does not (on a Unicode 17 runtime, CJK Extension J and ~100 more), plus those tiktoken
 * knows but an older runtime does not. Counts therefore do not depend on the runtime's ICU, and
 * matching keeps the speed of `\p{..}`. Computed once per process by scanning every code point
 * (about 40 ms).
 */
export function tiktokenCategories(): CategoryClasses {
  if (resolvedCategories) return resolvedCategories;
  const everyCodePoint = allCodePoints();
  const classes = { ...RUNTIME_CATEGORIES };
  for (const name of CATEGORY_NAMES) {
    const runtime = RUNTIME_CATEGORIES[name];
    const pinned = `[${explicitCategory(name)}]`;
    const extra = matchedCodePoints(everyCodePoint, `[${runtime}--${pinned}]`);
    const missing = matchedCodePoints(everyCodePoint, `[${pinned}--${runtime}]`);
    let body = runtime;
    if (extra !== "") body = `[${body}--[${extra}]]`;
    if (missing !== "") body = `[${body}${missing}]`;
    classes[name] = body;
  }
  resolvedCategories = classes;
  return classes;
}

/** Every Unicode scalar value (no surrogates) in one string, in order. */
export function allCodePoints(): string {
  const chunks: string[] = [];
  const chunk: number[] = [];
  for (let codePoint = 0; codePoint <= 0x10ffff; codePoint++) {
    if (codePoint === 0xd800) codePoint = 0xe000;
    chunk.push(codePoint);
    if (chunk.length === 8192) {
      chunks.push(String.fromCodePoint(...chunk));
      chunk.length = 0;
    }
  }
  chunks.push(String.fromCodePoint(...chunk));
  return chunks.join("");
}

/** The code points of `text` that `classSource` matches, as a class body of ranges; "" for none. */
function matchedCodePoints(text: string, classSource: string): string {
  let body = "";
  let rangeStart = -1;
  let rangeEnd = -2;
  const flush = (): void => {
    if (rangeStart < 0) return;
    body += codePointEscape(rangeStart);
    if (rangeEnd > rangeStart) body += `-${codePointEscape(rangeEnd)}`;
  };
  for (const [char] of text.matchAll(new RegExp(classSource, "gv"))) {
    const codePoint = char.codePointAt(0) ?? 0; // a match is never empty
    if (codePoint !== rangeEnd + 1) {
      flush();
      rangeStart = codePoint;
    }
    rangeEnd = codePoint;
  }
  flush();
  return body;
}

function codePointEscape(codePoint: number): string {
  return `\\u{${codePoint.toString(16)}}`;
}

/**
 * The split patterns of tiktoken 1.0.22's WASM build (`tiktoken` on npm), alternative for
 * alternative, with `\s`/`\S` replaced by explicit White_Space classes and the Unicode properties
 * by `categories`.
 */
function patternSource(encoding: EncodingName, categories: CategoryClasses): string {
  const { Lu, Ll, Lt, Lm, Lo, M, N } = categories;
  const letter = `${Lu}${Ll}${Lt}${Lm}${Lo}`;
  const notLetterOrNumber = `[^\\r\\n${letter}${N}]`;
  const punctuation = `[^${WHITE_SPACE}${letter}${N}]`;
  const upper = `[${Lu}${Lt}${Lm}${Lo}${M}]`;
  const lower = `[${Ll}${Lm}${Lo}${M}]`;
  const number = `[${N}]{1,3}`;
  if (encoding === "o200k_base") {
    return [
      `${notLetterOrNumber}?${upper}*${lower}+(?:${CONTRACTION})?`,
      `${notLetterOrNumber}?${upper}+${lower}*(?:${CONTRACTION})?`,
      number,
      ` ?${punctuation}+[\\r\\n\\/]*`,
      `${SPACE}*[\\r\\n]+`,
      `${SPACE}+(?!${NOT_SPACE})`,
      `${SPACE}+`,
    ].join("|");
  }
  return [
    CONTRACTION,
    `${notLetterOrNumber}?[${letter}]+`,
    number,
    ` ?${punctuation}+[\\r\\n]*`,
    `${SPACE}*[\\r\\n]+`,
    `${SPACE}+(?!${NOT_SPACE})`,
    `${SPACE}+`,
  ].join("|");
}

/**
 * A fresh global RegExp that splits text into the pieces BPE runs on. Every character matches some
 * alternative, so the matches of a text concatenate back to the text. The `v` flag allows the set
 * operations of tiktokenCategories (and is why `/` is escaped inside a class).
 */
export function createSplitPattern(encoding: EncodingName, categories = tiktokenCategories()): RegExp {
  return new RegExp(patternSource(encoding, categories), "gv");
}

/** The pieces of `text` in order (they concatenate to `text`). */
export function splitPieces(pattern: RegExp, text: string): string[] {
  return text.match(pattern) ?? [];
}
