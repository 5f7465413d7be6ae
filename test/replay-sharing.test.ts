/**
 * What a reconnect storm's resumes share: each history entry's frame, encoded
 * once (ReplayFrames), and history reads still in flight (SharedHistoryReads),
 * the latter only with connections that entered their streams before the read
 * was issued.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HistoryEntry, HistoryPage } from '../src/broker/broker.js';
import { ReplayFrames } from '../src/gateway/replay-frames.js';
import { SharedHistoryReads } from '../src/gateway/shared-reads.js';
import { publicationFrame } from '../src/protocol/frames.js';
import { encodeTextFrame } from '../src/protocol/ws-frame.js';

const entry = (stream: string, seq: number): HistoryEntry => ({ stream, seq, epoch: 'e1', id: `p${seq}`, tag: 3, val: `v"${seq}"é`, order: seq });

/** A history read the test answers (or fails) when it wants, and every read that was issued. */
function controlledReads(): { reads: { args: [string, number, number]; answer(page: HistoryPage): void; fail(err: Error): void }[]; read(stream: string, after: number, limit: number): Promise<HistoryPage> } {
  const reads: { args: [string, number, number]; answer(page: HistoryPage): void; fail(err: Error): void }[] = [];
  return {
    reads,
    read: (stream, after, limit) =>
      new Promise<HistoryPage>((resolve, reject) => {
        reads.push({ args: [stream, after, limit], answer: resolve, fail: reject });
      }),
  };
}

const page = (entries: HistoryEntry[]): HistoryPage => ({ seq: entries.at(-1)?.seq ?? 0, epoch: 'e1', complete: true, entries });

describe('replay frames', () => {
  it('encodes each history entry once, into the very bytes fan-out sends for it', () => {
    const frames = new ReplayFrames();
    for (const e of [entry('room-1', 7), entry('*', 8)]) {
      const frame = frames.frameOf(e);
      assert.deepEqual(frame, encodeTextFrame(publicationFrame(e)));
      assert.equal(frames.frameOf(e), frame, 'the same buffer for the same entry');
    }
    const twin = entry('room-1', 7);
    assert.notEqual(frames.frameOf(twin), frames.frameOf(entry('room-1', 7)), 'keyed by the entry object, not by its fields');
    assert.match(frames.frameOf(entry('*', 9)).toString('utf8', 2), /^\{"type":3,"data":"v\\"9\\"é","seq":9\}$/);
  });
});

describe('shared history reads', () => {
  it('shares a read in flight with connections that entered before it was issued, and with no one once it settled', async () => {
    const { reads, read } = controlledReads();
    const shared = new SharedHistoryReads(read);
    const enteredA = shared.now();
    const enteredB = shared.now();
    const a = shared.history('room-1', 4, 100, enteredA);
    const b = shared.history('room-1', 4, 100, enteredB);
    assert.equal(a, b);
    assert.equal(reads.length, 1);
    const other = shared.history('room-1', 5, 100, enteredB);
    assert.notEqual(other, a, 'another seq is another read');
    assert.equal(reads.length, 2);
    const answer = page([entry('room-1', 5)]);
    reads[0].answer(answer);
    assert.equal(await a, answer);
    assert.equal(await b, answer);
    shared.history('room-1', 4, 100, enteredB);
    assert.equal(reads.length, 3, 'a settled read is read again');
  });

  it('gives a connection that entered after a read was issued a read of its own, which later readers share', () => {
    const { reads, read } = controlledReads();
    const shared = new SharedHistoryReads(read);
    const early = shared.history('*', 0, 100, shared.now());
    const entered = shared.now(); // entered `*` after that read was issued: it may miss what was fanned out meanwhile
    const own = shared.history('*', 0, 100, entered);
    assert.notEqual(own, early);
    assert.equal(reads.length, 2);
    assert.equal(shared.history('*', 0, 100, entered), own);
    assert.equal(reads.length, 2);
    assert.notEqual(shared.history('*', 0, 100, shared.now()), own, 'one who entered after the second read gets a third');
    assert.equal(reads.length, 3);
  });

  it('fails every sharer of a failed read, and forgets it', async () => {
    const { reads, read } = controlledReads();
    const shared = new SharedHistoryReads(read);
    const entered = shared.now();
    const a = shared.history('room-2', 1, 100, entered);
    const b = shared.history('room-2', 1, 100, entered);
    reads[0].fail(new Error('the broker is away'));
    await assert.rejects(a, /the broker is away/);
    await assert.rejects(b, /the broker is away/);
    shared.history('room-2', 1, 100, entered);
    assert.equal(reads.length, 2);
  });
});
