/**
 * Pure parts of history: the in-memory history of one stream
 * (src/history/ring.ts), what it returns and that it lets go of what it
 * dropped; and how a page of history is judged complete.
 */
import assert from 'node:assert/strict';
import { setImmediate } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { historyPage, type HistoryEntry } from '../src/broker/broker.js';
import { entryBytes, HistoryBudget } from '../src/history/budget.js';
import { StreamHistory } from '../src/history/ring.js';
import { collectGarbage } from './helpers/gc.js';


function entry(seq: number): HistoryEntry {
  return { stream: 'r', seq, epoch: 'e', id: `id-${seq}`, tag: 1, val: `v${seq}`, order: seq };
}

/** Appends entries with these seqs and times; returns weak references to them (so no variable here keeps one alive). */
function appendAll(history: StreamHistory, appends: [seq: number, at: number][]): WeakRef<HistoryEntry>[] {
  return appends.map(([seq, at]) => {
    const pub = entry(seq);
    history.append(pub, at);
    return new WeakRef(pub);
  });
}

/** The seqs of the entries still reachable after a garbage collection. */
async function reachable(refs: WeakRef<HistoryEntry>[]): Promise<number[]> {
  // a WeakRef holds its target until the current job ends
  await setImmediate();
  collectGarbage();
  return refs.flatMap((ref) => ref.deref()?.seq ?? []);
}

function seqs(entries: HistoryEntry[]): number[] {
  return entries.map((e) => e.seq);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('stream history', () => {
  it('gives the entries after a seq, oldest first, at most limit, within size and TTL', () => {
    const history = new StreamHistory({ size: 5, ttlMs: 1000 });
    for (let seq = 1; seq <= 8; seq++) history.append(entry(seq), seq * 100);
    assert.equal(history.length, 5);
    assert.deepEqual(seqs(history.after(0, 100, 800)), [4, 5, 6, 7, 8], 'the oldest trimmed by size');
    assert.deepEqual(seqs(history.after(5, 100, 800)), [6, 7, 8]);
    assert.deepEqual(seqs(history.after(5, 2, 800)), [6, 7]);
    assert.deepEqual(seqs(history.after(8, 100, 800)), []);
    assert.deepEqual(seqs(history.after(50, 100, 800)), []);
    assert.deepEqual(seqs(history.after(0, 0, 800)), []);
    // entries appended at 400..800 ms; at 1550 ms those older than 550 ms are gone
    assert.deepEqual(seqs(history.after(0, 100, 1550)), [6, 7, 8], 'the oldest expired');
    assert.deepEqual(seqs(history.after(6, 1, 1550)), [7]);
    assert.equal(history.isEmpty(1799), false);
    assert.equal(history.isEmpty(1801), true);
    history.append(entry(9), 2000);
    assert.deepEqual(seqs(history.after(0, 100, 2000)), [9]);
  });

  it('stays right across many appends and compactions', () => {
    const history = new StreamHistory({ size: 7, ttlMs: 50 });
    for (let seq = 1; seq <= 1000; seq++) {
      history.append(entry(seq), seq);
      const kept = range(Math.max(1, seq - 6), seq);
      assert.deepEqual(seqs(history.after(0, 100, seq)), kept);
      assert.deepEqual(seqs(history.after(seq - 3, 2, seq)), kept.filter((s) => s > seq - 3).slice(0, 2));
    }
  });

  it('lets go of every expired publication of a stream that went quiet', async () => {
    const history = new StreamHistory({ size: 1000, ttlMs: 1000 });
    const refs = appendAll(history, range(1, 100).map((seq) => [seq, 0]));
    assert.equal(history.isEmpty(5000), true);
    assert.deepEqual(await reachable(refs), [], 'expired publications still referenced');
  });

  it('lets go of publications dropped by size or age while others are kept', async () => {
    const history = new StreamHistory({ size: 10, ttlMs: 1000 });
    const refs = appendAll(history, range(1, 10).map((seq) => [seq, seq < 10 ? 0 : 900]));
    assert.deepEqual(seqs(history.after(0, 100, 1500)), [10]);
    assert.deepEqual(await reachable(refs), [10]);
  });
});

describe('a history budget', () => {
  it('drops the oldest entries across streams, skips those a stream dropped itself, and counts only what is kept', () => {
    const bytes = entryBytes('s', 'v');
    const budget = new HistoryBudget(bytes * 4);
    const a = new StreamHistory({ size: 2, ttlMs: 1000 }, budget);
    const b = new StreamHistory({ size: 100, ttlMs: 1000 }, budget);
    const at = (history: StreamHistory, seq: number): void => history.append({ ...entry(seq), stream: 's', val: 'v' }, 0);
    for (let seq = 1; seq <= 5; seq++) at(a, seq); // a keeps 4 and 5 by its own size
    assert.equal(budget.bytes, 2 * bytes);
    for (let seq = 1; seq <= 3; seq++) at(b, seq); // the 5th entry kept takes a's 4, the globally oldest
    assert.deepEqual(seqs(a.after(0, 100, 0)), [5]);
    assert.deepEqual(seqs(b.after(0, 100, 0)), [1, 2, 3]);
    assert.equal(budget.evictions, 1);
    assert.equal(budget.bytes, 4 * bytes);
    for (let seq = 4; seq <= 5000; seq++) at(b, seq);
    assert.deepEqual(seqs(a.after(0, 100, 0)), []);
    assert.deepEqual(seqs(b.after(0, 100, 0)), [4997, 4998, 4999, 5000]);
    assert.equal(budget.evictions, 1 + 1 + 4996);
    assert.equal(budget.bytes, 4 * bytes);
  });
});

describe('a history page', () => {
  const position = { seq: 5, epoch: 'e' };
  const page = (after: number, entrySeqs: number[]): boolean => historyPage(position, after, entrySeqs.map(entry)).complete;

  it('is complete when it holds every seq from the one asked after up to the current one', () => {
    assert.equal(page(2, [3, 4, 5]), true);
    assert.equal(page(5, []), true);
    assert.equal(page(0, [1, 2, 3, 4, 5]), true);
  });

  it('is not complete with a gap, cut short by a limit, empty before the current seq, or asked past it', () => {
    assert.equal(page(2, [3, 5]), false, 'a gap');
    assert.equal(page(2, [4, 5]), false, 'the first missing');
    assert.equal(page(2, [3, 4]), false, 'cut short (by a limit of 2)');
    assert.equal(page(2, []), false, 'nothing left');
    assert.equal(page(6, []), false, 'after a seq the stream never had');
  });

  it('is not complete when the page, under its limit, stops before the current seq (history lost the newest)', () => {
    assert.equal(page(0, [1, 2, 3]), false);
  });
});
