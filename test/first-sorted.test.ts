import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { firstSorted } from '../src/logic/first-sorted.js';

const byKey = (id: string): string => id;

describe('firstSorted', () => {
  it('gives the first count keys in order, whatever the order of the items and the count', () => {
    for (let trial = 0; trial < 500; trial++) {
      const n = 1 + ((trial * 37) % 120);
      const ids = Array.from({ length: n }, (_, i) => `r:${((i * 7919 + trial) % 997).toString(36)}`);
      const count = (trial * 13) % (n + 3);
      assert.deepEqual(firstSorted(ids, count, byKey), [...ids].sort().slice(0, count), `n=${n} count=${count}`);
    }
  });

  it('stays cheap for rooms listed in descending order with a deep offset (no insertion per item into a long page)', () => {
    const n = 200_000;
    const descending = Array.from({ length: n }, (_, i) => `r:${String(n - i).padStart(7, '0')}`);
    const count = n / 4 - 1; // the deepest page that does not fall back to a whole sort
    const started = performance.now();
    const first = firstSorted(descending, count, byKey);
    const ms = performance.now() - started;
    assert.deepEqual(first, descending.slice(n - count).reverse());
    // an insertion-sorted page took 8 s here: each item moved the whole page
    assert.ok(ms < 3000, `took ${Math.round(ms)} ms`);
  });
});
