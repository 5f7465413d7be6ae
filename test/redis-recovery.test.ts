/**
 * Recovery on a real Redis that misbehaves: a gateway's subscriber connection
 * cut while pushes go on, Redis losing its data (the resume secret, the
 * streams), and what roomcast leaves behind in Redis.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import { WebSocket } from 'ws';
import type { RedisBroker } from '../src/broker/redis/broker.js';
import { KEEP_ROUND_BEATS } from '../src/broker/redis/streams.js';
import { ResumeTokens } from '../src/gateway/resume-token.js';
import { TestClient, isPush, type Frame } from './helpers/client.js';
import { nodeOf, redisEngine, startCluster, type TestCluster } from './helpers/cluster.js';
import { call, post } from './helpers/http.js';
import { pushUntilStopped, type Accepted } from './helpers/pushes.js';
import { RedisRelay } from './helpers/redis-relay.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { assertResumed, awayMember, dropConnection, member, resumeOn, type Position } from './helpers/resume.js';
import { stallFor, until } from './helpers/until.js';

function brokerOf(cluster: TestCluster, node: number): RedisBroker {
  return cluster.gateways[node].node.broker as RedisBroker;
}

/** The name a gateway's Redis connection goes by (CLIENT LIST). */
function connectionOf(cluster: TestCluster, node: number, role: 'subscriber' | 'commands'): string {
  return `roomcast:${role}:${brokerOf(cluster, node).processId}`;
}

/**
 * Waits for the markers pushed to the room and to all once the pushes stopped, then checks the client had, before
 * them, exactly the pushes accepted, in order: a duplicate or a push out of order would have come before its marker.
 */
async function assertReceivedExactly(client: TestClient, room: string, accepted: Accepted, markers: { room: number; all: number }, who: string): Promise<void> {
  await client.next((f) => isPush(f) && f.room === room && f.seq === markers.room, 15_000);
  await client.next((f) => isPush(f) && f.room === undefined && f.seq === markers.all, 15_000);
  const pushes = client.frames.filter(isPush);
  const seqsOf = (frames: Frame[]): number[] => frames.map((f) => f.seq as number);
  assert.deepEqual(seqsOf(pushes.filter((f) => f.room === room)), accepted.room, `${who}: the room pushes`);
  assert.deepEqual(seqsOf(pushes.filter((f) => f.room === undefined)), accepted.all, `${who}: the pushes to all`);
  assert.equal(pushes.length, accepted.room.length + accepted.all.length, `${who}: nothing else`);
}

/** The id of the Redis connection named `name` (CLIENT LIST), or undefined while there is none. */
async function connectionId(name: string): Promise<string | undefined> {
  const list = String(await redis.command(['CLIENT', 'LIST']));
  return list.split('\n').find((line) => line.includes(` name=${name} `))?.match(/^id=(\d+)/)?.[1];
}

/** The values of the pushes among the frames, in order. */
function pushedValues(frames: Frame[]): unknown[] {
  return frames.filter(isPush).map((f) => f.data);
}

// one redis-server for the file; each cluster has its own key prefix
let redis: RedisServer;
before(async () => {
  if (skipWithoutRedis === false) redis = await RedisServer.start();
});
after(() => redis?.stop());

describe('a gateway whose subscriber connection is cut', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  it('every push answered 200 reaches every client, in order, once, and no client is closed', async () => {
    const cluster = await startCluster(redisEngine(redis.url), 2);
    let clients: TestClient[] = [];
    try {
      clients = await Promise.all([0, 0, 1].map((node) => TestClient.connect(cluster.gatewayUrls[node])));
      for (const c of clients) {
        await post(cluster.logicUrl, '/room/join', { id: 'gap', wsId: c.wsId });
        await c.next((f) => f.op === 'joined');
      }
      const pushing = pushUntilStopped(cluster.logicUrl, 'gap', 6);
      const subscriber = connectionOf(cluster, 0, 'subscriber');
      // each cut, and the stop after the last, waits for the subscriber to be connected again and 25 more pushes accepted
      let cutId: string | undefined;
      for (let cut = 0; cut <= 5; cut++) {
        const pushedBefore = pushing.count();
        const id = await until(`the subscriber connected again and 25 pushes accepted, after ${cut} cuts`, async () => {
          const now = await connectionId(subscriber);
          return now !== undefined && now !== cutId && pushing.count() >= pushedBefore + 25 ? now : undefined;
        });
        if (cut === 5) break;
        await redis.command(['CLIENT', 'KILL', 'ID', id]);
        cutId = id;
      }
      const accepted = await pushing.stop();
      assert.ok(accepted.room.length + accepted.all.length > 100, 'pushes went on while the subscriber was cut');
      const markers = {
        room: (await post(cluster.logicUrl, '/push/room', { val: 'marker', tag: 2, id: 'gap' })).body.data?.seq as number,
        all: (await post(cluster.logicUrl, '/push/all', { val: 'marker', tag: 2 })).body.data?.seq as number,
      };
      for (const [i, c] of clients.entries()) await assertReceivedExactly(c, 'gap', accepted, markers, `client ${i} (node ${i < 2 ? 0 : 1})`);
      for (const c of clients) assert.equal(c.ws.readyState, WebSocket.OPEN);
      assert.equal((await call(cluster.logicUrl, '/stats')).body.data?.missedMessageCloses, 0);
    } finally {
      await Promise.all(clients.map((c) => c.closeAndWait()));
      await cluster.close();
    }
  });

  it('with history off, the members of a stream that missed pushes are closed with 4005, and resume with recovered:false', async () => {
    const cluster = await startCluster(redisEngine(redis.url, { history: { size: 0, ttlMs: 0 } }), 1);
    try {
      const { client, since } = await member(nodeOf(cluster, 0), ['no-history']);
      const pushing = pushUntilStopped(cluster.logicUrl, 'no-history', 2);
      await until('pushes accepted before the cut', () => (pushing.count() >= 5 ? true : undefined));
      await redis.killClient(connectionOf(cluster, 0, 'subscriber'));
      const code = await client.closeCode();
      await pushing.stop();
      assert.deepEqual(code === 4005 ? await client.closedWithin() : code, { code: 4005, reason: 'missed messages: reconnect and resume' });
      const { client: again, end } = await resumeOn(cluster.gatewayUrls[0], client.welcome!.resume as string, since);
      assertResumed(end, { wsId: client.wsId, recovered: false });
      assert.deepEqual((await call(cluster.logicUrl, `/conns/${client.wsId}`)).body.data?.rooms, ['no-history']);
      assert.equal((await call(cluster.logicUrl, '/stats')).body.data?.missedMessageCloses, 1);
      await again.closeAndWait();
    } finally {
      await cluster.close();
    }
  });

  it('after Redis lost its data (flushed) while the subscriber was cut, members are closed and resume with recovered:false, their rooms kept', async () => {
    const cluster = await startCluster(redisEngine(redis.url), 1);
    try {
      const { client, since } = await member(nodeOf(cluster, 0), ['flushed']);
      await redis.command(['FLUSHALL']);
      await redis.killClient(connectionOf(cluster, 0, 'subscriber'));
      assert.equal(await client.closeCode(), 4005);
      const { client: again, end } = await resumeOn(cluster.gatewayUrls[0], client.welcome!.resume as string, since);
      assertResumed(end, { recovered: false });
      const streams = end.streams as Record<string, Position>;
      assert.notEqual(streams.flushed.epoch, since.flushed.epoch);
      assert.notEqual(streams['*'].epoch, since['*'].epoch);
      assert.deepEqual((await call(cluster.logicUrl, `/conns/${client.wsId}`)).body.data?.rooms, ['flushed']);
      const live = await post(cluster.logicUrl, '/push/room', { val: 'new epoch', tag: 2, id: 'flushed' });
      assert.deepEqual(await again.next(isPush), { type: 2, data: 'new epoch', room: 'flushed', seq: live.body.data?.seq });
      await again.closeAndWait();
    } finally {
      await cluster.close();
    }
  });
});

describe('Redis losing its data while a gateway stays subscribed (FLUSHALL, eviction)', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  it("the first push of a stream's new epoch closes the stream's members with 4005 (not delivered to them), and they resume with recovered:false in the new epoch; members of other streams stay until theirs changes", async () => {
    const cluster = await startCluster(redisEngine(redis.url), 1);
    const epochInRedis = async (stream: string): Promise<string> => String(await redis.command(['HGET', brokerOf(cluster, 0).names.streamKey(stream), 'epoch']));
    const resumed: TestClient[] = [];
    try {
      const pushed = await member(nodeOf(cluster, 0), ['pushed']);
      const roomless = await member(nodeOf(cluster, 0), []);
      const quiet = await member(nodeOf(cluster, 0), ['quiet']);
      await redis.command(['FLUSHALL']);

      const push = await post(cluster.logicUrl, '/push/room', { val: 'new epoch', tag: 2, id: 'pushed' });
      assert.equal(push.body.data?.seq, 1, 'the push starts a new epoch');
      const newRoomEpoch = await epochInRedis('pushed');
      assert.notEqual(newRoomEpoch, pushed.since.pushed.epoch);
      assert.deepEqual(await pushed.client.closedWithin(), { code: 4005, reason: 'missed messages: reconnect and resume' });
      assert.deepEqual(pushedValues(pushed.client.frames), [], 'the closed member did not get the push of the new epoch');
      for (const { client } of [roomless, quiet]) {
        await client.ping();
        assert.equal(client.ws.readyState, WebSocket.OPEN, 'a member of a stream that saw no new epoch stays');
      }
      const again = await resumeOn(cluster.gatewayUrls[0], pushed.client.welcome!.resume as string, pushed.since);
      resumed.push(again.client);
      assertResumed(again.end, { wsId: pushed.client.wsId, recovered: false });
      assert.deepEqual((again.end.streams as Record<string, Position>).pushed, { seq: 1, epoch: newRoomEpoch });
      assert.deepEqual(pushedValues(again.frames), [], 'nothing of another epoch is replayed: recovered:false tells the app to refetch');

      // a push to all is the first of a new epoch of `*`, which every connection is in
      const toAll = await post(cluster.logicUrl, '/push/all', { val: 'to all', tag: 2 });
      assert.equal(toAll.body.data?.seq, 1);
      const newAllEpoch = await epochInRedis('*');
      assert.notEqual(newAllEpoch, roomless.since['*'].epoch);
      for (const { client } of [roomless, quiet]) assert.equal((await client.closedWithin()).code, 4005);
      const roomlessAgain = await resumeOn(cluster.gatewayUrls[0], roomless.client.welcome!.resume as string, roomless.since);
      resumed.push(roomlessAgain.client);
      assertResumed(roomlessAgain.end, { wsId: roomless.client.wsId, recovered: false });
      assert.deepEqual((roomlessAgain.end.streams as Record<string, Position>)['*'], { seq: 1, epoch: newAllEpoch });
      assert.equal((await call(cluster.logicUrl, '/stats')).body.data?.missedMessageCloses, 4);
    } finally {
      await Promise.all(resumed.map((c) => c.closeAndWait()));
      await cluster.close();
    }
  });
});

describe('Redis losing the resume secret', { skip: skipWithoutRedis }, () => {
  it('a node stores its secret again, or takes the one another node stored, and still accepts tokens signed with its own', async () => {
    await redis.command(['FLUSHALL']); // so the one secret in Redis is this cluster's
    const cluster = await startCluster(redisEngine(redis.url), 1);
    try {
      const { client: old, since } = await awayMember(nodeOf(cluster, 0), []);
      const [secretKey] = (await redis.command(['KEYS', '*resume-secret'])) as string[];
      const secret = (await redis.command(['GET', secretKey])) as string;

      await redis.command(['FLUSHALL']);
      await redis.killClient(connectionOf(cluster, 0, 'commands'));
      await until('the node stored its secret again', async () => ((await redis.command(['GET', secretKey])) === secret ? true : undefined));

      // lost again, and another node stored its own before this one was back
      await redis.command(['FLUSHALL']);
      await redis.command(['SET', secretKey, 'another-nodes-secret']);
      await redis.killClient(connectionOf(cluster, 0, 'commands'));
      const theirs = new ResumeTokens('another-nodes-secret');
      await until('the node signs with the stored secret', async () => {
        const fresh = await TestClient.connect(cluster.gatewayUrls[0]);
        await fresh.closeAndWait();
        return theirs.verify(fresh.welcome!.resume as string)?.wsId === fresh.wsId ? true : undefined;
      });
      const { client: again, end } = await resumeOn(cluster.gatewayUrls[0], old.welcome!.resume as string, since);
      assertResumed(end, { wsId: old.wsId });
      await again.closeAndWait();
    } finally {
      await cluster.close();
    }
  });
});

describe('what roomcast leaves in Redis', { skip: skipWithoutRedis }, () => {
  const ttlOf = async (pattern: string): Promise<number> => {
    const [key] = (await redis.command(['KEYS', pattern])) as string[];
    assert.ok(key !== undefined, `no key ${pattern}`);
    return Number(await redis.command(['TTL', key]));
  };

  it('a join by wsId for a session that is gone creates nothing; one for an away session keeps its expiry', async () => {
    const cluster = await startCluster(redisEngine(redis.url), 1);
    try {
      const store = brokerOf(cluster, 0).awayStore;
      assert.deepEqual(await store.addRoom('gone-session', 'r', { seq: 0, epoch: 'e' }), { changed: false });
      assert.deepEqual(await redis.command(['KEYS', '*session:gone-session']), []);

      const { client } = await awayMember(nodeOf(cluster, 0), []);
      assert.equal((await post(cluster.logicUrl, '/room/join', { id: 'while-away', wsId: client.wsId })).body.data?.changed, true);
      const ttl = await ttlOf(`*session:${client.wsId}`);
      assert.ok(ttl > 0 && ttl <= 120, `the session expires with its recovery window (TTL ${ttl} s)`);
    } finally {
      await cluster.close();
    }
  });

  it('a room only joined keeps its seq and epoch as long as a session may resume in it, not 24 h; a push keeps them 24 h', async () => {
    const cluster = await startCluster(redisEngine(redis.url), 1);
    let clients: TestClient[] = [];
    try {
      const [a, b] = (clients = await Promise.all([0, 0].map(() => TestClient.connect(cluster.gatewayUrls[0]))));
      await post(cluster.logicUrl, '/room/join', { id: 'joined-only', wsId: a.wsId });
      const joined = await ttlOf('*stream:joined-only');
      // 30 s registry + 120 s recovery window (a session's life) + a round of keeps less a beat (110 s) + 30 s
      assert.ok(joined > 280 && joined <= 290, `TTL ${joined} s`);
      await post(cluster.logicUrl, '/push/room', { val: 'x', tag: 2, id: 'joined-only' });
      assert.ok((await ttlOf('*stream:joined-only')) > 86_000);
      await post(cluster.logicUrl, '/room/join', { id: 'joined-only', wsId: b.wsId });
      assert.ok((await ttlOf('*stream:joined-only')) > 86_000, 'a join does not shorten it');
    } finally {
      await Promise.all(clients.map((c) => c.closeAndWait()));
      await cluster.close();
    }
  });

  it('with --history-ttl above 24 h, a pushed stream keeps its seq and epoch as long as its history', async () => {
    const cluster = await startCluster(redisEngine(redis.url, { history: { size: 100, ttlMs: 48 * 3_600_000 } }), 1);
    try {
      await post(cluster.logicUrl, '/push/room', { val: 'x', tag: 2, id: 'long-history' });
      const history = await ttlOf('*history:long-history');
      assert.ok(history > 47 * 3600, `history TTL ${history} s`);
      assert.ok((await ttlOf('*stream:long-history')) >= history, 'the seq and epoch outlive the history they number');
    } finally {
      await cluster.close();
    }
  });

  it('a stream a push creates gets a random epoch, and a new one when Redis forgot the stream', async () => {
    const cluster = await startCluster(redisEngine(redis.url), 1);
    try {
      const epochOf = async (): Promise<string> => {
        await post(cluster.logicUrl, '/push/room', { val: 'x', tag: 2, id: 'pushed-first' });
        return (await call(cluster.logicUrl, '/rooms/pushed-first/history')).body.data?.epoch as string;
      };
      const first = await epochOf();
      assert.match(first, /^[\w-]{8}$/, `epoch ${first}`);
      // what a stream's keys expiring (24 h after its last push) or a Redis restart does
      for (const key of (await redis.command(['KEYS', '*:pushed-first'])) as string[]) await redis.command(['DEL', key]);
      const second = await epochOf();
      assert.notEqual(second, first, 'a stream whose history is lost is numbered under a new epoch');
    } finally {
      await cluster.close();
    }
  });

  it('a quiet room keeps its seq and epoch while a node has members in it: a resume after they would have expired is recovered', async () => {
    const cluster = await startCluster(redisEngine(redis.url, { registryTtlMs: 300, recoveryWindowMs: 1000 }), 1);
    try {
      const { client, since } = await member(nodeOf(cluster, 0), ['quiet']);
      const joinedTtl = await ttlOf('*stream:quiet');
      assert.ok(joinedTtl > 0 && joinedTtl < 4, `its seq and epoch would expire ${joinedTtl} s after the join if the node did not keep them`);
      await sleep(4500);
      await dropConnection(cluster, client);
      const { client: resumed, end } = await resumeOn(cluster.gatewayUrls[0], client.welcome!.resume as string, since);
      assertResumed(end, { wsId: client.wsId, recovered: true });
      assert.deepEqual((end.streams as Record<string, Position>).quiet, since.quiet, 'the same seq, in the same epoch');
      const pushed = await post(cluster.logicUrl, '/push/room', { val: 'still', tag: 2, id: 'quiet' });
      assert.deepEqual(pushed.body.data?.seq, since.quiet.seq + 1);
      const history = await call(cluster.logicUrl, `/rooms/quiet/history?since=${since.quiet.seq}`);
      assert.equal(history.body.data?.epoch, since.quiet.epoch);
      assert.equal((await resumed.next(isPush)).seq, pushed.body.data?.seq);
      await resumed.closeAndWait();
    } finally {
      await cluster.close();
    }
  });

  it('a gateway keeps each stream it has members in once a round of beats, not on every beat, and keeps them all', async () => {
    // a beat every 100 ms; the seq and epoch of a stream only joined live 2 s unless kept
    const cluster = await startCluster(redisEngine(redis.url, { registryTtlMs: 300, recoveryWindowMs: 300 }), 1);
    let clients: TestClient[] = [];
    try {
      const rooms = Array.from({ length: 200 }, (_, i) => `kept-${i}`);
      clients = await Promise.all([0, 1, 2, 3].map(async (part) => (await member(nodeOf(cluster, 0), rooms.slice(part * 50, (part + 1) * 50))).client));
      await redis.command(['CONFIG', 'RESETSTAT']);
      const started = Date.now();
      await sleep(3600);
      const stats = String(await redis.command(['INFO', 'commandstats']));
      const rounds = Math.ceil((Date.now() - started) / (KEEP_ROUND_BEATS * 100));
      const expires = Number(/cmdstat_expire:calls=(\d+)/.exec(stats)?.[1] ?? 0);
      const streams = rooms.length + 1;
      // every beat kept every stream before: 36 beats x 201 streams
      assert.ok(expires <= streams * (rounds + 1), `${expires} EXPIREs in ${rounds} rounds of keeps for ${streams} streams`);
      const keys = rooms.map((room) => brokerOf(cluster, 0).names.streamKey(room));
      assert.equal(await redis.command(['EXISTS', ...keys]), rooms.length, 'every stream outlived its TTL from the join: each was kept');
    } finally {
      await Promise.all(clients.map((c) => c.closeAndWait()));
      await cluster.close();
    }
  });
  it('a gateway whose beats run late under load still keeps every stream it has members in before it expires', async () => {
    // a beat every 200 ms; a stream only joined lives 4 s unless kept. The loop is blocked 250 ms at a time, so 12
    // beats take over 4 s: keeping a slice per beat, not per period of time, let streams expire under their members
    const cluster = await startCluster(redisEngine(redis.url, { registryTtlMs: 600, recoveryWindowMs: 300 }), 1);
    let clients: TestClient[] = [];
    let load: NodeJS.Timeout | undefined;
    try {
      const rooms = Array.from({ length: 48 }, (_, i) => `late-${i}`);
      clients = await Promise.all([0, 1].map(async (part) => (await member(nodeOf(cluster, 0), rooms.slice(part * 24, (part + 1) * 24))).client));
      const keys = rooms.map((room) => brokerOf(cluster, 0).names.streamKey(room));
      load = setInterval(() => stallFor(250), 50);
      await sleep(9000);
      clearInterval(load);
      assert.equal(await redis.command(['EXISTS', ...keys]), rooms.length, 'every stream outlived its TTL from the join: each was kept');
    } finally {
      clearInterval(load);
      await Promise.all(clients.map((c) => c.closeAndWait()));
      await cluster.close();
    }
  });
});

describe('a leave made while the node cannot reach Redis', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  it('is not undone once Redis is back: the session dropped later is away without the room it left', async () => {
    const cluster = await startCluster(redisEngine(redis.url), 1, { allowClientJoin: true, maxRoomsPerConnection: 7 });
    // stays authenticated while Redis asks new connections for a password
    const admin = createClient({ url: redis.url });
    await admin.connect();
    try {
      const { client } = await member(nodeOf(cluster, 0), ['kept', 'left']);
      const [sessionKey] = (await redis.command(['KEYS', `*session:${client.wsId}`])) as string[];

      // the node's command connection is cut and cannot come back until the password goes
      await admin.sendCommand(['CONFIG', 'SET', 'requirepass', 'not-yet']);
      await admin.sendCommand(['CLIENT', 'KILL', 'ID', await clientId(admin, connectionOf(cluster, 0, 'commands'))]);
      await until('the node lost Redis', async () => (brokerOf(cluster, 0).isReady() ? undefined : true));
      client.send({ op: 'leave', room: 'left', id: 1 });
      assert.deepEqual(await client.next((f) => f.op === 'reply'), { type: 0, op: 'reply', id: 1, room: 'left', changed: true });
      assert.equal(await admin.hExists(sessionKey, 'left'), 1, 'Redis still has the room left (the node could not tell it)');

      await admin.sendCommand(['CONFIG', 'SET', 'requirepass', '']);
      await until('the node reached Redis again', async () => (brokerOf(cluster, 0).isReady() ? true : undefined));
      await until('the node rewrote the session', async () => ((await admin.hExists(sessionKey, 'left')) === 0 ? true : undefined));
      assert.deepEqual(await admin.hGetAll(sessionKey), { '#uid': '', '#rooms-limit': '7', kept: '' }, 'its uid and rooms limit are kept');

      await dropConnection(cluster, client);
      assert.deepEqual((await call(cluster.logicUrl, `/conns/${client.wsId}`)).body.data?.rooms, ['kept']);
    } finally {
      await admin.sendCommand(['CONFIG', 'SET', 'requirepass', '']).catch(() => undefined);
      admin.destroy();
      await cluster.close();
    }
  });
});

/** The id Redis gives the connection with this name (CLIENT LIST). */
async function clientId(admin: { sendCommand(args: string[]): Promise<unknown> }, name: string): Promise<string> {
  const list = String(await admin.sendCommand(['CLIENT', 'LIST']));
  const id = list.split('\n').find((line) => line.includes(` name=${name} `))?.match(/^id=(\d+)/)?.[1];
  if (id === undefined) throw new Error(`no client named ${name} is connected to Redis`);
  return id;
}

describe('a room closed while Redis is stopped, and Redis then restarted', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  it('the gateway does not resubscribe to the room it has no members in when the connection comes back: the UNSUBSCRIBE lost with the connection is sent again', async () => {
    const own = await RedisServer.start();
    // the relay shows the UNSUBSCRIBE on its way to Redis
    const relay = await RedisRelay.start(own.port);
    const cluster = await startCluster(redisEngine(relay.url), 1);
    const channel = brokerOf(cluster, 0).names.roomChannel('emptied');
    const subscribers = async (): Promise<number> => ((await own.command(['PUBSUB', 'NUMSUB', channel])) as [string, number])[1];
    let frozen = false;
    try {
      const { client } = await member(nodeOf(cluster, 0), ['emptied']);
      assert.equal(await subscribers(), 1);
      own.freeze();
      frozen = true;
      // the last member leaves: the UNSUBSCRIBE goes out and waits, unanswered, and is lost with the connection
      const subscriber = connectionOf(cluster, 0, 'subscriber');
      const unsubscribe = relay.hold((name, text) => name === subscriber && text.toUpperCase().includes('UNSUBSCRIBE') && text.includes(channel));
      await client.closeAndWait();
      await unsubscribe.held;
      // held only until seen: it goes on to the frozen Redis
      unsubscribe.release();
      await own.kill();
      frozen = false;
      await own.restart();
      await until('the subscriber connected again', async () => (brokerOf(cluster, 0).isReady() ? true : undefined), 10_000);
      await until('the room channel has no subscriber', async () => ((await subscribers()) === 0 ? true : undefined), 3000).catch(async () => {
        assert.fail(`the gateway is still subscribed to ${channel} (${await subscribers()} subscriber) though it has no member in the room`);
      });
    } finally {
      if (frozen) own.thaw();
      await cluster.close();
      await relay.close();
      await own.stop();
    }
  });
});
