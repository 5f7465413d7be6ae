/** Pushes from several concurrent callers, as a busy backend makes them; every answer must be 200. */
import assert from 'node:assert/strict';
import { isPush, type TestClient } from './client.js';
import { post } from './http.js';

/** `count` pushes to `room` from `callers` concurrent callers (each `val`, or one naming the push); resolves with their seqs in accept order. */
export async function pushToRoom(logicUrl: string, room: string, count: number, callers = 8, val?: string): Promise<number[]> {
  const seqs: number[] = [];
  let next = 0;
  const caller = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const answer = await post(logicUrl, '/push/room', { val: val ?? `${room}-${i}`, tag: 2, id: room });
      assert.equal(answer.status, 200, answer.text);
      seqs.push(answer.body.data?.seq as number);
    }
  };
  await Promise.all(Array.from({ length: callers }, caller));
  return seqs.sort((x, y) => x - y);
}

export interface Accepted {
  room: number[];
  all: number[];
}

/**
 * Pushes to `room` and to all (one in three) until `stop()`, which resolves with the accepted seqs of each, in accept
 * order; `count()` is how many were accepted so far, so a test can wait until pushes went on rather than for a time.
 */
export function pushUntilStopped(logicUrl: string, room: string, callers = 4): { count(): number; stop(): Promise<Accepted> } {
  const accepted: Accepted = { room: [], all: [] };
  let stopped = false;
  let n = 0;
  const caller = async (): Promise<void> => {
    while (!stopped) {
      const toAll = n++ % 3 === 0;
      const answer = await post(logicUrl, toAll ? '/push/all' : '/push/room', { val: `p${n}`, tag: 2, id: room });
      assert.equal(answer.status, 200, answer.text);
      (toAll ? accepted.all : accepted.room).push(answer.body.data?.seq as number);
    }
  };
  const running = Promise.all(Array.from({ length: callers }, caller));
  return {
    count: () => accepted.room.length + accepted.all.length,
    async stop() {
      stopped = true;
      await running;
      accepted.room.sort((x, y) => x - y);
      accepted.all.sort((x, y) => x - y);
      return accepted;
    },
  };
}

export interface PushedInTurn extends Accepted {
  /** The values pushed, in order. */
  vals: string[];
}

/** `count` pushes one after another, every `allEvery`-th to all and the others to `room`, valued `${label}${i}`. */
export async function pushInTurn(logicUrl: string, room: string, count: number, allEvery: number, label = `${room}:`): Promise<PushedInTurn> {
  const pushed: PushedInTurn = { vals: [], room: [], all: [] };
  for (let i = 0; i < count; i++) {
    const toAll = i % allEvery === allEvery - 1;
    const val = `${label}${i}`;
    const answer = await post(logicUrl, toAll ? '/push/all' : '/push/room', { val, tag: 2, id: room });
    assert.equal(answer.status, 200, answer.text);
    pushed.vals.push(val);
    (toAll ? pushed.all : pushed.room).push(answer.body.data?.seq as number);
  }
  return pushed;
}

let markers = 0;

/**
 * Waits until every push answered before has reached `client`. A PING is no
 * such barrier on Redis: a push answered there is still on its way to the
 * gateway, and the PING can overtake it. A push to the connection made after
 * them cannot: the gateway's subscriber connection gets every publication and
 * command in the order Redis took them.
 */
export async function settled(logicUrl: string, client: TestClient): Promise<void> {
  const marker = `marker-${++markers}`;
  const answer = await post(logicUrl, '/push/conn', { wsId: client.wsId, val: marker, tag: 9 });
  assert.equal(answer.status, 200, answer.text);
  await client.next((f) => isPush(f) && f.data === marker, 10_000);
}
