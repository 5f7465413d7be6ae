/**
 * Node failure with pushes running: 2 gateway processes, 200 clients on each,
 * one gateway SIGKILLed mid-stream. Its clients reconnect to the survivor and
 * resume; in the end every client has every message pushed to its streams, in
 * order, none twice.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { post } from './helpers/http.js';
import { processClusterPerSuite } from './helpers/process.js';
import { skipWithoutRedis } from './helpers/redis.js';
import { ResumingClient } from './helpers/resuming-client.js';
import { until, within } from './helpers/until.js';

const CLIENTS_PER_GATEWAY = 200;
const ROOMS = 10;
const PUSHERS = 4;

describe('a gateway killed while pushes run', { skip: skipWithoutRedis, timeout: 120_000 }, () => {
  const nodes = processClusterPerSuite();

  it('loses nothing: every client of the dead node resumes on the other and has every push of its streams, in order, once', async () => {
    const { gateways, logic } = nodes;
    const [first, second] = gateways.map((g) => g.gatewayUrl);
    const clients: ResumingClient[] = [];
    try {
      for (let i = 0; i < CLIENTS_PER_GATEWAY; i++) {
        clients.push(await ResumingClient.connect([first, second]), await ResumingClient.connect([second, first]));
      }
      const roomOf = (i: number): string => `fo-${i % ROOMS}`;
      for (const [i, client] of clients.entries()) {
        assert.equal((await post(logic.logicUrl, '/room/join', { id: roomOf(i), wsId: client.wsId })).status, 200);
      }
      const notJoined = (): number[] => [...clients.keys()].filter((i) => !clients[i].since.has(roomOf(i)));
      await until(() => `every client's joined frame (${notJoined().length} clients without one, e.g. ${notJoined().slice(0, 5).join(', ')})`, () => (notJoined().length === 0 ? true : undefined));

      // accepted seqs per stream, in acceptance order
      const accepted = new Map<string, number[]>([['*', []]]);
      for (let r = 0; r < ROOMS; r++) accepted.set(`fo-${r}`, []);
      let stop = false;
      let sent = 0;
      const pusher = async (): Promise<void> => {
        while (!stop) {
          const n = sent++;
          const stream = n % 5 === 0 ? '*' : `fo-${n % ROOMS}`;
          const answer = await post(logic.logicUrl, stream === '*' ? '/push/all' : '/push/room', { val: `p${n}`, tag: 2, id: stream });
          assert.equal(answer.status, 200, answer.text);
          accepted.get(stream)!.push(answer.body.data?.seq as number);
        }
      };
      const pushing = Promise.all(Array.from({ length: PUSHERS }, pusher));

      // the kill lands while pushes go on
      await until('pushes accepted before the kill', () => ([...accepted.values()].reduce((n, list) => n + list.length, 0) >= 50 ? true : undefined));
      const dead = clients.filter((_c, i) => i % 2 === 0);
      gateways[0].proc.kill('SIGKILL');
      await within(gateways[0].exited, 10_000, 'the SIGKILLed gateway to exit');
      // pushes go on while the dead node's clients come back
      const resumed = (): number => dead.filter((c) => c.resumes.length > 0).length;
      await until(() => `every client of the killed gateway resumed (${resumed()} of ${dead.length} did)`, () => (resumed() === dead.length ? true : undefined), 20_000);
      stop = true;
      await within(pushing, 30_000, 'the pushers to stop');

      await within(Promise.all(dead.map((c) => c.whenSettled())), 30_000, 'every client of the killed gateway settled');
      for (const list of accepted.values()) list.sort((a, b) => a - b);
      const expected = (i: number): { room: number[]; all: number[] } => ({ room: accepted.get(roomOf(i))!, all: accepted.get('*')! });
      const deadline = Date.now() + 20_000;
      const complete = (c: ResumingClient, i: number): boolean => c.pushes.length >= expected(i).room.length + expected(i).all.length;
      while (!clients.every(complete) && Date.now() < deadline) await sleep(50);

      let delivered = 0;
      for (const [i, client] of clients.entries()) {
        const got = {
          room: client.pushes.filter((f) => f.room === roomOf(i)).map((f) => f.seq as number),
          all: client.pushes.filter((f) => f.room === undefined).map((f) => f.seq as number),
        };
        for (const stream of ['room', 'all'] as const) {
          // compared by hand: assert's diff of two long arrays is slow enough to stall a failing run
          const want = expected(i)[stream];
          const have = got[stream];
          const at = want.findIndex((seq, k) => have[k] !== seq);
          assert.ok(
            at === -1 && have.length === want.length,
            `client ${i} (${i % 2 === 0 ? 'on the killed gateway' : 'on the survivor'}), ${stream}: ` +
              `got ${have.length} of ${want.length}, first difference at ${at}: ${JSON.stringify(have.slice(Math.max(0, at - 2), at + 3))} ` +
              `where ${JSON.stringify(want.slice(Math.max(0, at - 2), at + 3))} was due; resumes ${JSON.stringify(client.resumes)}`,
          );
        }
        assert.equal(client.pushes.length, got.room.length + got.all.length, `client ${i} got pushes of streams it is not in`);
        delivered += client.pushes.length;
      }
      for (const client of dead) {
        assert.equal(client.resumes.length, 1);
        assert.equal(client.resumes[0].recovered, true);
        assert.deepEqual(client.errors, []);
      }
      assert.ok(sent > 100, `only ${sent} pushes were made`);
      // the count, for the record: every delivery above was checked
      assert.equal(delivered, clients.reduce((sum, _c, i) => sum + expected(i).room.length + expected(i).all.length, 0));
    } finally {
      for (const client of clients) client.stop();
    }
  });
});
