/**
 * The first `count` items in the order of their string keys, without sorting
 * them all: a listing page of 100 out of 100,000 rooms costs one pass over a
 * heap of 100 rather than a sort that holds the event loop for tens of ms.
 * The heap bounds the cost whatever the items' order (n log count): rooms
 * that arrive in descending order cost no more than any others. Among equal
 * keys the order is unspecified.
 */
export function firstSorted<T>(items: readonly T[], count: number, keyOf: (item: T) => string): T[] {
  if (count <= 0) return [];
  // for a page near the end, a whole sort is as cheap
  if (count * 4 >= items.length) return [...items].sort((a, b) => compare(keyOf(a), keyOf(b))).slice(0, count);
  // a max-heap of the `count` smallest keys seen so far: its root is the one a smaller key replaces
  const heap: { key: string; item: T }[] = [];
  for (const item of items) {
    const key = keyOf(item);
    if (heap.length < count) {
      heap.push({ key, item });
      siftUp(heap, heap.length - 1);
    } else if (key < heap[0].key) {
      heap[0] = { key, item };
      siftDown(heap, 0);
    }
  }
  return heap.sort((a, b) => compare(a.key, b.key)).map((entry) => entry.item);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function siftUp(heap: { key: string }[], at: number): void {
  while (at > 0) {
    const parent = (at - 1) >>> 1;
    if (heap[parent].key >= heap[at].key) return;
    [heap[parent], heap[at]] = [heap[at], heap[parent]];
    at = parent;
  }
}

function siftDown(heap: { key: string }[], at: number): void {
  for (;;) {
    const left = 2 * at + 1;
    const right = left + 1;
    let largest = at;
    if (left < heap.length && heap[left].key > heap[largest].key) largest = left;
    if (right < heap.length && heap[right].key > heap[largest].key) largest = right;
    if (largest === at) return;
    [heap[largest], heap[at]] = [heap[at], heap[largest]];
    at = largest;
  }
}
