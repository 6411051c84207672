import { get_encoding } from "tiktoken";
import { afterAll, describe, expect, it } from "vitest";
import { getEncoder } from "../../src/tokens/index.js";
import {
  allCodePoints,
  type CategoryName,
  explicitCategory,
  RUNTIME_CATEGORIES,
  tiktokenCategories,
} from "../../src/tokens/pretokenizer.js";

/**
 * Counting uses tiktoken's Unicode tables (16.0), not the runtime's (`process.versions.unicode`).
 * The full per-code-point check against tiktoken is the generator
 * (test/tokens/support/generate-unicode-categories.ts, about two minutes); these tests check the
 * tables the counter builds, every code point where the runtime disagrees, and a sample of the rest.
 */

const CATEGORIES: readonly CategoryName[] = ["Lu", "Ll", "Lt", "Lm", "Lo", "M", "N"];
const everyCodePoint = allCodePoints();

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
  ].join("");
}

function codePointsMatching(classSource: string): number[] {
  return Array.from(everyCodePoint.matchAll(new RegExp(classSource, "gv")), ([char]) => char.codePointAt(0)!);
}

describe("Unicode categories", () => {
  it("builds classes that contain exactly the pinned code points", () => {
    const built = tiktokenCategories();
    for (const name of CATEGORIES) {
      const pinned = `[${explicitCategory(name)}]`;
      expect(codePointsMatching(`[${built[name]}--${pinned}]`), name).toEqual([]);
      expect(codePointsMatching(`[${pinned}--${built[name]}]`), name).toEqual([]);
    }
  });

  const differing = new Set<number>();
  for (const name of CATEGORIES) {
    const pinned = `[${explicitCategory(name)}]`;
    const runtime = RUNTIME_CATEGORIES[name];
    for (const codePoint of codePointsMatching(`[${runtime}--${pinned}]`)) differing.add(codePoint);
    for (const codePoint of codePointsMatching(`[${pinned}--${runtime}]`)) differing.add(codePoint);
  }

  for (const encoding of ["o200k_base", "cl100k_base"] as const) {
    describe(encoding, () => {
      const reference = get_encoding(encoding);
      const encoder = getEncoder(encoding);
      afterAll(() => reference.free());
      const agrees = (text: string): boolean => {
        const expected = reference.encode_ordinary(text);
        const actual = encoder.encode(text);
        return actual.length === expected.length && actual.every((id, i) => id === expected[i]);
      };

      it(`agrees with tiktoken on every code point whose category this runtime sees differently (${differing.size})`, () => {
        const disagreements = [...differing].filter(
          (codePoint) => !agrees(contexts(String.fromCodePoint(codePoint))),
        );
        expect(disagreements).toEqual([]);
      });

      it("agrees with tiktoken on a sample of all other code points", () => {
        const disagreements: number[] = [];
        // Every 13th code point, tested 64 at a time; a failing block is retested one by one.
        for (let start = 0; start <= 0x10ffff; start += 64 * 13) {
          const block: number[] = [];
          for (let codePoint = start; codePoint < start + 64 * 13 && codePoint <= 0x10ffff; codePoint += 13) {
            if (codePoint < 0xd800 || codePoint > 0xdfff) block.push(codePoint);
          }
          if (agrees(block.map((codePoint) => contexts(String.fromCodePoint(codePoint))).join("|"))) continue;
          for (const codePoint of block) {
            if (!agrees(contexts(String.fromCodePoint(codePoint)))) disagreements.push(codePoint);
          }
        }
        expect(disagreements).toEqual([]);
      });
    });
  }
});
