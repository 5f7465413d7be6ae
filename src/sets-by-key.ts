/**
 * Sets of values filed by key, where a key exists while its set is not empty:
 * room -> members, user -> connections, room -> nodes. Adding and deleting say
 * when a key appears or disappears, which is when the owner tells someone else.
 */
export class SetsByKey<V> {
  private readonly map = new Map<string, Set<V>>();

  get size(): number {
    return this.map.size;
  }

  get(key: string): ReadonlySet<V> | undefined {
    return this.map.get(key);
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  keys(): IterableIterator<string> {
    return this.map.keys();
  }

  [Symbol.iterator](): IterableIterator<[string, ReadonlySet<V>]> {
    return this.map.entries();
  }

  /** Files `value` under `key`; true when the key had nothing before. */
  add(key: string, value: V): boolean {
    const values = this.map.get(key);
    if (values !== undefined) {
      values.add(value);
      return false;
    }
    this.map.set(key, new Set([value]));
    return true;
  }

  /** Takes `value` from under `key`; true when it was there and the key has nothing left. */
  delete(key: string, value: V): boolean {
    const values = this.map.get(key);
    if (values === undefined || !values.delete(value) || values.size > 0) return false;
    this.map.delete(key);
    return true;
  }

  /** Takes `value` from under every key (a Map may lose entries while it is iterated). */
  deleteEverywhere(value: V): void {
    for (const key of this.map.keys()) this.delete(key, value);
  }

  clear(): void {
    this.map.clear();
  }
}
