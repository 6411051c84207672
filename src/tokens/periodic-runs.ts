// biome-ignore-all lint/style/noNonNullAssertion: reads of typed arrays and strings at indexes the loop bounds keep in range; a check would cost in the tokenizer's hot loop
import { mergeLargePiece } from "./merge.js";
import { utf8ByteString } from "./utf8.js";
import type { RankMap } from "./vocabulary.js";

/**
 * Counting for very long pieces that repeat a short unit ("xxxx...", 256 KiB of spaces, "🙂🙂🙂...",
 * "<><>..."). Even O(n log n) merging is too slow for those at hundreds of KiB, and tiktoken itself
 * is quadratic there. Far from both ends, BPE turns such a run into one block of tokens that repeats
 * with some period of P units; the ends look the same whatever the length. So the count for K
 * repetitions is the exact count for a shorter K' = K - s*P plus s times the tokens of one block.
 *
 * That rests on an observation, not a theorem, so each use is checked: the exact tokenizations of
 * K' and K' + P units must be identical left of the middle and identical, shifted by one period,
 * right of it, with exactly the block's tokens in between. If any check fails, `count` returns
 * undefined and the caller merges the whole piece exactly. Tests compare the result with tiktoken
 * on 16 KiB runs and with the exact merge on 256 KiB runs.
 */

/** Longest repeating unit looked for, in UTF-16 code units. */
const MAX_UNIT_LENGTH = 16;
/** Characters allowed before the repetition starts (for example the space in " xxxx"). */
const MAX_HEAD_LENGTH = 4;
/** The exact base runs are at least this long, so their two ends never interact. */
const BASE_BYTES = 2048;
/** Longest token block looked for; real runs repeat far sooner (the longest token is 128 bytes). */
const MAX_PERIOD_BYTES = 1024;
/** Bound on remembered (head, unit) shapes per encoding; the table is simply dropped when full. */
const MAX_MODELS = 512;

export interface Run {
  /** Up to MAX_HEAD_LENGTH chars before the repetition. */
  head: string;
  unit: string;
  repetitions: number;
  /** A proper prefix of `unit` after the last whole repetition. */
  tail: string;
}

interface RunModel {
  headBytes: number;
  unitBytes: number;
  /** Repetitions of the exact base run; counts for K are reduced into [baseUnits, baseUnits + period). */
  baseUnits: number;
  /** Repetitions per token block. */
  period: number;
  tokensPerPeriod: number;
  /** Verified exact count of head + unit^K' + tail, keyed by `${tail.length}:${K'}`. */
  verified: Map<string, number>;
}

const isLowSurrogate = (code: number): boolean => code >= 0xdc00 && code <= 0xdfff;

/**
 * Splits `piece` into head + unit^repetitions + tail with the shortest unit, or returns undefined.
 * Linear: for each candidate unit length the scan from the end stops at the first mismatch.
 * A unit never starts with a low surrogate, so no surrogate pair straddles two repetitions and the
 * UTF-8 length of the run is the sum of its parts' lengths.
 */
export function findRun(piece: string): Run | undefined {
  const length = piece.length;
  for (let unitLength = 1; unitLength <= MAX_UNIT_LENGTH; unitLength++) {
    if (length < MAX_HEAD_LENGTH + 2 * unitLength) break;
    let index = length - 1 - unitLength;
    while (index >= 0 && piece.charCodeAt(index) === piece.charCodeAt(index + unitLength)) index--;
    let start = index + 1;
    if (start < length && isLowSurrogate(piece.charCodeAt(start))) start++;
    if (start > MAX_HEAD_LENGTH) continue;
    const unit = piece.slice(start, start + unitLength);
    const repetitions = Math.floor((length - start) / unitLength);
    const tail = piece.slice(start + repetitions * unitLength);
    return { head: piece.slice(0, start), unit, repetitions, tail };
  }
  return undefined;
}

export class PeriodicRunCounter {
  readonly #ranks: RankMap;
  /** null marks a shape for which no stable block was found, so it is not probed again. */
  readonly #models = new Map<string, RunModel | null>();

  constructor(ranks: RankMap) {
    this.#ranks = ranks;
  }

  /** The exact token count of `run`, or undefined when this shortcut does not apply. */
  count(run: Run): number | undefined {
    const model = this.#model(run.head, run.unit);
    if (!model) return undefined;
    const { baseUnits, period, tokensPerPeriod } = model;
    if (run.repetitions < baseUnits + period) return undefined;
    const reduced = baseUnits + ((run.repetitions - baseUnits) % period);
    const blocks = (run.repetitions - reduced) / period;
    const key = `${run.tail.length}:${reduced}`;
    let base = model.verified.get(key);
    if (base === undefined) {
      base = this.#verify(run, model, reduced);
      if (base === undefined) {
        this.#models.set(modelKey(run.head, run.unit), null);
        return undefined;
      }
      model.verified.set(key, base);
    }
    return base + blocks * tokensPerPeriod;
  }

  #model(head: string, unit: string): RunModel | null {
    const key = modelKey(head, unit);
    const known = this.#models.get(key);
    if (known !== undefined) return known;
    if (this.#models.size >= MAX_MODELS) this.#models.clear();
    const model = this.#buildModel(head, unit);
    this.#models.set(key, model);
    return model;
  }

  /** Finds the token block from the middle third of one exact run of 3 * baseUnits repetitions. */
  #buildModel(head: string, unit: string): RunModel | null {
    const headBytes = utf8ByteString(head).length;
    const unitBytes = utf8ByteString(unit).length;
    const baseUnits = Math.ceil(BASE_BYTES / unitBytes);
    const probe = utf8ByteString(head + unit.repeat(3 * baseUnits));
    const starts: number[] = [];
    mergeLargePiece(probe, this.#ranks, starts);
    const isStart = new Uint8Array(probe.length + 1);
    for (const start of starts) isStart[start] = 1;

    const windowStart = headBytes + baseUnits * unitBytes;
    const windowEnd = headBytes + 2 * baseUnits * unitBytes;
    const maxPeriod = Math.min(Math.floor(MAX_PERIOD_BYTES / unitBytes), baseUnits >> 1);
    for (let period = 1; period <= maxPeriod; period++) {
      const shift = period * unitBytes;
      let repeats = true;
      for (let offset = windowStart; offset + shift < windowEnd; offset++) {
        if (isStart[offset] !== isStart[offset + shift]) {
          repeats = false;
          break;
        }
      }
      if (!repeats) continue;
      let tokensPerPeriod = 0;
      for (let offset = windowStart; offset < windowStart + shift; offset++)
        tokensPerPeriod += isStart[offset]!;
      if (tokensPerPeriod === 0) return null;
      return { headBytes, unitBytes, baseUnits, period, tokensPerPeriod, verified: new Map() };
    }
    return null;
  }

  /**
   * Exact count for `reduced` repetitions, provided that one more period inserts exactly one token
   * block in the middle and changes nothing else; undefined otherwise.
   */
  #verify(run: Run, model: RunModel, reduced: number): number | undefined {
    const { headBytes, unitBytes, period, tokensPerPeriod } = model;
    const shorter: number[] = [];
    const longer: number[] = [];
    const count = mergeLargePiece(
      utf8ByteString(run.head + run.unit.repeat(reduced) + run.tail),
      this.#ranks,
      shorter,
    );
    const longerCount = mergeLargePiece(
      utf8ByteString(run.head + run.unit.repeat(reduced + period) + run.tail),
      this.#ranks,
      longer,
    );
    if (longerCount !== count + tokensPerPeriod) return undefined;
    const middle = headBytes + Math.floor(reduced / 2) * unitBytes;
    const shift = period * unitBytes;
    let left = 0;
    while (left < shorter.length && shorter[left]! < middle) {
      if (longer[left] !== shorter[left]) return undefined;
      left++;
    }
    for (let i = 0; i < tokensPerPeriod; i++) {
      const start = longer[left + i];
      if (start === undefined || start < middle || start >= middle + shift) return undefined;
    }
    for (let i = left; i < shorter.length; i++) {
      if (longer[i + tokensPerPeriod] !== shorter[i]! + shift) return undefined;
    }
    return count;
  }
}

function modelKey(head: string, unit: string): string {
  return `${head.length}:${head}${unit}`;
}
