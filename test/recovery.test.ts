/** Recovery (PROTOCOL.md §4) on one process: resume after a dropped socket, and every way it can fail. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { createClient } from 'redis';
import type { MemoryBroker } from '../src/broker/memory.js';
import type { RedisBroker } from '../src/broker/redis/broker.js';
import { entryBytes } from '../src/history/budget.js';
import { ResumeTokens } from '../src/gateway/resume-token.js';
import { TestClient, isPush } from './helpers/client.js';
import { nodeOf, redisEngine, startCluster } from './helpers/cluster.js';
import { call, post } from './helpers/http.js';
import { parsePrometheus, valueOf } from './helpers/prometheus.js';
import { pushInTurn } from './helpers/pushes.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { withNodeBehind } from './helpers/subscriber-away.js';
import { until } from './helpers/until.js';
import { assertResumed, awayMember, dropConnection, member, resumeEnd, resumeOn, resumesEnded, resumeUntilReplaying, type Position } from './helpers/resume.js';
import { capturedLog, serverPerSuite, withServer } from './helpers/server.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';

describe('resume on one process', () => {
  const server = serverPerSuite({ resumeSecret: 'test-secret' });

  it('after a dropped socket, replays exactly the 1000 missed pushes (500 to its room, 500 to all) in order, then resumed with recovered:true', async () => {
    const { client, since } = await member(server, ['lost']);
    const oldId = client.wsId;
    await dropConnection(server, client);
    const seqs = await pushInTurn(server.logicUrl, 'lost', 1000, 2, 'm');
    assert.equal(seqs.room.length, 500);
    assert.equal(seqs.all.length, 500);

    const { client: again, frames, end } = await resumeOn(server.gatewayUrl, client.welcome!.resume as string, since);
    assertResumed(end, { wsId: oldId, recovered: true });
    const pushes = frames.filter(isPush);
    assert.equal(pushes.length, 1000);
    assert.deepEqual(
      pushes.filter((f) => f.room === 'lost').map((f) => f.seq),
      seqs.room,
    );
    assert.deepEqual(
      pushes.filter((f) => f.room === undefined).map((f) => f.seq),
      seqs.all,
    );
    assert.deepEqual(pushes.map((f) => f.data), Array.from({ length: 1000 }, (_, i) => `m${i}`));
    const streams = end.streams as Record<string, Position>;
    assert.equal(streams.lost.seq, seqs.room.at(-1));
    assert.equal(streams['*'].seq, seqs.all.at(-1));
    assert.equal(typeof end.resume, 'string');

    // it is the old session again: same wsId, same rooms, live pushes flow
    const info = await call(server.logicUrl, `/conns/${oldId}`);
    assert.equal(info.body.data?.state, 'connected');
    assert.deepEqual(info.body.data?.rooms, ['lost']);
    assert.equal((await call(server.logicUrl, `/conns/${again.wsId}`)).status, 404, 'the provisional wsId of the new welcome is dropped');
    const live = await post(server.logicUrl, '/push/room', { val: 'live', tag: 3, id: 'lost' });
    assert.deepEqual(await again.next(isPush), { type: 3, data: 'live', room: 'lost', seq: live.body.data?.seq });
    await again.closeAndWait();
  });

  it('resumes with nothing missed: recovered:true and no frames replayed', async () => {
    const { client, since } = await awayMember(server, ['calm']);
    const { client: again, frames, end } = await resumeOn(server.gatewayUrl, client.welcome!.resume as string, since);
    assert.equal(end.recovered, true);
    assert.equal(frames.filter(isPush).length, 0);
    await again.closeAndWait();
  });

  it('ends with {type:0,op:"resumed",wsId,resume,recovered,streams} whose fresh token resumes the session again, its rooms with it', async () => {
    const { client, since } = await member(server, ['twice']);
    await dropConnection(server, client);
    const first = await resumeOn(server.gatewayUrl, client.welcome!.resume as string, since);
    assert.deepEqual(Object.keys(first.end).sort(), ['op', 'recovered', 'resume', 'streams', 'type', 'wsId']);
    assert.deepEqual(first.end, {
      type: 0,
      op: 'resumed',
      wsId: client.wsId,
      resume: first.end.resume,
      recovered: true,
      streams: { '*': since['*'], twice: since.twice },
    });
    const expiryOf = (token: unknown): number => parseInt(String(token).split('.').at(-2)!, 36);
    assert.ok(String(first.end.resume).startsWith(`${client.wsId}.`), 'the token is bound to the old wsId');
    assert.ok(expiryOf(first.end.resume) >= expiryOf(client.welcome!.resume), 'the token is issued anew: it expires no sooner than the one resumed with');

    first.client.wsId = client.wsId; // the resumed connection holds the old wsId now
    await dropConnection(server, first.client);
    const missed = await post(server.logicUrl, '/push/room', { val: 'missed', tag: 3, id: 'twice' });
    const second = await resumeOn(server.gatewayUrl, first.end.resume as string, first.end.streams as Record<string, Position>);
    assertResumed(second.end, { wsId: client.wsId, recovered: true });
    assert.deepEqual(second.frames.filter(isPush), [{ type: 3, data: 'missed', room: 'twice', seq: missed.body.data?.seq }]);
    await second.client.closeAndWait();
  });

  it('a quiet room keeps its epoch while a session away is in it: resumed after the sweeps, recovered:true', async () => {
    const { client, since } = await awayMember(server, ['quiet']);
    await sleep(2200);
    const { client: again, frames, end } = await resumeOn(server.gatewayUrl, client.welcome!.resume as string, since);
    assert.equal(end.recovered, true, JSON.stringify(end));
    assert.deepEqual((end.streams as Record<string, Position>).quiet, since.quiet);
    assert.equal(frames.filter(isPush).length, 0);
    await again.closeAndWait();
  });

  it('a resume sent after the grace period is complete when nothing was missed, and replays nothing twice', async () => {
    const { client, since } = await awayMember(server, ['late']);
    const again = await TestClient.connect(server.gatewayUrl, { quiet: true });
    // pushes to all after the new welcome go out live once the grace period is over (the client sent nothing yet)
    const live = [];
    for (let i = 0; i < 3; i++) live.push((await post(server.logicUrl, '/push/all', { val: `grace${i}`, tag: 2 })).body.data?.seq);
    await again.collect(isPush, 3);
    const { frame: end } = await resumeEnd(again, client.welcome!.resume as string, since);
    const frames = again.frames.splice(0);
    assert.equal(end?.recovered, true, JSON.stringify(end));
    assert.deepEqual(
      frames.filter(isPush).map((f) => f.seq),
      live,
    );
    assert.equal((end!.streams as Record<string, Position>)['*'].seq, live.at(-1));
    const after = await post(server.logicUrl, '/push/all', { val: 'after', tag: 2 });
    assert.equal((await again.next(isPush)).seq, after.body.data?.seq);
    await again.closeAndWait();
  });

  it('a second resume sent while the first is under way is refused, and leaves the first complete (it may not forget the welcome)', async () => {
    const { client, since } = await awayMember(server, ['twice']);
    const again = await TestClient.connect(server.gatewayUrl, { quiet: true });
    await post(server.logicUrl, '/push/all', { val: 'after welcome', tag: 2 });
    // past the grace period: pushes to all went out live, so the resume is complete only from the welcome's position
    await again.next(isPush);
    const token = client.welcome!.resume as string;
    again.send({ op: 'resume', token, since, id: 1 });
    again.send({ op: 'resume', token, since, id: 2 });
    const refused = await again.next((f) => f.op === 'error' && f.id === 2);
    assert.equal(refused.code, 'bad_request', JSON.stringify(refused));
    const end = await again.next((f) => f.op === 'resumed' || (f.op === 'error' && f.id === 1), 15_000);
    assertResumed(end, { wsId: client.wsId, recovered: true });
    await again.closeAndWait();
  });

  it('a resume sent after the grace period that missed pushes to all before its welcome gets recovered:false', async () => {
    const { client, since } = await awayMember(server, []);
    await post(server.logicUrl, '/push/all', { val: 'missed', tag: 2 });
    const { client: again, end } = await resumeOn(server.gatewayUrl, client.welcome!.resume as string, since, 1500);
    assertResumed(end);
    assert.equal(end.recovered, false, 'the push went out before the welcome, and later ones went out live: it cannot be replayed in order');
    await again.closeAndWait();
  });

  it('applies join and leave by wsId made while the session was away, and shows it as away', async () => {
    const { client, since } = await awayMember(server, ['old-room']);
    const info = await call(server.logicUrl, `/conns/${client.wsId}`);
    assert.equal(info.body.data?.state, 'away');
    assert.deepEqual(info.body.data?.rooms, ['old-room']);
    assert.ok(Date.parse(info.body.data?.awayUntil as string) > Date.now());

    assert.deepEqual((await post(server.logicUrl, '/room/join', { id: 'new-room', wsId: client.wsId })).body.data?.changed, true);
    assert.deepEqual((await post(server.logicUrl, '/room/join', { id: 'new-room', wsId: client.wsId })).body.data?.changed, false);
    assert.deepEqual((await post(server.logicUrl, '/room/leave', { id: 'old-room', wsId: client.wsId })).body.data?.changed, true);
    assert.deepEqual((await post(server.logicUrl, '/push/conn', { wsId: client.wsId, val: 'x', tag: 2 })).body.data, { wsId: client.wsId, delivered: false });
    assert.deepEqual((await call(server.logicUrl, `/conns/${client.wsId}`)).body.data?.rooms, ['new-room']);
    const missed = await post(server.logicUrl, '/push/room', { val: 'while away', tag: 4, id: 'new-room' });

    const { client: again, frames, end } = await resumeOn(server.gatewayUrl, client.welcome!.resume as string, since);
    assert.equal(end.recovered, true);
    const ops = frames.map((f) => (f.op === undefined ? `push ${f.room} ${f.seq}` : `${f.op} ${f.room}`));
    assert.deepEqual(ops, ['joined new-room', `push new-room ${missed.body.data?.seq}`, 'left old-room']);
    assert.deepEqual((await call(server.logicUrl, `/conns/${client.wsId}`)).body.data?.rooms, ['new-room']);
    await again.closeAndWait();
  });

  it('refuses a forged token with bad_resume and goes on as the new connection', async () => {
    const { client, since } = await awayMember(server, []);
    const token = client.welcome!.resume as string;
    // one whole byte of the signature flipped (changing base64 characters may only touch padding bits Node ignores)
    const signature = Buffer.from(token.split('.').at(-1)!, 'base64url');
    signature[0] ^= 0xff;
    const forged = `${token.slice(0, token.lastIndexOf('.'))}.${signature.toString('base64url')}`;
    for (const bad of [forged, `${client.wsId}.zzzzzz.${token.split('.').at(-1)}`, 'not-a-token']) {
      const { client: fresh, end } = await resumeOn(server.gatewayUrl, bad, since);
      assert.deepEqual(end, { type: 0, op: 'error', id: 1, code: 'bad_resume', message: 'the resume token is forged, foreign or expired, or was signed with a secret this server does not have (as after a restart of the memory engine without --resume-secret)' });
      assert.notEqual(fresh.wsId, client.wsId);
      assert.deepEqual(await fresh.ping(), { type: 1, data: 'PONG' });
      assert.equal((await call(server.logicUrl, `/conns/${fresh.wsId}`)).body.data?.state, 'connected');
      await fresh.closeAndWait();
    }
    assert.equal((await call(server.logicUrl, `/conns/${client.wsId}`)).body.data?.state, 'away', 'the real session is untouched');
  });

  it('takes over a session whose old connection is still open (half-open): 4500 for the old one, rooms and every push since its seqs for the new one', async () => {
    const { client: old, since } = await member(server, ['half-open']);
    // the server still sees the old connection: pushes keep going to it, but the client never read them
    const seqs = await pushInTurn(server.logicUrl, 'half-open', 20, 2, 'm');
    const { client: again, frames, end } = await resumeOn(server.gatewayUrl, old.welcome!.resume as string, since);
    assertResumed(end, { wsId: old.wsId, recovered: true });
    assert.deepEqual(
      frames.filter(isPush).map((f) => f.data),
      Array.from({ length: 20 }, (_, i) => `m${i}`),
    );
    assert.deepEqual((end.streams as Record<string, Position>)['half-open'].seq, seqs.room.at(-1));
    assert.deepEqual(await old.closedWithin(), { code: 4500, reason: 'session resumed by another connection' });

    const info = await call(server.logicUrl, `/conns/${old.wsId}`);
    assert.equal(info.body.data?.state, 'connected');
    assert.deepEqual(info.body.data?.rooms, ['half-open']);
    assert.deepEqual((await call(server.logicUrl, '/rooms/half-open')).body.data?.wsIds, [old.wsId]);
    assert.equal((await call(server.logicUrl, `/conns/${again.wsId}`)).status, 404, 'the provisional wsId of the new welcome is dropped');
    const live = await post(server.logicUrl, '/push/room', { val: 'live', tag: 3, id: 'half-open' });
    assert.deepEqual(await again.next(isPush), { type: 3, data: 'live', room: 'half-open', seq: live.body.data?.seq });
    await again.closeAndWait();
  });

  it('refuses an expired token', async () => {
    const { client, since } = await awayMember(server, []);
    const expired = new ResumeTokens('test-secret').sign(client.wsId, Date.now() - 1000);
    const { client: fresh, end } = await resumeOn(server.gatewayUrl, expired, since);
    assert.equal(end.code, 'bad_resume');
    // the same token with a future expiry, signed with the same secret, is accepted: only the expiry differs
    const valid = new ResumeTokens('test-secret').sign(client.wsId, Date.now() + 60_000);
    const { client: resumed, end: ok } = await resumeOn(server.gatewayUrl, valid, since);
    assert.equal(ok.op, 'resumed');
    await Promise.all([fresh.closeAndWait(), resumed.closeAndWait()]);
  });

  it('accepts resume only as the first frame, and checks since', async () => {
    const { client, since } = await awayMember(server, []);
    const late = await TestClient.connect(server.gatewayUrl);
    late.send({ op: 'resume', token: client.welcome!.resume, since, id: 7 });
    assert.deepEqual(await late.next((f) => f.op === 'error'), {
      type: 0,
      op: 'error',
      id: 7,
      code: 'bad_request',
      message: 'resume must be the first frame after the welcome',
    });
    const { end } = await resumeOn(server.gatewayUrl, client.welcome!.resume as string, { lost: { seq: -1, epoch: 'x' } } as never);
    assert.deepEqual(end, { type: 0, op: 'error', id: 1, code: 'bad_request', message: 'since.lost must be {"seq":<integer >= 0>,"epoch":"<string>"}' });
    await late.closeAndWait();
  });

  it('a client that closes normally ends its session (404), a kicked one too', async () => {
    const { client } = await member(server, ['r']);
    await client.closeAndWait();
    assert.equal((await call(server.logicUrl, `/conns/${client.wsId}`)).status, 404);
    const { client: kicked } = await member(server, ['r']);
    await post(server.logicUrl, '/conn/kick', { wsId: kicked.wsId });
    await kicked.closedWithin();
    assert.equal((await call(server.logicUrl, `/conns/${kicked.wsId}`)).status, 404);
  });

  it('GET /rooms/:id/history returns the publications after a seq', async () => {
    const seqs: number[] = [];
    for (let i = 0; i < 5; i++) seqs.push((await post(server.logicUrl, '/push/room', { val: `h${i}`, tag: 9, id: 'hist' })).body.data?.seq as number);
    const page = await call(server.logicUrl, `/rooms/hist/history?since=${seqs[1]}&limit=2`);
    assert.equal(page.status, 200);
    assert.equal(page.body.data?.seq, seqs[4]);
    assert.equal(page.body.data?.complete, false, 'two of three is not complete');
    assert.deepEqual(
      (page.body.data?.entries as { seq: number; val: string }[]).map((e) => [e.seq, e.val]),
      [
        [seqs[2], 'h2'],
        [seqs[3], 'h3'],
      ],
    );
    const rest = await call(server.logicUrl, `/rooms/hist/history?since=${seqs[1]}`);
    assert.equal(rest.body.data?.complete, true);
  });

  it("on Redis, a resume whose replay is ahead of the node (its subscriber connection is down) waits until the node catches up, then ends: every push once, in order", { skip: skipWithoutRedis }, async () => {
    // another member keeps the room open on the node while the session is away; the subscriber, once cut, stays away
    await withNodeBehind(async ({ cluster, gatewayUrl, client, since, stays, missed, admitClients }) => {
      const again = await TestClient.connect(gatewayUrl, { quiet: true });
      const resumeSentAt = Date.now();
      again.send({ op: 'resume', token: client.welcome!.resume, since, id: 1 });
      // soon, while the subscriber's reconnect backoff is still short
      await sleep(100);
      assert.equal(again.frames.filter((f) => f.op === 'resumed').length, 0, 'the node has not fanned the replayed pushes out: the resume waits');
      await admitClients();
      const end = await again.next((f) => f.op === 'resumed', 5000);
      // The 2 s limit starts once the gateway has the resume, after it was sent: an end at the limit is 2 s or more
      // after resumeSentAt, whatever the load; the catch-up (the subscriber's backoff, at most 1 s, and its reads) fits before.
      const resumedAfter = Date.now() - resumeSentAt;
      assert.ok(resumedAfter < 2000, `resumed ${resumedAfter} ms after the resume was sent: woken when the node caught up, not at the 2 s limit`);
      assert.equal(end.recovered, true);
      const live = await post(cluster.logicUrl, '/push/room', { val: 'live', tag: 2, id: 'behind' });
      await again.next((f) => f.data === 'live');
      await again.ping();
      assert.deepEqual(
        again.frames.filter(isPush).map((f) => f.seq),
        missed,
        'the replay, and nothing twice',
      );
      assert.deepEqual(
        (await stays.collect(isPush, 6)).map((f) => f.seq),
        [...missed, live.body.data?.seq],
      );
      await Promise.all([again.closeAndWait(), stays.closeAndWait()]);
    });
  });

  it("on Redis, a gap whose history read hangs closes the stream's members with 4005 after 5 s, so they resume, instead of holding its pushes without end", { skip: skipWithoutRedis }, async () => {
    const redis = await RedisServer.start();
    // a relay in front of Redis, whose connections can be frozen: what the gateway sends on one no longer reaches Redis
    const pairs: { client: Socket; upstream: Socket }[] = [];
    const relay = createServer((client) => {
      const upstream = connect(redis.port, '127.0.0.1');
      for (const socket of [client, upstream]) socket.on('error', () => undefined);
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      pairs.push({ client, upstream });
    });
    relay.listen(0, '127.0.0.1');
    await once(relay, 'listening');
    const cluster = await startCluster(redisEngine(`redis://127.0.0.1:${(relay.address() as { port: number }).port}`), 1);
    const admin = createClient({ url: redis.url });
    await admin.connect();
    const clientList = async (): Promise<string[]> => String(await admin.sendCommand(['CLIENT', 'LIST'])).trim().split('\n');
    const processId = (cluster.gateways[0].node.broker as RedisBroker).processId;
    let frozen: { client: Socket; upstream: Socket } | undefined;
    try {
      const servers = nodeOf(cluster, 0);
      const { client } = await member(servers, ['hung']);
      const commands = (await clientList()).find((line) => line.includes(` name=roomcast:commands:${processId} `));
      const port = Number(commands?.match(/ addr=[\d.]+:(\d+) /)?.[1]);
      frozen = pairs.find((pair) => pair.upstream.localPort === port);
      assert.ok(frozen !== undefined, 'the relay carries the gateway\'s command connection');
      frozen.client.unpipe(frozen.upstream);
      frozen.client.pause();
      // the subscriber drops and comes back: the node reads history for every stream, on the frozen connection
      const subscriber = `roomcast:subscriber:${processId}`;
      const id = (await clientList()).find((line) => line.includes(` name=${subscriber} `))?.match(/^id=(\d+)/)?.[1];
      await admin.sendCommand(['CLIENT', 'KILL', 'ID', id!]);
      await until('the subscriber back', async () => ((await clientList()).some((line) => line.includes(` name=${subscriber} `)) ? true : undefined));
      const cutAt = Date.now();
      for (let i = 0; i < 3; i++) assert.equal((await post(cluster.logicUrl, '/push/room', { val: `h${i}`, tag: 2, id: 'hung' })).status, 200);
      assert.equal(await client.closeCode(9000), 4005);
      assert.ok(Date.now() - cutAt >= 4500, 'after the 5 s a failing read is given');
      assert.equal(client.frames.filter(isPush).length, 0);
    } finally {
      frozen?.client.pipe(frozen.upstream);
      admin.destroy();
      await cluster.close();
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise((resolve) => relay.close(resolve));
      await redis.stop();
    }
  });
});

describe('resume when history cannot cover the gap', () => {
  it('past the recovery window: the old wsId comes back with recovered:false and no rooms', async () => {
    await withServer({ recoveryWindow: 200 }, async (server) => {
      const { client, since } = await awayMember(server, ['gone']);
      await until('the away session to end with the window', async () => ((await call(server.logicUrl, `/conns/${client.wsId}`)).status === 404 ? true : undefined));
      const { client: again, end } = await resumeOn(server.gatewayUrl, client.welcome!.resume as string, since);
      assertResumed(end, { wsId: client.wsId, recovered: false });
      assert.deepEqual((await call(server.logicUrl, `/conns/${client.wsId}`)).body.data?.rooms, []);
      await again.closeAndWait();
    });
  });

  it('history trimmed below its seq: recovered:false, what history still holds replayed, rooms restored', async () => {
    await withServer({ historySize: 10 }, async (server) => {
      const { client, since } = await awayMember(server, ['busy']);
      for (let i = 0; i < 30; i++) await post(server.logicUrl, '/push/room', { val: `b${i}`, tag: 2, id: 'busy' });
      const { client: again, frames, end } = await resumeOn(server.gatewayUrl, client.welcome!.resume as string, since);
      assert.equal(end.recovered, false);
      assert.deepEqual(
        frames.filter(isPush).map((f) => f.data),
        Array.from({ length: 10 }, (_, i) => `b${20 + i}`),
      );
      const live = await post(server.logicUrl, '/push/room', { val: 'after', tag: 2, id: 'busy' });
      assert.equal((await again.next(isPush)).seq, live.body.data?.seq);
      await again.closeAndWait();
    });
  });

  it('history older than --history-ttl: recovered:false, nothing of it replayed, rooms restored, the history read empty', async () => {
    // the TTL leaves 'still kept' 1.5 s to be read back and replayed, on a loaded machine too
    await withServer({ historyTtl: 1500 }, async (server) => {
      const { client, since } = await awayMember(server, ['aged']);
      await post(server.logicUrl, '/push/room', { val: 'aged out', tag: 2, id: 'aged' });
      await sleep(1600);
      const kept = await post(server.logicUrl, '/push/room', { val: 'still kept', tag: 2, id: 'aged' });
      const history = await call(server.logicUrl, `/rooms/aged/history?since=${since.aged.seq}`);
      assert.deepEqual(
        (history.body.data?.entries as { val: string }[]).map((e) => e.val),
        ['still kept'],
      );
      assert.equal(history.body.data?.complete, false);
      const { client: again, frames, end } = await resumeOn(server.gatewayUrl, client.welcome!.resume as string, since);
      assertResumed(end, { wsId: client.wsId, recovered: false });
      assert.deepEqual(frames.filter(isPush), [{ type: 2, data: 'still kept', room: 'aged', seq: kept.body.data?.seq }]);
      assert.deepEqual((await call(server.logicUrl, `/conns/${client.wsId}`)).body.data?.rooms, ['aged']);
      await again.closeAndWait();
    });
  });

  it('history off (--history-size 0): a gap is reported, nothing replayed', async () => {
    await withServer({ historySize: 0 }, async (server) => {
      const { client, since } = await awayMember(server, ['nohist']);
      await post(server.logicUrl, '/push/room', { val: 'lost', tag: 2, id: 'nohist' });
      const { client: again, frames, end } = await resumeOn(server.gatewayUrl, client.welcome!.resume as string, since);
      assert.equal(end.recovered, false);
      assert.equal(frames.filter(isPush).length, 0);
      await again.closeAndWait();
    });
  });
});

describe('resume past --history-max-memory (the memory engine keeps history within a node-wide budget)', () => {
  const BUDGET = 64 * 1024;
  const ROOMS = ['hm-a', 'hm-b', 'hm-c'];
  // each entry counts 1280 + 2 * (1000 + 4) bytes: 19 of them fit in the budget
  const FIT = Math.floor(BUDGET / entryBytes('hm-a', 'v'.repeat(1000)));

  it('drops the oldest entries across rooms; a resume from a dropped seq is recovered:false, one from a kept seq recovered:true with exactly what it missed', async () => {
    assert.equal(FIT, 19);
    await withServer({ historyMaxMemory: BUDGET }, async (server) => {
      const broker = server.broker as MemoryBroker;
      const dropped = await awayMember(server, ['hm-a']);
      const kept = await awayMember(server, ['hm-c']);
      // 10 rounds of one push to each room: 30 entries, in the order a1 b1 c1 a2 b2 c2 ...
      const pushed: { room: string; seq: number; val: string }[] = [];
      for (let round = 1; round <= 10; round++) {
        for (const room of ROOMS) {
          const val = `${room}:${round}:`.padEnd(1000, 'v');
          const answer = await post(server.logicUrl, '/push/room', { val, tag: 2, id: room });
          pushed.push({ room, seq: answer.body.data?.seq as number, val });
          assert.ok(broker.historyBytes <= BUDGET, `history holds ${broker.historyBytes} bytes after push ${pushed.length}, past the budget`);
        }
      }
      const evicted = pushed.length - FIT;
      const survivors = pushed.slice(evicted);
      for (const room of ROOMS) {
        const history = await call(server.logicUrl, `/rooms/${room}/history?since=0&limit=100`);
        const entries = history.body.data?.entries as { seq: number }[];
        assert.deepEqual(
          entries.map((e) => e.seq),
          survivors.filter((p) => p.room === room).map((p) => p.seq),
          `${room}: the ${evicted} oldest pushes across rooms are gone, the newest kept`,
        );
      }
      assert.equal(broker.historyBytes, FIT * entryBytes('hm-a', 'v'.repeat(1000)));

      const lost = await resumeOn(server.gatewayUrl, dropped.client.welcome!.resume as string, dropped.since);
      assertResumed(lost.end, { wsId: dropped.client.wsId, recovered: false });
      assert.deepEqual(
        lost.frames.filter(isPush).map((f) => f.data),
        survivors.filter((p) => p.room === 'hm-a').map((p) => p.val),
        'what history still holds of hm-a is replayed',
      );

      // hm-c lost only its first 3 pushes: a client that saw them resumes complete
      const sawThree = { ...kept.since, 'hm-c': { ...kept.since['hm-c'], seq: 3 } };
      assert.equal(survivors.find((p) => p.room === 'hm-c')?.seq, 4);
      const whole = await resumeOn(server.gatewayUrl, kept.client.welcome!.resume as string, sawThree);
      assertResumed(whole.end, { wsId: kept.client.wsId, recovered: true });
      assert.deepEqual(
        whole.frames.filter(isPush).map((f) => f.data),
        pushed.filter((p) => p.room === 'hm-c' && p.seq > 3).map((p) => p.val),
      );

      const limits = (await call(server.logicUrl, '/stats')).body.data?.limits as Record<string, number>;
      assert.equal(limits.historyMaxMemory, evicted);
      const metrics = parsePrometheus(await (await fetch(`${server.logicUrl}/metrics`)).text());
      assert.equal(valueOf(metrics, 'roomcast_history_evicted_total'), evicted);
      await lost.client.closeAndWait();
      await whole.client.closeAndWait();
    });
  });
});

describe('resume when the epoch changed', () => {
  it('a since whose epoch is not the stream\'s: recovered:false, the room restored, nothing of it replayed', async () => {
    await withServer({}, async (server) => {
      const { client, since } = await awayMember(server, ['ep']);
      await post(server.logicUrl, '/push/room', { val: 'x', tag: 2, id: 'ep' });
      const stale = { ...since, ep: { seq: since.ep.seq, epoch: `${since.ep.epoch}-before` } };
      const { client: again, frames, end } = await resumeOn(server.gatewayUrl, client.welcome!.resume as string, stale);
      assert.equal(end.recovered, false);
      assert.equal(frames.filter(isPush).length, 0);
      assert.deepEqual((end.streams as Record<string, Position>).ep, { seq: since.ep.seq + 1, epoch: since.ep.epoch });
      assert.deepEqual((await call(server.logicUrl, `/conns/${client.wsId}`)).body.data?.rooms, ['ep']);
      await again.closeAndWait();
    });
  });

  it('after a restart of the process (same --resume-secret): the old wsId comes back with recovered:false and new epochs', async () => {
    const { client, since } = await withServer({ resumeSecret: 'restart-secret' }, async (first) => {
      const joined = await member(first, ['before-restart']);
      await post(first.logicUrl, '/push/room', { val: 'x', tag: 2, id: 'before-restart' });
      return joined;
    });
    assert.equal(await client.closeCode(20_000), 1001);
    await withServer({ resumeSecret: 'restart-secret' }, async (second) => {
      const { client: again, frames, end } = await resumeOn(second.gatewayUrl, client.welcome!.resume as string, since);
      assertResumed(end, { wsId: client.wsId, recovered: false });
      assert.equal(frames.filter(isPush).length, 0);
      assert.notEqual((end.streams as Record<string, Position>)['*'].epoch, since['*'].epoch);
      await again.closeAndWait();
    });
  });
});

describe('resume with client auth', () => {
  it('counts the grace period from the welcome, not from the connect: a resume 300 ms after a late welcome still replays in order', async () => {
    await withServer({ auth: 'required', jwtSecret: JWT_SECRET }, async (server) => {
      const token = await signToken({ sub: 'late-user', expiresIn: 600 });
      const first = await TestClient.connect(`${server.gatewayUrl}?token=${token}`);
      const since = { '*': { seq: first.welcome!.seq as number, epoch: first.welcome!.epoch as string } };
      await dropConnection(server, first);
      const missed = await post(server.logicUrl, '/push/all', { val: 'missed', tag: 2 });

      const second = await TestClient.open(server.gatewayUrl);
      await sleep(1200);
      second.send({ op: 'auth', token });
      await second.next((f) => f.op === 'welcome');
      await sleep(300);
      second.send({ op: 'resume', token: first.welcome!.resume, since, id: 1 });
      const end = await second.next((f) => f.op === 'resumed' || f.op === 'error');
      assert.equal(end.recovered, true, JSON.stringify(end));
      assert.deepEqual(
        second.frames.filter(isPush).map((f) => f.seq),
        [missed.body.data?.seq],
      );
      await second.closeAndWait();
    });
  });
});

/** Frames queued to clients by pushes, live ones held for a resume too (GET /stats). */
async function deliveriesOf(server: { logicUrl: string }): Promise<number> {
  return (await call(server.logicUrl, '/stats')).body.data?.deliveries as number;
}

describe('resume of a large backlog', () => {
  it('replays 2 MB of missed pushes, twice the send-buffer limit, pacing itself to the client', async () => {
    await withServer({ historySize: 1000 }, async (server) => {
      const { client, since } = await awayMember(server, ['big']);
      const val = 'v'.repeat(2048);
      for (let i = 0; i < 1000; i++) await post(server.logicUrl, '/push/room', { val: `${i}:${val}`, tag: 2, id: 'big' });
      const { client: again, frames, end } = await resumeOn(server.gatewayUrl, client.welcome!.resume as string, since);
      assertResumed(end, { recovered: true });
      const pushes = frames.filter(isPush);
      assert.equal(pushes.length, 1000);
      assert.deepEqual(
        pushes.map((f) => Number(String(f.data).split(':')[0])),
        Array.from({ length: 1000 }, (_, i) => i),
      );
      await again.closeAndWait();
    });
  });

  it('a second resume frame sent during the replay is refused and leaves the held live pushes alone: every push once, in seq order', async () => {
    const { log, lines } = capturedLog('debug');
    await withServer({}, async (server) => {
      const { client, since } = await awayMember(server, ['twice']);
      // far more than the socket buffers take: the replay stalls until the client reads
      const val = 'v'.repeat(40 * 1024);
      const missed: number[] = [];
      for (let i = 0; i < 400; i++) missed.push((await post(server.logicUrl, '/push/room', { val, tag: 2, id: 'twice' })).body.data?.seq as number);
      const again = await TestClient.connect(server.gatewayUrl, { quiet: true });
      await resumeUntilReplaying(again, client.welcome!.resume as string, since);
      const deliveries = await deliveriesOf(server);
      const live = await post(server.logicUrl, '/push/room', { val: 'live', tag: 3, id: 'twice' });
      await until('the live push to reach the resuming connection, which holds it', async () => ((await deliveriesOf(server)) > deliveries ? true : undefined));
      again.send({ op: 'resume', token: client.welcome!.resume, since, id: 2 });
      await until('the server to refuse the second resume', () => (lines.some((l) => l.msg === 'resume refused' && l.id === 2) ? true : undefined));
      assert.equal(await resumesEnded(server), 0, 'the live push and the second resume came while the replay waited for the client');
      again.ws.resume();
      await again.collect(isPush, missed.length + 1, 15_000);
      // anything sent twice would be in by the time the PONG is
      await again.ping();
      const got = again.frames.map((f) => (isPush(f) ? f.seq : `${f.op} ${f.id ?? ''} ${f.code ?? f.recovered}`));
      assert.deepEqual(got, [...missed, 'resumed  true', live.body.data?.seq, 'error 2 bad_request']);
      assert.equal(again.frames.at(-1)?.message, 'resume must be the first frame after the welcome');
      await again.closeAndWait();
    }, log);
  });

  it('a resume larger than --max-payload (500 rooms with long ids) is taken as the first frame; any other frame that large closes with 1009', async () => {
    await withServer({}, async (server) => {
      const rooms = Array.from({ length: 500 }, (_, i) => `${'long-room-id-'.repeat(9)}${i}`);
      const { client, since } = await member(server, rooms);
      await dropConnection(server, client);
      const missed = await post(server.logicUrl, '/push/room', { val: 'missed', tag: 2, id: rooms[0] });
      const resumeFrame = JSON.stringify({ op: 'resume', token: client.welcome!.resume, since, id: 1 });
      assert.ok(resumeFrame.length > 64 * 1024, `the resume frame is ${resumeFrame.length} bytes`);
      const { client: again, frames, end } = await resumeOn(server.gatewayUrl, client.welcome!.resume as string, since);
      assertResumed(end, { wsId: client.wsId, recovered: true });
      assert.deepEqual(frames.filter(isPush).map((f) => `${f.room} ${f.seq}`), [`${rooms[0]} ${missed.body.data?.seq}`]);
      // after the first frame, the same bytes are just too large
      again.send(resumeFrame);
      assert.equal(await again.closeCode(20_000), 1009);

      const first = await TestClient.connect(server.gatewayUrl, { quiet: true });
      first.send({ type: 1, data: 'x'.repeat(70 * 1024) });
      assert.equal(await first.closeCode(20_000), 1009, 'a first frame that is not a resume is held to --max-payload');
    });
  });

  it('with --max-rooms-per-connection above 10,000, a resume naming more than 10,001 long room ids is taken as the first frame', async () => {
    // the default send buffer: the 15,000 left frames (2 MB) go out as the client reads them
    await withServer({ maxRoomsPerConnection: 20_000 }, async (server) => {
      const { client, since } = await member(server, ['one']);
      await dropConnection(server, client);
      const named: Record<string, Position> = { ...since };
      // rooms the session is not in: the resume answers each with a left frame
      for (let i = 0; i < 15_000; i++) named[`${'r'.repeat(122)}${String(i).padStart(6, '0')}`] = since.one;
      const bytes = JSON.stringify({ op: 'resume', token: client.welcome!.resume, since: named, id: 1 }).length;
      assert.ok(bytes > 10_001 * 200 + 4096, `the resume frame is ${bytes} bytes, past the limit for 10,001 streams`);
      const { client: again, end } = await resumeOn(server.gatewayUrl, client.welcome!.resume as string, named);
      assertResumed(end, { wsId: client.wsId });
      await again.closeAndWait();
    });
  });

  it('a session in --max-rooms-per-connection rooms (1000) resumes: since names 1001 streams; more than 10,000 are refused naming the count', async () => {
    await withServer({}, async (server) => {
      const rooms = Array.from({ length: 1000 }, (_, i) => `full-${i}`);
      const { client, since } = await member(server, rooms);
      assert.equal(Object.keys(since).length, 1001);
      await dropConnection(server, client);
      const missed = await post(server.logicUrl, '/push/room', { val: 'missed', tag: 2, id: 'full-999' });
      const { client: again, frames, end } = await resumeOn(server.gatewayUrl, client.welcome!.resume as string, since);
      assertResumed(end, { recovered: true });
      assert.deepEqual(
        frames.filter(isPush).map((f) => `${f.room} ${f.seq}`),
        [`full-999 ${missed.body.data?.seq}`],
      );
      assert.equal(((await call(server.logicUrl, `/conns/${client.wsId}`)).body.data?.rooms as string[]).length, 1000);
      await again.closeAndWait();
    });
    // checked before the token, on a server whose frames may be that large
    await withServer({ maxPayload: 4 * 1024 * 1024 }, async (roomy) => {
      const { client, since } = await member(roomy, ['one']);
      const tooMany: Record<string, Position> = { ...since };
      for (let i = Object.keys(tooMany).length; i <= 10_000; i++) tooMany[`extra-${i}`] = since['*'];
      const { client: refused, end: error } = await resumeOn(roomy.gatewayUrl, client.welcome!.resume as string, tooMany);
      assert.deepEqual(error, { type: 0, op: 'error', id: 1, code: 'bad_request', message: 'since names 10001 streams, more than the 10000 a resume may name' });
      assert.equal((await call(roomy.logicUrl, `/conns/${client.wsId}`)).body.data?.state, 'connected', 'the session stays with its connection');
      await Promise.all([client.closeAndWait(), refused.closeAndWait()]);
    });
  });
});
