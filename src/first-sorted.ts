/**
 * The first `count` items in the order of their string keys, without sorting
 * them all: a listing page of 100 out of 100,000 rooms costs one pass over a
 * heap of 100 rather than a sort that holds the event loop for tens of ms.
 * The heap bounds the cost whatever the items' order (n log count): rooms
 * that arrive in descending order cost no more than any others. Among equal
 * keys the order is unspecified.
 */
export function firstSorted<T>(items: Iterable<T>, count: number, keyOf: (item: T) => string): T[] {
  const selection = new FirstSorted<T>(count);
  for (const item of items) selection.offer(keyOf(item), item);
  return selection.take();
}

/** The page `offset`, `limit` of `items` in the order of their keys: the first `offset + limit`, less the first `offset`. */
export function sortedPage<T>(items: Iterable<T>, { offset, limit }: { offset: number; limit: number }, keyOf: (item: T) => string): T[] {
  return firstSorted(items, offset + limit, keyOf).slice(offset);
}

/**
 * The same selection fed one item at a time, so a caller can offer the keys of
 * an index it walks (filtering as it goes) without building a list of them.
 * It holds at most `count` items, in two arrays: nothing is allocated per item offered.
 */
export class FirstSorted<T> {
  // a max-heap of the `count` smallest keys seen so far: its root is the one a smaller key replaces
  private readonly keys: string[] = [];
  private readonly items: T[] = [];

  constructor(private readonly count: number) {}

  offer(key: string, item: T): void {
    const { keys, items } = this;
    if (keys.length < this.count) {
      keys.push(key);
      items.push(item);
      this.siftUp(keys.length - 1);
    } else if (keys.length > 0 && key < keys[0]) {
      keys[0] = key;
      items[0] = item;
      this.siftDown(0);
    }
  }

  /** The kept items in key order; the selection is empty afterwards. */
  take(): T[] {
    const { keys, items } = this;
    const sorted = new Array<T>(keys.length);
    // heapsort: the root is the largest key left, so it goes last
    for (let end = keys.length - 1; end >= 0; end--) {
      sorted[end] = items[0];
      keys[0] = keys[end];
      items[0] = items[end];
      keys.length = end;
      items.length = end;
      this.siftDown(0);
    }
    return sorted;
  }

  private siftUp(at: number): void {
    const keys = this.keys;
    while (at > 0) {
      const parent = (at - 1) >>> 1;
      if (keys[parent] >= keys[at]) return;
      this.swap(parent, at);
      at = parent;
    }
  }

  private siftDown(at: number): void {
    const keys = this.keys;
    for (;;) {
      const left = 2 * at + 1;
      const right = left + 1;
      let largest = at;
      if (left < keys.length && keys[left] > keys[largest]) largest = left;
      if (right < keys.length && keys[right] > keys[largest]) largest = right;
      if (largest === at) return;
      this.swap(largest, at);
      at = largest;
    }
  }

  private swap(a: number, b: number): void {
    const { keys, items } = this;
    const key = keys[a];
    keys[a] = keys[b];
    keys[b] = key;
    const item = items[a];
    items[a] = items[b];
    items[b] = item;
  }
}
