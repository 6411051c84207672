/**
 * Regenerates src/tokens/unicode-categories.ts: the Unicode general categories exactly as the
 * reference tokenizer (`tiktoken` on npm, Rust regex-syntax 0.8.5, Unicode 16.0) sees them.
 *
 *   npx tsx test/tokens/support/generate-unicode-categories.ts
 *
 * Needs a runtime whose ICU is at least as new as tiktoken's Unicode (Node 20.19+ builds with ICU 76+
 * qualify). It starts from the runtime's `\p{..}` tables, probes every code point in several contexts
 * against tiktoken with both encodings, drops the code points tiktoken does not know (assigned after
 * its Unicode version), and checks the result with a second full probe. About two minutes.
 */
import { writeFileSync } from "node:fs";
import { get_encoding } from "tiktoken";
import { BytePairEncoder } from "../../../src/tokens/encoder.js";
import { type CategoryClasses, RUNTIME_CATEGORIES } from "../../../src/tokens/pretokenizer.js";
import type { EncodingName } from "../../../src/tokens/vocabulary.js";

const CATEGORIES = ["Lu", "Ll", "Lt", "Lm", "Lo", "M", "N"] as const;
type Category = (typeof CATEGORIES)[number];
const MAX_CODE_POINT = 0x10ffff;
const ENCODINGS: readonly EncodingName[] = ["o200k_base", "cl100k_base"];

const isSurrogate = (codePoint: number): boolean => codePoint >= 0xd800 && codePoint <= 0xdfff;

/** Contexts in which a code point's category decides how the text is split. */
function contexts(char: string): string {
  return [
    `a${char}b`,
    `A${char}a`,
    `${char}'s`,
    ` ${char}x`,
    `1${char}2`,
    `${char}${char}`,
    `\n${char} `,
    `${char}\u0301a`,
  ].join("");
}

function runtimeMembership(category: Category): Uint8Array {
  const pattern = new RegExp(`^\\p{${category}}$`, "u");
  const member = new Uint8Array(MAX_CODE_POINT + 1);
  for (let codePoint = 0; codePoint <= MAX_CODE_POINT; codePoint++) {
    if (!isSurrogate(codePoint) && pattern.test(String.fromCodePoint(codePoint))) member[codePoint] = 1;
  }
  return member;
}

/** Code points where an encoder built on `categories` disagrees with tiktoken. */
function probe(categories: CategoryClasses): Set<number> {
  const disagreeing = new Set<number>();
  for (const encoding of ENCODINGS) {
    const reference = get_encoding(encoding);
    const ours = new BytePairEncoder(encoding, categories);
    const same = (text: string): boolean => {
      const expected = reference.encode_ordinary(text);
      const actual = ours.encode(text);
      return expected.length === actual.length && actual.every((id, i) => id === expected[i]);
    };
    for (let base = 0; base <= MAX_CODE_POINT; base += 64) {
      const codePoints: number[] = [];
      for (let codePoint = base; codePoint < base + 64; codePoint++) {
        if (!isSurrogate(codePoint)) codePoints.push(codePoint);
      }
      if (same(codePoints.map((codePoint) => contexts(String.fromCodePoint(codePoint))).join("|"))) continue;
      for (const codePoint of codePoints) {
        if (!same(contexts(String.fromCodePoint(codePoint)))) disagreeing.add(codePoint);
      }
    }
    reference.free();
  }
  return disagreeing;
}

function ranges(member: Uint8Array): Array<[number, number]> {
  const result: Array<[number, number]> = [];
  for (let codePoint = 0; codePoint <= MAX_CODE_POINT; codePoint++) {
    if (!member[codePoint]) continue;
    const start = codePoint;
    while (codePoint + 1 <= MAX_CODE_POINT && member[codePoint + 1]) codePoint++;
    result.push([start, codePoint]);
  }
  return result;
}

/** Base-36 pairs: gap after the previous range's end + 1, then length - 1 (decoded in pretokenizer.ts). */
function encodeRanges(list: Array<[number, number]>): string {
  const numbers: string[] = [];
  let next = 0;
  for (const [start, end] of list) {
    numbers.push((start - next).toString(36), (end - start).toString(36));
    next = end + 1;
  }
  return numbers.join(" ");
}

function classBody(list: Array<[number, number]>): string {
  const toEscape = (codePoint: number): string => `\\u{${codePoint.toString(16)}}`;
  return list
    .map(([start, end]) => (start === end ? toEscape(start) : `${toEscape(start)}-${toEscape(end)}`))
    .join("");
}

const membership = new Map<Category, Uint8Array>();
for (const category of CATEGORIES) membership.set(category, runtimeMembership(category));

const unknownToTiktoken = probe(RUNTIME_CATEGORIES);
console.log(`code points the runtime knows but tiktoken does not: ${unknownToTiktoken.size}`);
for (const codePoint of unknownToTiktoken) for (const member of membership.values()) member[codePoint] = 0;

const pinnedRanges = new Map<Category, Array<[number, number]>>();
for (const category of CATEGORIES) pinnedRanges.set(category, ranges(membership.get(category)!));
const pinned = Object.fromEntries(
  CATEGORIES.map((category) => [category, classBody(pinnedRanges.get(category)!)]),
) as unknown as CategoryClasses;

const remaining = probe(pinned);
if (remaining.size > 0) {
  const sample = [...remaining].slice(0, 20).map((codePoint) => codePoint.toString(16));
  throw new Error(`pinned tables still disagree with tiktoken on ${remaining.size} code points: ${sample}`);
}

const lines = [
  "// Generated by test/tokens/support/generate-unicode-categories.ts; do not edit.",
  `// Runtime: Node ${process.versions.node}, ICU ${process.versions.icu}, Unicode ${process.versions.unicode},`,
  `// minus ${unknownToTiktoken.size} code points that tiktoken 1.0.22 (Unicode 16.0) treats as unassigned.`,
  "// Each value: base-36 pairs (gap after the previous range, length - 1); see pretokenizer.ts.",
  "export const CATEGORY_RANGES = {",
  ...CATEGORIES.map((category) => `  ${category}: "${encodeRanges(pinnedRanges.get(category)!)}",`),
  "} as const;",
  "",
];
const target = new URL("../../../src/tokens/unicode-categories.ts", import.meta.url);
writeFileSync(target, lines.join("\n"));
console.log(`wrote ${target.pathname}`);
