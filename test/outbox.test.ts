import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Outbox, type Flushable } from '../src/gateway/outbox.js';

/** A connection stand-in that records which round wrote it. */
class Recorder implements Flushable {
  queued = false;
  constructor(
    readonly name: string,
    private readonly log: string[],
  ) {}
  flush(): void {
    this.log.push(this.name);
  }
}

/**
 * Waits turn by turn until `log` holds `length` writes, then a few turns more
 * so a stray extra write shows; fails if the outbox stops writing before that.
 */
async function writesReach(log: string[], length: number, turns = 200): Promise<void> {
  for (let i = 0; i < turns && log.length < length; i++) await nextTurn();
  for (let i = 0; i < 10; i++) await nextTurn();
  assert.equal(log.length, length, `${length} writes within ${turns} turns (written: ${log.join(',')})`);
}

describe('Outbox', () => {
  it('writes each queued connection once per round, however often it was queued', async () => {
    const log: string[] = [];
    const outbox = new Outbox();
    const a = new Recorder('a', log);
    const b = new Recorder('b', log);
    for (let i = 0; i < 5; i++) [a, b].forEach((c) => outbox.schedule(c));
    assert.deepEqual(log, [], 'nothing is written in the turn that queued it');
    await writesReach(log, 2);
    assert.deepEqual(log, ['a', 'b']);
  });

  it('yields between slices of a long round and writes connections queued after their turn in the next round', async () => {
    const log: string[] = [];
    const outbox = new Outbox(0); // a slice ends after every 16 connections
    const conns = Array.from({ length: 40 }, (_, i) => new Recorder(`c${i}`, log));
    for (const c of conns) outbox.schedule(c);
    await nextTurn();
    assert.equal(log.length, 16, 'the first slice wrote 16 connections and yielded');
    outbox.schedule(conns[0]); // already written in this round
    outbox.schedule(conns[39]); // still waiting in this round: no second write
    await writesReach(log, 41);
    assert.deepEqual(log, [...conns.map((c) => c.name), 'c0']);
  });

  it('joins the same frames into one shared buffer for consecutive connections', () => {
    const outbox = new Outbox();
    const one = Buffer.from('one');
    const two = Buffer.from('two');
    const first = outbox.join([one, two], 2, 6);
    assert.equal(first.toString(), 'onetwo');
    assert.equal(outbox.join([one, two], 2, 6), first, 'the same frames reuse the joined buffer');
    const other = outbox.join([one, Buffer.from('two')], 2, 6);
    assert.notEqual(other, first, 'equal bytes in another buffer are other frames');
    assert.equal(other.toString(), 'onetwo');
    assert.equal(outbox.join([two], 1, 3).toString(), 'two');
    assert.equal(outbox.join([two, one, Buffer.from('stale')], 2, 6).toString(), 'twoone', 'slots past the count are not part of the write');
  });
});
