// biome-ignore-all lint/style/noNonNullAssertion: reads of typed arrays at indexes the loops keep in range; a check would cost in the tokenizer's hot loop

/**
 * The rank table of an encoding, in typed arrays over SharedArrayBuffers, so that every thread of
 * the process (the service's, the summarizer's) reads one copy.
 *
 * Why not a `Map<string, number>`: o200k_base's 200,000 entries held 12.5 MB of each thread's V8
 * heap as a Map of strings, and V8 grows a heap in proportion to what it holds, so two threads
 * paid that two or three times over. This table is 5.4 MB for o200k_base, once per process, and
 * a lookup costs what the Map's did (`npm run bench:tokens`: the figures are in this folder's
 * README, "Rank table").
 */
export interface RankTableBuffers {
  /** The tokens' bytes, one after the other. */
  readonly bytes: SharedArrayBuffer;
  /** Int32: entry i's bytes start at starts[i] and end at starts[i + 1]. */
  readonly starts: SharedArrayBuffer;
  /** Int32: entry i's rank (its token id). */
  readonly ranks: SharedArrayBuffer;
  /** Int32, a power of two long: open addressing by the key's hash, an entry's index or -1. */
  readonly slots: SharedArrayBuffer;
  /**
   * Int32, the entry of every key of one or two bytes (or -1), indexed by its bytes: most lookups
   * are of a pair of bytes, the first step of every merge, and this spares them the hash.
   */
  readonly short: SharedArrayBuffer;
}

const EMPTY = -1;
/** `short`'s index of a two-byte key: after the 256 one-byte keys. */
const PAIRS = 256;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** Token bytes (one char code 0x00-0xFF per byte, "latin1") to rank, the same answers as a Map. */
export class RankTable {
  readonly buffers: RankTableBuffers;
  readonly size: number;
  readonly #bytes: Uint8Array;
  readonly #starts: Int32Array;
  readonly #ranks: Int32Array;
  readonly #slots: Int32Array;
  readonly #short: Int32Array;
  readonly #mask: number;
  /** The longest token's bytes: a longer key is no token, found without hashing it. */
  readonly #longest: number;

  constructor(buffers: RankTableBuffers) {
    this.buffers = buffers;
    this.#bytes = new Uint8Array(buffers.bytes);
    this.#starts = new Int32Array(buffers.starts);
    this.#ranks = new Int32Array(buffers.ranks);
    this.#slots = new Int32Array(buffers.slots);
    this.#short = new Int32Array(buffers.short);
    this.#mask = this.#slots.length - 1;
    this.size = this.#ranks.length;
    let longest = 0;
    for (let entry = 0; entry < this.size; entry++)
      longest = Math.max(longest, this.#starts[entry + 1]! - this.#starts[entry]!);
    this.#longest = longest;
  }

  /**
   * Builds the table from `entries` tokens, whose bytes lie one after the other in `bytes` (entry
   * i from starts[i] to starts[i + 1]) with their ranks.
   */
  static build(bytes: Uint8Array, starts: Int32Array, ranks: Int32Array): RankTable {
    const entries = ranks.length;
    const shared = (length: number) => new SharedArrayBuffer(length);
    const buffers: RankTableBuffers = {
      bytes: shared(bytes.length),
      starts: shared(starts.length * 4),
      ranks: shared(entries * 4),
      // At most half full: a miss (most lookups of a pair are misses) ends within a probe or two.
      slots: shared(2 ** Math.ceil(Math.log2(entries * 2 + 1)) * 4),
      short: shared((PAIRS + 256 * 256) * 4),
    };
    new Uint8Array(buffers.bytes).set(bytes);
    new Int32Array(buffers.starts).set(starts);
    new Int32Array(buffers.ranks).set(ranks);
    const slots = new Int32Array(buffers.slots).fill(EMPTY);
    const mask = slots.length - 1;
    const short = new Int32Array(buffers.short).fill(EMPTY);
    for (let entry = 0; entry < entries; entry++) {
      const start = starts[entry]!;
      const length = starts[entry + 1]! - start;
      if (length === 1) short[bytes[start]!] = entry;
      else if (length === 2) short[PAIRS + ((bytes[start]! << 8) | bytes[start + 1]!)] = entry;
      let hash = FNV_OFFSET;
      for (let at = starts[entry]!; at < starts[entry + 1]!; at++)
        hash = Math.imul(hash ^ bytes[at]!, FNV_PRIME);
      let slot = hash & mask;
      while (slots[slot] !== EMPTY) slot = (slot + 1) & mask;
      slots[slot] = entry;
    }
    return new RankTable(buffers);
  }

  get(key: string): number | undefined {
    const entry = this.#find(key);
    return entry === EMPTY ? undefined : this.#ranks[entry];
  }

  has(key: string): boolean {
    return this.#find(key) !== EMPTY;
  }

  #findShort(key: string, length: number): number {
    const first = key.charCodeAt(0);
    if (length === 1) return first < 256 ? this.#short[first]! : EMPTY;
    const second = key.charCodeAt(1);
    // A key of 0 bytes is no token; a char over 0xFF is no byte.
    if (length === 0 || (first | second) > 0xff) return EMPTY;
    return this.#short[PAIRS + ((first << 8) | second)]!;
  }

  #find(key: string): number {
    const length = key.length;
    if (length <= 2) return this.#findShort(key, length);
    if (length > this.#longest) return EMPTY;
    let hash = FNV_OFFSET;
    for (let at = 0; at < length; at++) hash = Math.imul(hash ^ key.charCodeAt(at), FNV_PRIME);
    const slots = this.#slots;
    const starts = this.#starts;
    const bytes = this.#bytes;
    const mask = this.#mask;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = slots[slot]!;
      if (entry === EMPTY) return EMPTY;
      const start = starts[entry]!;
      if (starts[entry + 1]! - start !== length) continue;
      let at = 0;
      while (at < length && bytes[start + at] === key.charCodeAt(at)) at++;
      if (at === length) return entry;
    }
  }
}
