/**
 * Real processes on a real Redis: `roomcast gateway` x2 + `roomcast logic`,
 * and `roomcast start --workers 2`. Redis is killed and restarted, a gateway
 * is SIGKILLed.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { TestClient, isPush } from './helpers/client.js';
import { call, post } from './helpers/http.js';
import { runCli, spawnRoomcast, spawnServer, stopProcess, type ServerProcess } from './helpers/process.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';

const LOOPBACK = ['--host', '127.0.0.1', '--port', '0'];

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

describe('2 gateway processes + 1 logic process on Redis', { skip: skipWithoutRedis }, () => {
  let redis: RedisServer;
  let gateways: ServerProcess[];
  let logic: ServerProcess;
  before(async () => {
    redis = await RedisServer.start();
    // a short recovery window, so a killed node's sessions end within the test
    const shared = [...LOOPBACK, '--broker', redis.url, '--recovery-window', '1500'];
    gateways = await Promise.all([1, 2].map(() => spawnRoomcast('gateway', shared)));
    logic = await spawnRoomcast('logic', shared);
  });
  after(async () => {
    await Promise.all([...gateways, logic].map(stopProcess));
    await redis.stop();
  });

  it('each process logs one line saying where it listens', () => {
    for (const g of gateways) assert.match(g.gatewayUrl, /^ws:\/\/127\.0\.0\.1:\d+\/connect$/);
    assert.match(logic.logicUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('pushes, joins, leaves, kicks and pushes to a connection across nodes', async () => {
    const [a, b] = await Promise.all(gateways.map((g) => TestClient.connect(g.gatewayUrl)));
    const all = await post(logic.logicUrl, '/push/all', { val: 'all', tag: 3 });
    for (const c of [a, b]) assert.deepEqual(await c.next(isPush), { type: 3, data: 'all', seq: all.body.data?.seq });

    for (const c of [a, b]) assert.equal((await post(logic.logicUrl, '/room/join', { id: 'x', wsId: c.wsId })).body.data?.changed, true);
    const room = await post(logic.logicUrl, '/push/room', { val: 'room', tag: 4, id: 'x' });
    for (const c of [a, b]) assert.equal((await c.next(isPush)).seq, room.body.data?.seq);
    assert.equal((await call(logic.logicUrl, '/rooms/x')).body.data?.members, 2);

    assert.equal((await post(logic.logicUrl, '/room/leave', { id: 'x', wsId: b.wsId })).body.data?.changed, true);
    assert.equal((await post(logic.logicUrl, '/push/conn', { wsId: b.wsId, val: 'direct', tag: 6 })).status, 200);
    assert.equal((await b.next(isPush)).data, 'direct');
    assert.equal((await post(logic.logicUrl, '/conn/kick', { wsId: b.wsId })).status, 200);
    assert.equal((await b.closed).code, 4003);
    assert.equal((await call(logic.logicUrl, '/stats')).body.data?.connections, 1);
    await a.closeAndWait();
  });

  it('answers 503 while Redis is down, keeps every client connected, and delivers again once Redis is back', async () => {
    const [a, b] = await Promise.all(gateways.map((g) => TestClient.connect(g.gatewayUrl)));
    for (const c of [a, b]) await post(logic.logicUrl, '/room/join', { id: 'during', wsId: c.wsId });

    await redis.kill();
    const refused = await until('push refused', async () => {
      const answer = await post(logic.logicUrl, '/push/all', { val: 'lost', tag: 3 });
      return answer.status === 503 ? answer : undefined;
    });
    assert.equal(refused.body.code, 503);
    assert.match(refused.body.msg, /Redis/);
    assert.equal((await post(logic.logicUrl, '/push/room', { val: 'lost', tag: 3, id: 'during' })).status, 503);
    assert.equal((await post(logic.logicUrl, '/room/join', { id: 'y', wsId: a.wsId })).status, 503);
    assert.equal((await call(logic.logicUrl, '/readyz')).status, 503);
    for (const c of [a, b]) assert.deepEqual(await c.ping(), { type: 1, data: 'PONG' });

    await redis.restart();
    await until('ready again', async () => ((await call(logic.logicUrl, '/readyz')).status === 200 ? true : undefined));
    // gateways resubscribe by themselves; wait until both answer again (the registry is rewritten on reconnect)
    await until('gateways re-registered', async () => {
      const statuses = await Promise.all([a, b].map((c) => call(logic.logicUrl, `/conns/${c.wsId}`)));
      return statuses.every((s) => s.status === 200) ? true : undefined;
    });
    const all = await post(logic.logicUrl, '/push/all', { val: 'back', tag: 3 });
    assert.equal(all.status, 200);
    const room = await post(logic.logicUrl, '/push/room', { val: 'room back', tag: 4, id: 'during' });
    assert.equal(room.status, 200);
    for (const c of [a, b]) {
      const frames = await c.collect(isPush, 2);
      assert.deepEqual(
        frames.map((f) => f.data),
        ['back', 'room back'],
      );
    }
    await Promise.all([a.closeAndWait(), b.closeAndWait()]);
  });

  it('after one gateway is SIGKILLed, the other keeps delivering; the dead one\'s wsIds are away, then 404 after the window', async () => {
    const [a, b] = await Promise.all(gateways.map((g) => TestClient.connect(g.gatewayUrl)));
    for (const c of [a, b]) await post(logic.logicUrl, '/room/join', { id: 'survive', wsId: c.wsId });
    gateways[1].proc.kill('SIGKILL');
    await gateways[1].exited;
    assert.equal((await b.closed).code, 1006);

    const room = await post(logic.logicUrl, '/push/room', { val: 'still', tag: 2, id: 'survive' });
    assert.equal(room.status, 200);
    assert.equal((await a.next(isPush)).data, 'still');
    const away = await call(logic.logicUrl, `/conns/${b.wsId}`);
    assert.equal(away.body.data?.state, 'away');
    assert.deepEqual(away.body.data?.rooms, ['survive']);
    await until('dead wsId is 404', async () => ((await call(logic.logicUrl, `/conns/${b.wsId}`)).status === 404 ? true : undefined));
    assert.equal((await post(logic.logicUrl, '/room/join', { id: 'r', wsId: b.wsId })).status, 404);
    assert.deepEqual((await call(logic.logicUrl, '/rooms/survive')).body.data?.wsIds, [a.wsId]);
    assert.equal((await call(logic.logicUrl, '/stats')).body.data?.nodes, 1);
    await a.closeAndWait();
  });
});

describe('roomcast start --workers', { skip: skipWithoutRedis }, () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(() => redis.stop());

  it('start --broker redis:// runs gateway and logic in one process on Redis', async () => {
    const server = await spawnServer(['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0', '--broker', redis.url]);
    try {
      assert.equal(server.lines.find((l) => typeof l.gateway === 'string')?.engine, 'redis');
      const client = await TestClient.connect(server.gatewayUrl);
      await post(server.logicUrl, '/room/join', { id: 'one-process', wsId: client.wsId });
      const answer = await post(server.logicUrl, '/push/room', { val: 'through redis', tag: 3, id: 'one-process' });
      assert.equal((await client.next(isPush)).seq, answer.body.data?.seq);
      assert.equal((await call(server.logicUrl, '/stats')).body.data?.engine, 'redis');
      await client.closeAndWait();
    } finally {
      await stopProcess(server);
    }
  });

  it('runs 2 gateway workers sharing one port; push/all reaches clients on both', async () => {
    const server = await spawnServer(['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0', '--workers', '2', '--broker', redis.url]);
    try {
      const clients = await Promise.all(Array.from({ length: 10 }, () => TestClient.connect(server.gatewayUrl)));
      const stats = await until('both workers answer', async () => {
        const s = await call(server.logicUrl, '/stats');
        return s.body.data?.nodes === 2 ? s : undefined;
      });
      assert.equal(stats.body.data?.connections, 10);
      const nodes = new Set<unknown>();
      for (const c of clients) nodes.add((await call(server.logicUrl, `/conns/${c.wsId}`)).body.data?.node);
      assert.equal(nodes.size, 2, 'connections are spread over both workers');
      const all = await post(server.logicUrl, '/push/all', { val: 'workers', tag: 3 });
      for (const c of clients) assert.equal((await c.next(isPush)).seq, all.body.data?.seq);
      const started = Date.now();
      server.proc.kill('SIGTERM');
      for (const c of clients) assert.equal((await c.closed).code, 1001);
      assert.equal((await server.exited).code, 0);
      assert.ok(Date.now() - started < 5000);
    } finally {
      await stopProcess(server);
    }
  });
});

describe('roomcast start --workers without Redis', () => {
  it('refuses with a message saying it needs --broker redis://', async () => {
    const { code, stderr } = await runCli(['start', '--workers', '2']);
    assert.equal(code, 1);
    assert.match(stderr, /--workers needs --broker redis:\/\/HOST:PORT/);
  });

  it('refuses a broker that is neither memory nor a redis:// URL', async () => {
    const { code, stderr } = await runCli(['start', '--broker', 'nats://x']);
    assert.notEqual(code, 0);
    assert.match(stderr, /broker must be memory or a redis:\/\//);
  });
});
