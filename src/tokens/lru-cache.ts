/**
 * Least-recently-used map with a fixed number of entries. A JavaScript Map iterates in insertion
 * order, so re-inserting on every hit keeps the least recently used entry first, where eviction
 * takes it from.
 */
export class LruCache<K, V> {
  /** Maximum number of entries; 0 stores nothing. */
  readonly capacity: number;
  readonly #entries = new Map<K, V>();

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: K): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    if (this.capacity === 0) return;
    if (this.#entries.has(key)) {
      this.#entries.delete(key);
    } else if (this.#entries.size >= this.capacity) {
      const leastRecent = this.#entries.keys().next();
      if (!leastRecent.done) this.#entries.delete(leastRecent.value);
    }
    this.#entries.set(key, value);
  }

  clear(): void {
    this.#entries.clear();
  }
}
