// biome-ignore-all lint/style/noNonNullAssertion: reads of typed arrays and strings at indexes the loop bounds keep in range; a check would cost in the tokenizer's hot loop
import type { RankMap } from "./vocabulary.js";

/**
 * Byte-pair merging of one pre-tokenized piece, with tiktoken's merge order: repeatedly join the
 * adjacent pair whose concatenated bytes have the lowest rank, the leftmost such pair on a tie,
 * until no adjacent pair is a token. Every part is a token at every step (all 256 single bytes
 * are), so the result is a list of tokens.
 *
 * A piece is a "byte string": one char per byte (see RankMap). Both functions return the number of
 * tokens and, when `starts` is given, append each token's start offset to it.
 */

const NO_RANK = 0x7fffffff;

/** Pieces up to this many bytes use the quadratic scan, which is faster than a heap when short. */
export const SMALL_PIECE_BYTES = 96;

const smallStarts = new Int32Array(SMALL_PIECE_BYTES + 1);
const smallPairRanks = new Int32Array(SMALL_PIECE_BYTES);

/** Quadratic merge for pieces of at most SMALL_PIECE_BYTES bytes (reuses module scratch arrays). */
export function mergeSmallPiece(bytes: string, ranks: RankMap, starts?: number[]): number {
  const length = bytes.length;
  if (length > SMALL_PIECE_BYTES) throw new RangeError(`piece of ${length} bytes is not small`);
  const partStarts = smallStarts;
  const pairRanks = smallPairRanks;
  for (let i = 0; i <= length; i++) partStarts[i] = i;
  for (let i = 0; i + 1 < length; i++) pairRanks[i] = ranks.get(bytes.slice(i, i + 2)) ?? NO_RANK;
  let parts = length;
  while (parts > 1) {
    let lowest = NO_RANK;
    let at = -1;
    for (let i = 0; i < parts - 1; i++) {
      const rank = pairRanks[i]!;
      if (rank < lowest) {
        lowest = rank;
        at = i;
      }
    }
    if (at < 0) break;
    // Part `at` absorbs part `at + 1`: drop that part's start and the pair that began there.
    partStarts.copyWithin(at + 1, at + 2, parts + 1);
    pairRanks.copyWithin(at + 1, at + 2, parts - 1);
    parts--;
    pairRanks[at] =
      at + 1 < parts ? (ranks.get(bytes.slice(partStarts[at]!, partStarts[at + 2]!)) ?? NO_RANK) : NO_RANK;
    if (at > 0) {
      pairRanks[at - 1] = ranks.get(bytes.slice(partStarts[at - 1]!, partStarts[at + 1]!)) ?? NO_RANK;
    }
  }
  if (starts) for (let i = 0; i < parts; i++) starts.push(partStarts[i]!);
  return parts;
}

/** Keys pack (rank, position) into one float: rank in the high bits, so ties go to the lower position. */
const POSITION_SPAN = 2 ** 32;

/**
 * O(n log n) merge for pieces of any length: parts form a linked list over byte offsets, candidate
 * pairs sit in a binary min-heap keyed by (rank, start offset). Entries go stale when a part is
 * absorbed or its right neighbour grows; a popped entry is used only if its part is alive and its
 * recorded pair rank is unchanged. That check is exact because a pair's bytes only ever grow, so the
 * rank stored for a start offset never returns to an earlier value (distinct tokens have distinct
 * ranks). The popped entry is therefore always the leftmost lowest-ranked current pair, which is
 * the pair tiktoken's linear scan would pick.
 */
export function mergeLargePiece(bytes: string, ranks: RankMap, starts?: number[]): number {
  const length = bytes.length;
  if (length === 0) return 0;
  const nextStart = new Int32Array(length);
  const previousStart = new Int32Array(length);
  const pairRank = new Int32Array(length);
  const absorbed = new Uint8Array(length);
  // Up to 3n entries can be pushed over the run, but pops keep the live size near n; grow on demand.
  let heap = new Float64Array(length + 16);
  let heapSize = 0;

  const push = (key: number): void => {
    if (heapSize === heap.length) {
      const grown = new Float64Array(heap.length * 2);
      grown.set(heap);
      heap = grown;
    }
    let index = heapSize++;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      const parentKey = heap[parent]!;
      if (parentKey <= key) break;
      heap[index] = parentKey;
      index = parent;
    }
    heap[index] = key;
  };
  const pop = (): number => {
    const top = heap[0]!;
    const last = heap[--heapSize]!;
    let index = 0;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= heapSize) break;
      if (child + 1 < heapSize && heap[child + 1]! < heap[child]!) child++;
      if (heap[child]! >= last) break;
      heap[index] = heap[child]!;
      index = child;
    }
    heap[index] = last;
    return top;
  };

  for (let i = 0; i < length; i++) {
    nextStart[i] = i + 1;
    previousStart[i] = i - 1;
    const rank = i + 1 < length ? (ranks.get(bytes.slice(i, i + 2)) ?? NO_RANK) : NO_RANK;
    pairRank[i] = rank;
    if (rank !== NO_RANK) push(rank * POSITION_SPAN + i);
  }

  let parts = length;
  while (heapSize > 0) {
    const key = pop();
    const rank = Math.floor(key / POSITION_SPAN);
    const left = key - rank * POSITION_SPAN;
    if (absorbed[left] === 1 || pairRank[left] !== rank) continue;
    const right = nextStart[left]!;
    const after = nextStart[right]!; // start of the part after the merged one, or `length`
    absorbed[right] = 1;
    nextStart[left] = after;
    if (after < length) previousStart[after] = left;
    parts--;

    const mergedRank =
      after < length ? (ranks.get(bytes.slice(left, nextStart[after]!)) ?? NO_RANK) : NO_RANK;
    pairRank[left] = mergedRank;
    if (mergedRank !== NO_RANK) push(mergedRank * POSITION_SPAN + left);

    const before = previousStart[left]!;
    if (before >= 0) {
      const beforeRank = ranks.get(bytes.slice(before, after)) ?? NO_RANK;
      pairRank[before] = beforeRank;
      if (beforeRank !== NO_RANK) push(beforeRank * POSITION_SPAN + before);
    }
  }

  if (starts) for (let start = 0; start < length; start = nextStart[start]!) starts.push(start);
  return parts;
}
