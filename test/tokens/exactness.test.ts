import { encode as gptTokenizerCl100k } from "gpt-tokenizer/encoding/cl100k_base";
import { encode as gptTokenizerO200k } from "gpt-tokenizer/encoding/o200k_base";
import { get_encoding } from "tiktoken";
import { afterAll, describe, expect, it } from "vitest";
import { type EncodingName, getEncoder } from "../../src/tokens/index.js";
import { generateCorpus } from "./support/corpus.js";

/**
 * Exactness against OpenAI's tokenizer: the `tiktoken` npm package (the Rust core compiled to WASM),
 * `encode_ordinary` (special-token strings are plain text), on a generated corpus.
 */

const CORPUS_SIZE = 2500;
const SEEDS: Readonly<Record<EncodingName, number>> = { o200k_base: 0x5eed_0200, cl100k_base: 0x5eed_0100 };
const RAW_GPT_TOKENIZER: Readonly<Record<EncodingName, (text: string) => number[]>> = {
  o200k_base: (text) => gptTokenizerO200k(text, { disallowedSpecial: new Set() }),
  cl100k_base: (text) => gptTokenizerCl100k(text, { disallowedSpecial: new Set() }),
};

for (const encoding of ["o200k_base", "cl100k_base"] as const) {
  describe(`${encoding}: identical to tiktoken`, () => {
    const reference = get_encoding(encoding);
    const encoder = getEncoder(encoding);
    const corpus = generateCorpus(SEEDS[encoding], CORPUS_SIZE);
    const expected = corpus.map((text) => Array.from(reference.encode_ordinary(text)));
    afterAll(() => reference.free());

    it("uses a corpus that covers the hard cases", () => {
      expect(corpus.length).toBeGreaterThanOrEqual(2000);
      const containing = (pattern: RegExp): number => corpus.filter((text) => pattern.test(text)).length;
      expect(containing(/\ufeff/)).toBeGreaterThan(100);
      expect(containing(/\u0085/)).toBeGreaterThan(20);
      expect(containing(/\u00a0/)).toBeGreaterThan(20);
      expect(containing(/<\|endoftext\|>|<\|im_start\|>/)).toBeGreaterThan(20);
      expect(containing(/\u200d/)).toBeGreaterThan(20);
      expect(containing(/[\u{20000}-\u{2a6df}]/u)).toBeGreaterThan(20);
      expect(containing(/[\t ]{2,}\n|\n[\t ]{2,}/)).toBeGreaterThan(20);
      expect(
        containing(/(?:[^\ud800-\udbff]|^)[\udc00-\udfff]|[\ud800-\udbff](?![\udc00-\udfff])/),
      ).toBeGreaterThan(50);
      for (const language of [
        /Grüße|Straße|größer/,
        /élève|cœur/,
        /Привет|память/,
        /مرحبا|الذاكرة/,
        /नमस्ते/,
      ]) {
        expect(containing(language)).toBeGreaterThan(5);
      }
      expect(containing(/こんにちは|ありがとう/)).toBeGreaterThan(5);
      expect(containing(/你好|记忆/)).toBeGreaterThan(5);
      expect(containing(/안녕하세요|메모리/)).toBeGreaterThan(5);
      expect(corpus.filter((text) => new TextEncoder().encode(text).length > 2000).length).toBeGreaterThan(
        20,
      );
    });

    it("encodes every corpus string to tiktoken's exact token ids", () => {
      const mismatches: Array<{ index: number; text: string }> = [];
      corpus.forEach((text, index) => {
        const ids = encoder.encode(text);
        const want = expected[index]!;
        if (ids.length !== want.length || ids.some((id, i) => id !== want[i]))
          mismatches.push({ index, text });
      });
      expect(mismatches).toEqual([]);
    });

    it("counts every corpus string exactly", () => {
      const counts = corpus.map((text) => encoder.count(text));
      expect(counts).toEqual(expected.map((ids) => ids.length));
    });

    it("splits text into pieces that concatenate back to it", () => {
      for (const text of corpus.slice(0, 500)) expect(encoder.split(text).join("")).toBe(text);
    });

    it("is exact on U+FEFF text where raw gpt-tokenizer is not", () => {
      // gpt-tokenizer runs tiktoken's pattern through a JavaScript RegExp, where `\s` matches U+FEFF;
      // the Rust regex crate's `\s` (Unicode White_Space) does not.
      const withBom = corpus
        .map((text, index) => ({ text, index }))
        .filter(({ text }) => text.includes("\ufeff"));
      const rawDiffers = withBom.filter(
        ({ text, index }) => RAW_GPT_TOKENIZER[encoding](text).length !== expected[index]!.length,
      );
      expect(rawDiffers.length).toBeGreaterThan(0);
      for (const { text, index } of rawDiffers) expect(encoder.count(text)).toBe(expected[index]!.length);
    });

    it("treats U+0085 as whitespace, as tiktoken does and raw gpt-tokenizer does not", () => {
      const text = "x \u0085y";
      const want = Array.from(reference.encode_ordinary(text));
      expect(encoder.encode(text)).toEqual(want);
      expect(RAW_GPT_TOKENIZER[encoding](text).length).not.toBe(want.length);
      const withNextLine = corpus
        .map((text, index) => ({ text, index }))
        .filter(({ text }) => text.includes("\u0085"));
      const rawDiffers = withNextLine.filter(
        ({ text, index }) => RAW_GPT_TOKENIZER[encoding](text).length !== expected[index]!.length,
      );
      expect(rawDiffers.length).toBeGreaterThan(0);
      for (const { text, index } of rawDiffers) expect(encoder.count(text)).toBe(expected[index]!.length);
    });

    it("folds U+017F (long s) into the 's contraction, as Rust's case-insensitive match does", () => {
      // In o200k_base " I'ſa" splits as " I'ſ" + "a" (3 tokens, " I'" among them) only with the fold.
      for (const text of [" I'ſa", " I'ſt", "it'ſ here", "x'ſa", "DON'ſ"]) {
        expect(encoder.encode(text)).toEqual(Array.from(reference.encode_ordinary(text)));
      }
    });

    it("encodes lone surrogates as U+FFFD, as the tiktoken binding does", () => {
      for (const text of ["a\ud800b", "\udc00", "x\udbff", "\ud83d", "🙂\ude42🙂"]) {
        const replaced = text.replace(
          /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
          "\ufffd",
        );
        expect(encoder.encode(text)).toEqual(Array.from(reference.encode_ordinary(text)));
        expect(encoder.count(text)).toBe(encoder.count(replaced));
      }
    });

    it("treats Unicode 17 letters (CJK Extension J) as tiktoken's Unicode 16 does: unassigned", () => {
      const text = "a\u{323b0}b \u{323b1}\u{323b2}'s \u{16ea0}x 1\u{11de0}2";
      expect(encoder.encode(text)).toEqual(Array.from(reference.encode_ordinary(text)));
    });
  });
}
