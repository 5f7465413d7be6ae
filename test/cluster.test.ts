/**
 * Real processes on a real Redis: `roomcast gateway` x2 + `roomcast logic`,
 * and `roomcast start --workers 2`. Redis is killed and restarted, a gateway
 * is SIGKILLed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient, isPush } from './helpers/client.js';
import { call, post } from './helpers/http.js';
import { runCli, spawnRoomcast, spawnServer, startProcessCluster, stopProcess, type ProcessCluster, type ServerProcess } from './helpers/process.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { parsePrometheus, valueOf, type Family } from './helpers/prometheus.js';
import { pushToRoom } from './helpers/pushes.js';
import { assertResumed, member, resumeOn } from './helpers/resume.js';
import { until, within } from './helpers/until.js';

const LOOPBACK = ['--host', '127.0.0.1', '--port', '0'];

describe('2 gateway processes + 1 logic process on Redis', { skip: skipWithoutRedis }, () => {
  let processes: ProcessCluster | undefined;
  let redis: RedisServer;
  let gateways: ServerProcess[];
  let logic: ServerProcess;
  before(async () => {
    // a short recovery window, so a killed node's sessions end within the test
    ({ redis, gateways, logic } = processes = await startProcessCluster(['--recovery-window', '1500']));
  });
  after(() => processes?.stop());

  it('each process logs one line saying where it listens', () => {
    for (const g of gateways) assert.match(g.gatewayUrl, /^ws:\/\/127\.0\.0\.1:\d+\/connect$/);
    assert.match(logic.logicUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    const listening = (p: ServerProcess): string[] => p.lines.filter((l) => String(l.msg).startsWith('roomcast listening')).map((l) => String(l.msg));
    for (const g of gateways) assert.deepEqual(listening(g), [`roomcast listening: gateway ${g.gatewayUrl}`]);
    assert.deepEqual(listening(logic), [`roomcast listening: logic ${logic.logicUrl}`]);
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
    assert.equal(await b.closeCode(20_000), 4003);
    // the client sees its close before the gateway has dropped the connection: wait for the count, not for a moment
    await until('the kicked connection no longer counted', async () => ((await call(logic.logicUrl, '/stats')).body.data?.connections === 1 ? true : undefined), 5000);
    await a.closeAndWait();
  });

  it('delivers 500 room pushes to members on both nodes, each once and in the order they were accepted', async () => {
    const clients = await Promise.all([0, 0, 1, 1].map((g) => TestClient.connect(gateways[g].gatewayUrl)));
    for (const c of clients) {
      await post(logic.logicUrl, '/room/join', { id: 'order', wsId: c.wsId });
      await c.next((f) => f.op === 'joined');
    }
    const accepted = await pushToRoom(logic.logicUrl, 'order', 500);
    assert.equal(accepted.length, 500);
    for (const [i, c] of clients.entries()) {
      await c.collect(isPush, 500, 20_000);
      await c.ping();
      assert.deepEqual(
        c.frames.filter(isPush).map((f) => f.seq),
        accepted,
        `client ${i} on gateway ${i < 2 ? 1 : 2}`,
      );
    }
    await Promise.all(clients.map((c) => c.closeAndWait()));
  });

  it("the logic API's /metrics covers both gateway processes: their fan-out histograms and each one's process figures", async () => {
    const scrape = async (): Promise<Map<string, Family>> => parsePrometheus(await (await fetch(`${logic.logicUrl}/metrics`)).text());
    const fanouts = (families: Map<string, Family>): number =>
      valueOf(families, 'roomcast_fanout_duration_seconds', {}, 'roomcast_fanout_duration_seconds_count');
    const before = await scrape();
    const clients = await Promise.all(gateways.map((g) => TestClient.connect(g.gatewayUrl)));
    for (let i = 0; i < 3; i++) assert.equal((await post(logic.logicUrl, '/push/all', { val: 'm', tag: 3 })).status, 200);
    await Promise.all(clients.map((c) => c.collect(isPush, 3)));
    const after = await scrape();
    assert.equal(fanouts(after) - fanouts(before), 6, 'three publications fanned out on each of the two nodes');

    const gatewayPids = gateways.map((g) => String(g.proc.pid)).sort();
    const samplesOf = (name: string): { pid: string; value: number }[] =>
      (after.get(name)?.samples ?? []).map((s) => ({ pid: s.labels.pid, value: s.value })).sort((x, y) => x.pid.localeCompare(y.pid));
    const rss = samplesOf('roomcast_node_resident_memory_bytes');
    assert.deepEqual(
      rss.map((s) => s.pid),
      gatewayPids,
      'one series per gateway process',
    );
    for (const { value } of rss) assert.ok(value > 10 * 2 ** 20, `the resident memory of a live process: ${value} bytes`);
    const cpu = samplesOf('roomcast_node_cpu_seconds_total');
    const connections = samplesOf('roomcast_node_connections');
    assert.deepEqual(cpu.map((s) => s.pid), gatewayPids, 'one CPU series per gateway process');
    assert.deepEqual(connections.map((s) => s.pid), gatewayPids, 'one connections series per gateway process');
    for (const { value } of cpu) assert.ok(value > 0);
    for (const { value } of connections) assert.ok(value >= 1, 'each node holds one of the clients');
    await Promise.all(clients.map((c) => c.closeAndWait()));
  });

  it('answers 503 while Redis is down and keeps every client connected; once Redis is back (its data lost) the clients resume, recovered:false, and get pushes again', async () => {
    const [a, b] = await Promise.all(gateways.map((g) => member({ gatewayUrl: g.gatewayUrl, logicUrl: logic.logicUrl }, ['during'])));
    const later = await TestClient.connect(gateways[0].gatewayUrl);

    await redis.kill();
    // until the logic notices, a push may still be answered: one answered 2xx must have been handed on, and reach both clients
    const answered: Awaited<ReturnType<typeof post>>[] = [];
    const refused = await until('push refused', async () => {
      const answer = await post(logic.logicUrl, '/push/all', { val: `lost? ${answered.length}`, tag: 3 });
      if (answer.status !== 503) answered.push(answer);
      return answer.status === 503 ? answer : undefined;
    });
    assert.deepEqual(
      answered.filter((answer) => answer.status !== 200).map((answer) => answer.text),
      [],
    );
    const accepted = answered.map((answer) => answer.body.data?.seq as number);
    assert.equal(refused.body.code, 503);
    assert.match(refused.body.msg, /Redis/);
    for (const m of [a, b]) {
      await m.client.ping();
      assert.deepEqual(
        m.client.frames.filter(isPush).map((f) => f.seq),
        accepted,
      );
    }
    assert.equal((await post(logic.logicUrl, '/push/room', { val: 'lost', tag: 3, id: 'during' })).status, 503);
    assert.equal((await post(logic.logicUrl, '/room/join', { id: 'y', wsId: a.client.wsId })).status, 503);
    assert.equal((await call(logic.logicUrl, '/readyz')).status, 503);
    for (const m of [a, b]) assert.deepEqual(await m.client.ping(), { type: 1, data: 'PONG' });

    await redis.restart();
    // Redis lost every stream: the gateways cannot know what was missed, so their clients reconnect and resume
    for (const c of [a.client, b.client, later]) assert.equal(await c.closeCode(), 4005);
    await until('ready again', async () => ((await call(logic.logicUrl, '/readyz')).status === 200 ? true : undefined));
    const resumed = await Promise.all(
      [a, b].map((m, i) => resumeOn(gateways[i].gatewayUrl, m.client.welcome!.resume as string, { ...m.since, '*': { seq: accepted.at(-1) ?? m.since['*'].seq, epoch: m.since['*'].epoch } })),
    );
    for (const [i, { end }] of resumed.entries()) {
      assertResumed(end, { wsId: [a, b][i].client.wsId, recovered: false });
      assert.deepEqual((await call(logic.logicUrl, `/conns/${end.wsId as string}`)).body.data?.rooms, ['during']);
    }
    const all = await post(logic.logicUrl, '/push/all', { val: 'back', tag: 3 });
    assert.equal(all.status, 200);
    const room = await post(logic.logicUrl, '/push/room', { val: 'room back', tag: 4, id: 'during' });
    assert.equal(room.status, 200);
    for (const { client } of resumed) {
      const frames = await client.collect(isPush, 2);
      assert.deepEqual(
        frames.map((f) => f.data),
        ['back', 'room back'],
      );
    }

    // a gateway started after the restart accepts the tokens of those started before it (they stored their secret again)
    await until('the resume secret is back in Redis', async () => ((await redis.command(['GET', 'roomcast:resume-secret'])) === null ? undefined : true));
    const third = await spawnRoomcast('gateway', [...LOOPBACK, '--broker', redis.url, '--recovery-window', '1500']);
    try {
      const { client, end } = await resumeOn(third.gatewayUrl, later.welcome!.resume as string, {});
      assertResumed(end, { wsId: later.wsId });
      await client.closeAndWait();
    } finally {
      await stopProcess(third);
    }
    await Promise.all(resumed.map(({ client }) => client.closeAndWait()));
  });

  it('after one gateway is SIGKILLed, the other keeps delivering; the dead one\'s wsIds are away, then 404 after the window', async () => {
    const [a, b] = await Promise.all(gateways.map((g) => TestClient.connect(g.gatewayUrl)));
    for (const c of [a, b]) await post(logic.logicUrl, '/room/join', { id: 'survive', wsId: c.wsId });
    gateways[1].proc.kill('SIGKILL');
    await within(gateways[1].exited, 10_000, 'the SIGKILLed gateway to exit');
    assert.equal(await b.closeCode(20_000), 1006);

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
      for (const c of clients) assert.equal(await c.closeCode(20_000), 1001);
      assert.equal((await within(server.exited, 30_000, `${server.command} to exit after SIGTERM`)).code, 0);
      assert.ok(Date.now() - started < 5000);
    } finally {
      await stopProcess(server);
    }
  });

  it('start --workers logs each warning of its flags once, not once more in each worker', async () => {
    const risky = ['--max-val-size', '500000', '--send-buffer-limit', '600000'];
    const server = await spawnServer(['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0', '--workers', '2', '--broker', redis.url, ...risky]);
    try {
      await until('both workers answer', async () => ((await call(server.logicUrl, '/stats')).body.data?.nodes === 2 ? true : undefined));
      const warnings = server.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('--send-buffer-limit 600000 holds fewer than two pushes'));
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
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
