import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { RankTable } from "../../src/tokens/rank-table.js";
import { type EncodingName, loadVocabulary, shareVocabulary } from "../../src/tokens/vocabulary.js";

/** The rank file read the plain way (Buffer's base64, a Map): what the table must answer. */
function plainRanks(encoding: EncodingName): Map<string, number> {
  const file = createRequire(import.meta.url).resolve(`gpt-tokenizer/data/${encoding}.tiktoken`);
  const ranks = new Map<string, number>();
  for (const line of readFileSync(file, "latin1").split("\n")) {
    if (line === "") continue;
    const [token, rank] = line.split(" ");
    ranks.set(Buffer.from(token!, "base64").toString("latin1"), Number(rank));
  }
  return ranks;
}

/** Byte strings (latin1) of 1 to 24 bytes from a seeded generator, most of them no token. */
function randomKeys(count: number): string[] {
  let state = 12345;
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state >>> 8;
  };
  return Array.from({ length: count }, () =>
    String.fromCharCode(...Array.from({ length: 1 + (next() % 24) }, () => next() % 256)),
  );
}

describe.each(["o200k_base", "cl100k_base"] as const)("the rank table of %s", (encoding) => {
  const table = loadVocabulary(encoding).ranks;
  const plain = plainRanks(encoding);

  it("finds every token of the rank file with its rank, and holds nothing else", () => {
    expect(table.size).toBe(plain.size);
    const wrong = [...plain].filter(([token, rank]) => table.get(token) !== rank || !table.has(token));
    expect(wrong).toEqual([]);
  });

  it("answers as the plain map for keys that are not tokens, however long or odd", () => {
    const longest = [...plain.keys()].reduce((most, token) => Math.max(most, token.length), 0);
    const keys = [
      ...randomKeys(20_000),
      "",
      "\u0100",
      "a\u0100",
      "\u0100a",
      "ab\u0100",
      " ".repeat(longest + 1),
      "x".repeat(100_000),
    ];
    const wrong = keys.filter(
      (key) => table.get(key) !== plain.get(key) || table.has(key) !== plain.has(key),
    );
    expect(wrong).toEqual([]);
    expect(keys.filter((key) => plain.has(key)).length).toBeGreaterThan(100); // some hits among them
  });

  it("answers the same when read from its shared buffers, as a worker thread reads it", () => {
    const adopted = new RankTable(shareVocabulary(encoding).buffers);
    const sample = randomKeys(2_000).concat([...plain.keys()].slice(0, 2_000));
    expect(sample.map((key) => adopted.get(key))).toEqual(sample.map((key) => plain.get(key)));
  });
});
