import { get_encoding } from "tiktoken";
import { afterAll, describe, expect, it } from "vitest";
import { getEncoder } from "../../src/tokens/index.js";
import { mergeLargePiece, mergeSmallPiece, SMALL_PIECE_BYTES } from "../../src/tokens/merge.js";
import { findRun, PeriodicRunCounter } from "../../src/tokens/periodic-runs.js";
import { utf8ByteString } from "../../src/tokens/utf8.js";
import { loadVocabulary } from "../../src/tokens/vocabulary.js";
import { Random } from "./support/corpus.js";

/**
 * Long single pieces. Timing is measured in bench/tokens.bench.ts; these tests prove the fast paths
 * return tiktoken's counts: the periodic shortcut against tiktoken itself on ~16 KiB runs (tiktoken
 * is quadratic, so it still finishes there), and against our exact O(n log n) merge on 256 KiB runs.
 */

interface RunCase {
  head: string;
  unit: string;
  /** Extra chars after the last whole unit (a proper prefix of the unit). */
  tail: string;
}

const RUNS_16K: readonly RunCase[] = [
  { head: "", unit: " ", tail: "" },
  { head: " ", unit: "x", tail: "" },
  { head: "", unit: "中", tail: "" },
  { head: "", unit: "ab", tail: "a" },
  { head: "", unit: "<>", tail: "<" },
  { head: "", unit: "🙂", tail: "" },
  { head: "", unit: "\t", tail: "" },
  { head: "", unit: "Ж", tail: "" },
  { head: " ", unit: "-=", tail: "-" },
  { head: "", unit: "\ufeff", tail: "" },
];

const KIB = 1024;

/** head + unit^k + tail with k chosen so that the text has about `bytes` UTF-8 bytes. */
function runText({ head, unit, tail }: RunCase, bytes: number, extraUnits = 0): string {
  const units = Math.floor(bytes / Buffer.byteLength(unit)) + extraUnits;
  return head + unit.repeat(units) + tail;
}

for (const encoding of ["o200k_base", "cl100k_base"] as const) {
  describe(`${encoding}: long runs`, () => {
    const reference = get_encoding(encoding);
    const encoder = getEncoder(encoding);
    const { ranks } = loadVocabulary(encoding);
    afterAll(() => reference.free());

    it.each(RUNS_16K)(
      "periodic shortcut equals tiktoken on ~16 KiB of unit $unit (head $head, tail $tail)",
      (run) => {
        // Two lengths that differ by a unit count that is not a multiple of any block period seen.
        for (const extraUnits of [0, 7]) {
          const text = runText(run, 16 * KIB, extraUnits);
          const pieces = encoder.split(text);
          expect(pieces).toHaveLength(1);
          const shape = findRun(pieces[0]!);
          expect(shape).toMatchObject({ head: run.head, unit: run.unit, tail: run.tail });
          const shortcut = new PeriodicRunCounter(ranks).count(shape!);
          const expected = reference.encode_ordinary(text).length;
          expect(shortcut).toBe(expected);
          expect(encoder.count(text)).toBe(expected);
        }
      },
    );

    it.each([" ", "x", "中", "ab", "🙂", "<>"])(
      "256 KiB of %j: shortcut equals the exact O(n log n) merge",
      (unit) => {
        const text = unit.repeat((256 * KIB) / unit.length);
        const shape = findRun(text);
        expect(shape).toBeDefined();
        const shortcut = new PeriodicRunCounter(ranks).count(shape!);
        expect(shortcut).toBeDefined();
        expect(shortcut).toBe(mergeLargePiece(utf8ByteString(text), ranks));
        expect(encoder.count(text)).toBe(encoder.encode(text).length);
      },
    );

    it("counts a long piece that does not repeat (exact merge) like tiktoken", () => {
      const random = new Random(7);
      let letters = " ";
      for (let i = 0; i < 6000; i++) letters += String.fromCharCode(random.int(0x61, 0x7a));
      let cjk = "";
      for (let i = 0; i < 2000; i++) cjk += String.fromCodePoint(random.int(0x4e00, 0x9fff));
      for (const text of [letters, cjk]) {
        expect(encoder.split(text)).toHaveLength(1);
        expect(encoder.encode(text)).toEqual(Array.from(reference.encode_ordinary(text)));
        expect(encoder.count(text)).toBe(reference.encode_ordinary(text).length);
      }
    });

    it("merges small pieces with the scan and the heap identically", () => {
      const random = new Random(11);
      const alphabets = ["abcdefghij", "aaab", " \t\n", "中文字", "ab🙂", "xyz'sre"];
      for (let i = 0; i < 2000; i++) {
        const alphabet = [...random.pick(alphabets)];
        let piece = "";
        while (Buffer.byteLength(piece) < random.int(1, SMALL_PIECE_BYTES - 4))
          piece += random.pick(alphabet);
        const bytes = utf8ByteString(piece);
        const scanStarts: number[] = [];
        const heapStarts: number[] = [];
        mergeSmallPiece(bytes, ranks, scanStarts);
        mergeLargePiece(bytes, ranks, heapStarts);
        expect(heapStarts).toEqual(scanStarts);
      }
    });
  });
}

describe("findRun", () => {
  it("finds the shortest unit, a short head and a partial tail", () => {
    expect(findRun(` ${"x".repeat(50)}`)).toEqual({ head: " ", unit: "x", repetitions: 50, tail: "" });
    expect(findRun(`${"abc".repeat(20)}ab`)).toEqual({ head: "", unit: "abc", repetitions: 20, tail: "ab" });
    expect(findRun("🙂".repeat(30))).toEqual({ head: "", unit: "🙂", repetitions: 30, tail: "" });
  });

  it("never starts a unit inside a surrogate pair", () => {
    const shape = findRun(`\ude42${"🙂".repeat(30)}`);
    expect(shape?.head).toBe("\ude42");
    expect(shape?.unit).toBe("🙂");
  });

  it("rejects text without a short repeating unit", () => {
    expect(findRun("the quick brown fox jumps over the lazy dog, again and again")).toBeUndefined();
    expect(findRun(`abcdefgh${"x".repeat(40)}`)).toBeUndefined();
  });
});
