/**
 * One suite, run against every broker engine: two gateway nodes and a logic
 * API on one broker, clients on both nodes.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { MemoryBroker } from '../src/broker/memory.js';
import type { HistoryLimits } from '../src/history/ring.js';
import { TestClient, isPush } from './helpers/client.js';
import { memoryEngine, nodeOf, redisEngine, startCluster, type EngineFactory, type TestCluster } from './helpers/cluster.js';
import { call, post } from './helpers/http.js';
import { pushInTurn, pushToRoom, settled } from './helpers/pushes.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { assertResumed, awayMember, member, resumeOn } from './helpers/resume.js';

function contract(name: string, engine: () => EngineFactory, skip: string | false = false): void {
  describe(`broker contract: ${name}`, { skip }, () => {
    let cluster: TestCluster;
    let a: TestClient;
    let b: TestClient;
    before(async () => {
      cluster = await startCluster(engine());
      a = await TestClient.connect(cluster.gatewayUrls[0]);
      b = await TestClient.connect(cluster.gatewayUrls[1]);
    });
    after(async () => {
      await Promise.all([a.closeAndWait(), b.closeAndWait()]);
      await cluster.close();
    });

    it('push/all reaches clients on every node', async () => {
      const answer = await post(cluster.logicUrl, '/push/all', { val: 'everyone', tag: 3 });
      assert.equal(answer.status, 200);
      for (const c of [a, b]) assert.deepEqual(await c.next(isPush), { type: 3, data: 'everyone', seq: answer.body.data?.seq });
    });

    it('join and leave by wsId reach the node holding it, from the logic API', async () => {
      for (const c of [a, b]) {
        const joined = await post(cluster.logicUrl, '/room/join', { id: 'both', wsId: c.wsId });
        assert.deepEqual(joined.body.data, { room: 'both', wsId: c.wsId, changed: true });
        assert.equal((await c.next((f) => f.op === 'joined')).room, 'both');
        assert.equal((await post(cluster.logicUrl, '/room/join', { id: 'both', wsId: c.wsId })).body.data?.changed, false);
      }
    });

    it('push/room reaches the members on every node, and only them', async () => {
      const outsider = await TestClient.connect(cluster.gatewayUrls[1]);
      const answer = await post(cluster.logicUrl, '/push/room', { val: 'members', tag: 4, id: 'both' });
      for (const c of [a, b]) assert.deepEqual(await c.next(isPush), { type: 4, data: 'members', room: 'both', seq: answer.body.data?.seq });
      await outsider.ping();
      assert.equal(outsider.frames.filter(isPush).length, 0);
      await outsider.closeAndWait();
    });

    it('GET /rooms/:id/history?limit=0 answers the position with no entries (limit 0 is a valid page)', async () => {
      const pushed = await post(cluster.logicUrl, '/push/room', { val: 'h', tag: 2, id: 'limit-zero' });
      const page = await call(cluster.logicUrl, '/rooms/limit-zero/history?since=0&limit=0');
      assert.equal(page.status, 200, page.text);
      assert.deepEqual({ ...page.body.data, epoch: undefined }, { room: 'limit-zero', seq: pushed.body.data?.seq, epoch: undefined, complete: false, entries: [] });
    });

    it('a join or leave answered 2xx is in effect for the very next push: 20 rounds of join, push, leave, push on the other node', async () => {
      const c = await TestClient.connect(cluster.gatewayUrls[1]);
      const push = async (val: string): Promise<void> => {
        assert.equal((await post(cluster.logicUrl, '/push/room', { val, tag: 2, id: 'in-effect' })).status, 200);
      };
      for (let i = 0; i < 20; i++) {
        assert.equal((await post(cluster.logicUrl, '/room/join', { id: 'in-effect', wsId: c.wsId })).body.data?.changed, true);
        await push(`in ${i}`);
        assert.equal((await post(cluster.logicUrl, '/room/leave', { id: 'in-effect', wsId: c.wsId })).body.data?.changed, true);
        await push(`out ${i}`);
      }
      await post(cluster.logicUrl, '/room/join', { id: 'in-effect', wsId: c.wsId });
      await push('last');
      // one room's pushes come in order: once the last one is here, every earlier one that reached c is too
      await c.next((f) => f.data === 'last');
      assert.deepEqual(
        c.frames.filter(isPush).map((f) => f.data),
        Array.from({ length: 20 }, (_, i) => `in ${i}`),
      );
      await c.closeAndWait();
    });

    it('counts rooms and connections across nodes', async () => {
      const room = await call(cluster.logicUrl, '/rooms/both');
      assert.equal(room.body.data?.members, 2);
      assert.deepEqual(room.body.data?.wsIds, [a.wsId, b.wsId].sort());
      // a page of one member each: the nodes' first members, merged
      for (const offset of [0, 1, 2]) {
        const page = await call(cluster.logicUrl, `/rooms/both?offset=${offset}&limit=1`);
        assert.deepEqual(page.body.data, { room: 'both', members: 2, offset, limit: 1, wsIds: [a.wsId, b.wsId].sort().slice(offset, offset + 1) });
      }
      const rooms = await call(cluster.logicUrl, '/rooms');
      assert.deepEqual(rooms.body.data?.rooms, [{ room: 'both', members: 2 }]);
      const stats = await call(cluster.logicUrl, '/stats');
      assert.equal(stats.body.data?.nodes, 2);
      assert.equal(stats.body.data?.connections, 2);
      assert.equal(stats.body.data?.rooms, 1);
      const info = await call(cluster.logicUrl, `/conns/${b.wsId}`);
      assert.deepEqual(info.body.data?.rooms, ['both']);
      assert.equal(info.body.data?.node, cluster.gateways[1].node.nodeId);
    });

    it('lists rooms of either node or both by page, each once, with members summed and the total of the filter', async () => {
      const c = await TestClient.connect(cluster.gatewayUrls[0]);
      const d = await TestClient.connect(cluster.gatewayUrls[1]);
      try {
        for (const [client, rooms] of [[c, ['page-4', 'page-3', 'page-1']], [d, ['page-3', 'page-2']]] as const) {
          for (const id of rooms) assert.equal((await post(cluster.logicUrl, '/room/join', { id, wsId: client.wsId })).body.data?.changed, true);
        }
        const page = async (query: string): Promise<unknown> => (await call(cluster.logicUrl, `/rooms?${query}`)).body.data;
        const listed = (offset: number, limit: number, ...rooms: [string, number][]) => ({ total: 4, offset, limit, rooms: rooms.map(([room, members]) => ({ room, members })) });
        assert.deepEqual(await page('prefix=page-&limit=2'), listed(0, 2, ['page-1', 1], ['page-2', 1]));
        assert.deepEqual(await page('prefix=page-&offset=2&limit=2'), listed(2, 2, ['page-3', 2], ['page-4', 1]));
        assert.deepEqual(await page('prefix=page-&offset=4&limit=2'), listed(4, 2));
        assert.deepEqual(await page('contains=ge-3'), { total: 1, offset: 0, limit: 100, rooms: [{ room: 'page-3', members: 2 }] });
      } finally {
        await Promise.all([c.closeAndWait(), d.closeAndWait()]);
      }
    });

    it('delivers 500 room pushes to members on both nodes in acceptance order', async () => {
      const seqs = await pushToRoom(cluster.logicUrl, 'both', 500);
      for (const c of [a, b]) {
        const got = await c.collect((f) => isPush(f) && f.room === 'both', 500);
        assert.deepEqual(
          got.map((f) => f.seq),
          seqs,
        );
        c.frames.length = 0;
      }
    });

    it('push/conn reaches one connection on another node; kick closes it with 4003', async () => {
      const target = await TestClient.connect(cluster.gatewayUrls[1]);
      const pushed = await post(cluster.logicUrl, '/push/conn', { wsId: target.wsId, val: 'only you', tag: 5 });
      assert.deepEqual(pushed.body.data, { wsId: target.wsId, delivered: true });
      assert.deepEqual(await target.next(isPush), { type: 5, data: 'only you' });
      const kicked = await post(cluster.logicUrl, '/conn/kick', { wsId: target.wsId });
      assert.equal(kicked.status, 200);
      assert.equal(await target.closeCode(20_000), 4003);
      assert.equal((await post(cluster.logicUrl, '/push/conn', { wsId: target.wsId, val: 'x', tag: 5 })).status, 404);
    });

    it('kick by wsId ends an away session (kicked:true, then 404 for it), and answers 404 for a wsId gone', async () => {
      const { client } = await awayMember(nodeOf(cluster, 0), ['kick-away']);
      assert.deepEqual((await post(cluster.logicUrl, '/conn/kick', { wsId: client.wsId })).body, { code: 0, msg: 'ok', data: { wsId: client.wsId, kicked: true } });
      assert.equal((await call(cluster.logicUrl, `/conns/${client.wsId}`)).status, 404);
      const again = await post(cluster.logicUrl, '/conn/kick', { wsId: client.wsId });
      assert.deepEqual(again.body, { code: 404, msg: `wsId "${client.wsId}" is not connected` });
    });

    it('a session in rooms named like the fields roomcast keeps beside them (`_`, `uid`) gets them all back on resume', async () => {
      const rooms = ['_', 'uid', 'rooms-limit'];
      const { client, since } = await awayMember(nodeOf(cluster, 0), rooms);
      const { client: again, end } = await resumeOn(cluster.gatewayUrls[1], client.welcome!.resume as string, since);
      assertResumed(end);
      assert.deepEqual([...((await call(cluster.logicUrl, `/conns/${client.wsId}`)).body.data?.rooms as string[])].sort(), [...rooms].sort());
      await again.closeAndWait();
    });

    it('a client dropped on one node resumes on the other and gets every missed push, in order', async () => {
      const { client, since } = await awayMember(nodeOf(cluster, 0), ['travel']);
      const accepted = await pushInTurn(cluster.logicUrl, 'travel', 100, 2, 't');
      const { client: again, frames, end } = await resumeOn(cluster.gatewayUrls[1], client.welcome!.resume as string, since);
      assertResumed(end, { wsId: client.wsId, recovered: true });
      assert.deepEqual(
        frames.filter(isPush).map((f) => f.data),
        Array.from({ length: 100 }, (_, i) => `t${i}`),
      );
      assert.deepEqual(frames.filter((f) => isPush(f) && f.room === 'travel').map((f) => f.seq), accepted.room);
      assert.deepEqual(frames.filter((f) => isPush(f) && f.room === undefined).map((f) => f.seq), accepted.all);
      const info = await call(cluster.logicUrl, `/conns/${client.wsId}`);
      assert.equal(info.body.data?.node, cluster.gateways[1].node.nodeId);
      assert.deepEqual(info.body.data?.rooms, ['travel']);
      const live = await post(cluster.logicUrl, '/push/room', { val: 'here now', tag: 3, id: 'travel' });
      assert.deepEqual(await again.next(isPush), { type: 3, data: 'here now', room: 'travel', seq: live.body.data?.seq });
      await again.closeAndWait();
      // a and b got the pushes to all; later tests count only their own
      await Promise.all([a.ping(), b.ping()]);
      a.frames.length = 0;
      b.frames.length = 0;
    });

    it('answers 404 for a wsId no node holds', async () => {
      assert.equal((await post(cluster.logicUrl, '/room/join', { id: 'r', wsId: 'no-such-connection' })).status, 404);
      assert.equal((await call(cluster.logicUrl, '/conns/no-such-connection')).status, 404);
    });

    it('leave by wsId on the other node, and a closed connection leaves its rooms on its node', async () => {
      const left = await post(cluster.logicUrl, '/room/leave', { id: 'both', wsId: b.wsId });
      assert.equal(left.body.data?.changed, true);
      assert.equal((await b.next((f) => f.op === 'left')).room, 'both');
      const c = await TestClient.connect(cluster.gatewayUrls[1]);
      await post(cluster.logicUrl, '/room/join', { id: 'both', wsId: c.wsId });
      assert.equal((await call(cluster.logicUrl, '/rooms/both')).body.data?.members, 2);
      await c.closeAndWait();
      assert.deepEqual((await call(cluster.logicUrl, '/rooms/both')).body.data?.wsIds, [a.wsId]);
      const answer = await post(cluster.logicUrl, '/push/room', { val: 'after', tag: 2, id: 'both' });
      assert.equal((await a.next(isPush)).seq, answer.body.data?.seq);
      await settled(cluster.logicUrl, b);
      assert.deepEqual(b.frames.filter(isPush), [], 'b left the room: the push after is not its');
    });
  });
}

const ROOM_LIMIT_MSG = (rooms: number): string => `the connection is in ${rooms} rooms, the limit (--max-rooms-per-connection)`;

async function roomLimitRefusals(logicUrl: string): Promise<number> {
  return ((await call(logicUrl, '/stats')).body.data?.limits as { maxRoomsPerConnection: number }).maxRoomsPerConnection;
}

/** The rooms limit holds for a session whose connection dropped, on every engine: what is answered 2xx is what the resume brings back. */
function awaySessionLimits(name: string, engine: () => EngineFactory, skip: string | false = false): void {
  describe(`away sessions and the rooms limit: ${name}`, { skip }, () => {
    it('refuses joins past --max-rooms-per-connection to an away session with the 409 a connection gets, even concurrent ones; the resume brings back exactly the rooms answered 2xx', async () => {
      const cluster = await startCluster(engine(), 2, { maxRoomsPerConnection: 2 });
      try {
        const { client, since } = await awayMember(nodeOf(cluster, 0), ['kept']);
        const before = await roomLimitRefusals(cluster.logicUrl);
        const joins = await Promise.all(Array.from({ length: 6 }, (_, i) => post(cluster.logicUrl, '/room/join', { id: `away${i}`, wsId: client.wsId })));
        const accepted = joins.filter((j) => j.status === 200);
        assert.equal(accepted.length, 1, JSON.stringify(joins.map((j) => j.body)));
        assert.equal(accepted[0].body.data?.changed, true);
        const refused = joins.filter((j) => j.status === 409);
        assert.equal(refused.length, 5);
        for (const r of refused) assert.deepEqual(r.body, { code: 409, msg: ROOM_LIMIT_MSG(2) });
        const added = accepted[0].body.data?.room as string;
        assert.equal((await post(cluster.logicUrl, '/room/join', { id: added, wsId: client.wsId })).body.data?.changed, false, 'a room it is in is not a new one');
        assert.equal((await post(cluster.logicUrl, '/room/join', { id: 'one-more', wsId: client.wsId })).status, 409);
        assert.equal((await roomLimitRefusals(cluster.logicUrl)) - before, 6);
        const info = await call(cluster.logicUrl, `/conns/${client.wsId}`);
        assert.equal(info.body.data?.state, 'away');
        assert.deepEqual((info.body.data?.rooms as string[]).slice().sort(), ['kept', added].sort());

        const { client: again, frames, end } = await resumeOn(cluster.gatewayUrls[1], client.welcome!.resume as string, since);
        assertResumed(end, { recovered: true });
        assert.deepEqual(frames.filter((f) => f.op === 'joined').map((f) => f.room), [added]);
        assert.deepEqual(((await call(cluster.logicUrl, `/conns/${client.wsId}`)).body.data?.rooms as string[]).slice().sort(), ['kept', added].sort());
        await again.closeAndWait();
      } finally {
        await cluster.close();
      }
    });

    it('a session resumed on a node with a lower limit keeps every room it was given (none dropped)', async () => {
      const cluster = await startCluster(engine(), 2, {}, [{ maxRoomsPerConnection: 3 }, { maxRoomsPerConnection: 2 }]);
      try {
        const { client, since } = await awayMember(nodeOf(cluster, 0), ['r1', 'r2', 'r3']);
        const { client: again, end } = await resumeOn(cluster.gatewayUrls[1], client.welcome!.resume as string, since);
        assert.equal(end.recovered, true);
        assert.deepEqual(((await call(cluster.logicUrl, `/conns/${client.wsId}`)).body.data?.rooms as string[]).slice().sort(), ['r1', 'r2', 'r3']);
        const live = await post(cluster.logicUrl, '/push/room', { val: 'still here', tag: 2, id: 'r3' });
        assert.deepEqual(await again.next(isPush), { type: 2, data: 'still here', room: 'r3', seq: live.body.data?.seq });
        assert.deepEqual((await post(cluster.logicUrl, '/room/join', { id: 'r4', wsId: client.wsId })).body, { code: 409, msg: ROOM_LIMIT_MSG(3) });
        await again.closeAndWait();
      } finally {
        await cluster.close();
      }
    });
  });
}

/** History whose oldest publications expired while the stream still holds them (Redis trims by size only, and lets the key live while pushes go on). */
function historyPages(name: string, engine: (history: HistoryLimits) => EngineFactory, skip: string | false = false): void {
  describe(`history pages: ${name}`, { skip }, () => {
    it('a page of GET /rooms/:id/history is filled with the publications still kept: the expired ones before them take none of its places', async () => {
      const history = { size: 1000, ttlMs: 2000 };
      const cluster = await startCluster(engine(history), 1);
      try {
        const push = async (n: number): Promise<void> => {
          for (let i = 0; i < n; i++) assert.equal((await post(cluster.logicUrl, '/push/room', { val: `v${i}`, tag: 2, id: 'aged' })).status, 200);
        };
        await push(5); // seqs 1-5: expired by the time of the reads
        await sleep(1300);
        await push(1); // seq 6: keeps the history (on Redis, its key) alive meanwhile
        await sleep(1100);
        await push(3); // seqs 7-9
        const page = async (since: number, limit: number): Promise<{ seqs: number[]; complete: unknown }> => {
          const answer = await call(cluster.logicUrl, `/rooms/aged/history?since=${since}&limit=${limit}`);
          assert.equal(answer.status, 200, answer.text);
          const data = answer.body.data as { entries: { seq: number }[]; complete: boolean };
          return { seqs: data.entries.map((e) => e.seq), complete: data.complete };
        };
        assert.deepEqual(await page(0, 3), { seqs: [6, 7, 8], complete: false }, 'the first page after seq 0');
        assert.deepEqual(await page(8, 3), { seqs: [9], complete: true }, 'the page after the last seq read');
        assert.deepEqual(await page(0, 100), { seqs: [6, 7, 8, 9], complete: false });
        assert.deepEqual(await page(2, 1), { seqs: [6], complete: false });
        assert.deepEqual(await page(7, 1), { seqs: [8], complete: false }, 'a page that starts past the expired ones');
      } finally {
        await cluster.close();
      }
    });
  });
}

contract('memory', () => memoryEngine);
awaySessionLimits('memory', () => memoryEngine);
historyPages('memory', (history) => async () => {
  const broker = new MemoryBroker({ history });
  return { brokerFor: async () => broker, close: () => broker.close() };
});

let redis: RedisServer | undefined;
before(async () => {
  if (skipWithoutRedis === false) redis = await RedisServer.start();
});
after(async () => {
  await redis?.stop();
});
contract('redis', () => redisEngine(redis!.url), skipWithoutRedis);
awaySessionLimits('redis', () => redisEngine(redis!.url), skipWithoutRedis);
historyPages('redis', (history) => redisEngine(redis!.url, { history }), skipWithoutRedis);

describe('away sessions and the rooms limit: redis, a killed node', { skip: skipWithoutRedis }, () => {
  it("keeps the limit of a session whose node died without a word (registered when it connected)", async () => {
    const cluster = await startCluster(redisEngine(redis!.url), 2, { maxRoomsPerConnection: 2 });
    try {
      const { client } = await member(nodeOf(cluster, 0), ['d1', 'd2']);
      // the node's link to Redis goes as if its process were killed: it never reports the connection closed
      await cluster.gateways[0].node.broker.close();
      const joined = await post(cluster.logicUrl, '/room/join', { id: 'd3', wsId: client.wsId });
      assert.deepEqual(joined.body, { code: 409, msg: ROOM_LIMIT_MSG(2) });
      const info = await call(cluster.logicUrl, `/conns/${client.wsId}`);
      assert.equal(info.body.data?.state, 'away');
      assert.deepEqual((info.body.data?.rooms as string[]).slice().sort(), ['d1', 'd2']);
      client.ws.terminate();
    } finally {
      await cluster.close();
    }
  });
});
