import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { TestClient, isPush } from './helpers/client.js';
import { call, post } from './helpers/http.js';
import { parsePrometheus, valueOf, type Family } from './helpers/prometheus.js';
import { emptyNodeStats, NODE_COUNTER_KEYS, type NodeStats } from '../src/broker/broker.js';
import type { Broker } from '../src/broker/broker.js';
import { RedisBroker } from '../src/broker/redis/broker.js';
import { logicPart } from '../src/config.js';
import { CounterTotals, FORGET_NODE_AFTER_MS } from '../src/counter-totals.js';
import { createLogic, logicUrl } from '../src/standalone.js';
import type { LogicServer } from '../src/logic/server.js';
import { memoryEngine, nodeOf, redisEngine, startCluster, type EngineFactory, type TestCluster } from './helpers/cluster.js';
import { RawClient } from './helpers/raw-client.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { serverPerSuite, testConfig, withServer } from './helpers/server.js';
import { awayMember } from './helpers/resume.js';
import { forceSlowConsumerClose } from './helpers/slow-consumer.js';
import { until, within } from './helpers/until.js';
import { collectGarbage } from './helpers/gc.js';

async function scrape(server: { logicUrl: string }, headers: Record<string, string> = {}): Promise<Map<string, Family>> {
  const res = await fetch(`${server.logicUrl}/metrics`, { headers });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return parsePrometheus(await res.text());
}

describe('GET /metrics', () => {
  const server = serverPerSuite();

  it('parses as Prometheus text, with the roomcast families and Node process metrics', async () => {
    const families = await scrape(server);
    const expected: [string, Family['type']][] = [
      ['roomcast_connections', 'gauge'],
      ['roomcast_rooms', 'gauge'],
      ['roomcast_gateway_nodes', 'gauge'],
      ['roomcast_pushes_total', 'counter'],
      ['roomcast_push_failures_total', 'counter'],
      ['roomcast_deliveries_total', 'counter'],
      ['roomcast_closes_total', 'counter'],
      ['roomcast_refusals_total', 'counter'],
      ['roomcast_resumes_total', 'counter'],
      ['roomcast_fanout_duration_seconds', 'histogram'],
      ['roomcast_broker_up', 'gauge'],
      ['process_cpu_seconds_total', 'counter'],
      ['process_resident_memory_bytes', 'gauge'],
      ['nodejs_eventloop_lag_seconds', 'gauge'],
      ['nodejs_heap_size_used_bytes', 'gauge'],
    ];
    for (const [name, type] of expected) {
      assert.equal(families.get(name)?.type, type, `${name} is a ${type}`);
      assert.ok((families.get(name)?.help ?? '') !== '', `${name} has help text`);
    }
    assert.equal(valueOf(families, 'roomcast_broker_up', { engine: 'memory' }), 1);
    assert.equal(valueOf(families, 'roomcast_gateway_nodes'), 1);
    assert.equal(families.get('roomcast_pushes_total')?.help, 'Pushes accepted by this logic API, by kind (all, room, conn, user)');
  });

  it('moves its counters with real traffic: connections, rooms, pushes, deliveries, fan-outs, closes', async () => {
    const before = await scrape(server);
    const clients = await Promise.all([0, 1, 2].map(() => TestClient.connect(server.gatewayUrl)));
    for (const c of clients.slice(0, 2)) await post(server.logicUrl, '/room/join', { id: 'metrics', wsId: c.wsId });
    for (let i = 0; i < 2; i++) assert.equal((await post(server.logicUrl, '/push/all', { val: 'a', tag: 2 })).status, 200);
    assert.equal((await post(server.logicUrl, '/push/room', { val: 'r', tag: 2, id: 'metrics' })).status, 200);
    assert.equal((await post(server.logicUrl, '/push/conn', { val: 'c', tag: 2, wsId: clients[2].wsId })).status, 200);
    await Promise.all([clients[0].collect(isPush, 3), clients[1].collect(isPush, 3), clients[2].collect(isPush, 3)]);

    const during = await scrape(server);
    const delta = (name: string, labels: Record<string, string> = {}, sample = name): number =>
      valueOf(during, name, labels, sample) - valueOf(before, name, labels, sample);
    assert.equal(delta('roomcast_connections'), 3);
    assert.equal(delta('roomcast_rooms'), 1);
    assert.equal(delta('roomcast_pushes_total', { kind: 'all' }), 2);
    assert.equal(delta('roomcast_pushes_total', { kind: 'room' }), 1);
    assert.equal(delta('roomcast_pushes_total', { kind: 'conn' }), 1);
    assert.equal(delta('roomcast_deliveries_total'), 2 * 3 + 2 + 1);
    // one observation per publication that had members here: two to all, one to the room
    assert.equal(delta('roomcast_fanout_duration_seconds', {}, 'roomcast_fanout_duration_seconds_count'), 3);
    assert.equal(delta('roomcast_fanout_duration_seconds', { le: '+Inf' }, 'roomcast_fanout_duration_seconds_bucket'), 3);
    assert.ok(delta('roomcast_fanout_duration_seconds', {}, 'roomcast_fanout_duration_seconds_sum') > 0);

    await post(server.logicUrl, '/conn/kick', { wsId: clients[0].wsId });
    assert.equal(await clients[0].closeCode(20_000), 4003);
    for (const c of clients.slice(1)) await c.closeAndWait();
    const afterwards = await scrape(server);
    assert.equal(valueOf(afterwards, 'roomcast_closes_total', { cause: 'kicked' }) - valueOf(before, 'roomcast_closes_total', { cause: 'kicked' }), 1);
    assert.equal(valueOf(afterwards, 'roomcast_connections'), valueOf(before, 'roomcast_connections'));
  });

  it('counts heartbeat timeouts and slow-consumer closes', async () => {
    const closesOf = (families: Map<string, Family>, cause: string): number => valueOf(families, 'roomcast_closes_total', { cause });
    await withServer({ heartbeatTimeout: 300, sendBufferLimit: 1024 }, async (strict) => {
      const silent = await RawClient.connect(strict.gatewayUrl);
      await within(silent.ended, 20_000, 'the server to close the silent connection');
      assert.equal(silent.closeCode, 4002);
      const afterSilence = await scrape(strict);
      assert.equal(closesOf(afterSilence, 'heartbeat_timeout'), 1);
      assert.equal(closesOf(afterSilence, 'slow_consumer'), 0);
    });

    await withServer({ sendBufferLimit: 1024 }, async (small) => {
      await forceSlowConsumerClose(small, 'slow');
      const afterwards = await scrape(small);
      assert.equal(closesOf(afterwards, 'slow_consumer'), 1);
      assert.equal(closesOf(afterwards, 'heartbeat_timeout'), 0);
    });
  });
});

describe('roomcast_closes_total{cause="too_large"}', () => {
  it('counts the connections closed (1009) for a message over --max-payload, in /metrics and /stats', async () => {
    await withServer({ maxPayload: 1024 }, async (server) => {
      const client = await TestClient.connect(server.gatewayUrl);
      client.send({ type: 1, data: 'x'.repeat(2048) });
      assert.equal(await client.closeCode(20_000), 1009);
      const families = await scrape(server);
      assert.equal(valueOf(families, 'roomcast_closes_total', { cause: 'too_large' }), 1);
      assert.equal(valueOf(families, 'roomcast_closes_total', { cause: 'malformed' }), 0);
      assert.equal((await call(server.logicUrl, '/stats')).body.data?.tooLargeCloses, 1);
    });
  });
});

describe('GET /metrics of a logic API on Redis', { skip: skipWithoutRedis }, () => {
  it('reports the totals of every gateway node, and keeps them with broker_up 0 while Redis is down', async () => {
    const redis = await RedisServer.start();
    const cluster = await startCluster(redisEngine(redis.url), 2);
    const clients: TestClient[] = [];
    try {
      clients.push(...(await Promise.all(cluster.gatewayUrls.map((url) => TestClient.connect(url)))));
      assert.equal((await post(cluster.logicUrl, '/push/all', { val: 'v', tag: 2 })).status, 200);
      await Promise.all(clients.map((c) => c.next(isPush)));
      const up = await scrape(cluster);
      assert.equal(valueOf(up, 'roomcast_broker_up', { engine: 'redis' }), 1);
      assert.equal(valueOf(up, 'roomcast_gateway_nodes'), 2);
      assert.equal(valueOf(up, 'roomcast_connections'), 2);
      assert.equal(valueOf(up, 'roomcast_deliveries_total'), 2);
      assert.equal(valueOf(up, 'roomcast_pushes_total', { kind: 'all' }), 1);

      await redis.kill();
      const down = await until('roomcast_broker_up 0 once Redis is gone', async () => {
        const families = await scrape(cluster);
        return valueOf(families, 'roomcast_broker_up', { engine: 'redis' }) === 0 ? families : undefined;
      }, 5000);
      assert.equal(valueOf(down, 'roomcast_broker_up', { engine: 'redis' }), 0);
      assert.equal(valueOf(down, 'roomcast_connections'), 2, 'the last totals stay');
      assert.equal(valueOf(down, 'roomcast_deliveries_total'), 2, 'a counter never falls back to 0');
    } finally {
      for (const c of clients) await c.closeAndWait();
      await cluster.close();
      await redis.stop();
    }
  });
});

describe('GET /metrics of a logic API whose Redis stops answering', { skip: skipWithoutRedis }, () => {
  it('answers the scrape that could not read within the request deadline, with the last values and broker_up 0', async () => {
    const redis = await RedisServer.start();
    const cluster = await startCluster(redisEngine(redis.url), 1);
    const client = await TestClient.connect(cluster.gatewayUrls[0]);
    try {
      const up = await scrape(cluster);
      assert.equal(valueOf(up, 'roomcast_broker_up', { engine: 'redis' }), 1);
      assert.equal(valueOf(up, 'roomcast_connections'), 1);

      // the scrape's read waits for a Redis that never answers; the broker finds Redis silent at its own pace
      redis.freeze();
      const started = performance.now();
      const stale = await scrape(cluster);
      const ms = performance.now() - started;
      assert.ok(ms < 5000, `the scrape took ${Math.round(ms)} ms`);
      assert.equal(valueOf(stale, 'roomcast_connections'), 1, 'the last totals stay');
      assert.equal(valueOf(stale, 'roomcast_broker_up', { engine: 'redis' }), 0, `the values are the last ones read (the read failed after ${Math.round(ms)} ms)`);

      redis.thaw();
      await until('roomcast_broker_up 1 once Redis answers again', async () => {
        const families = await scrape(cluster);
        return valueOf(families, 'roomcast_broker_up', { engine: 'redis' }) === 1 ? true : undefined;
      }, 10_000);
    } finally {
      redis.thaw();
      await client.closeAndWait();
      await cluster.close();
      await redis.stop();
    }
  });
});

describe('roomcast_*_total counters of the gateway nodes never go down', () => {
  it('keeps the counts of a node that is missing from an answer or gone, and counts a restarted node from 0 on top', () => {
    const totals = new CounterTotals(NODE_COUNTER_KEYS);
    const node = (deliveries: number, kicks = 0): NodeStats => ({ ...emptyNodeStats(), connections: 3, deliveries, kicks });
    const after = (perNode: [string, NodeStats][]): number[] => {
      totals.update(new Map(perNode));
      return [totals.get('deliveries'), totals.get('kicks')];
    };
    assert.deepEqual(after([['a', node(10)], ['b', node(7, 1)]]), [17, 1]);
    assert.deepEqual(after([['a', node(12)]]), [19, 1], 'b did not answer: its counts stay');
    assert.deepEqual(after([['a', node(12)], ['b', node(9, 1)]]), [21, 1], 'b is back: only what it counted since is added');
    assert.deepEqual(after([['a', node(3)], ['b', node(9, 1)]]), [24, 1], 'a restarted under the same id: its 3 new ones are added');
    assert.deepEqual(after([['c', node(4, 2)]]), [28, 3], 'a and b are gone, c is new');
    assert.deepEqual(after([]), [28, 3]);
  });

  it('forgets a node unseen for an hour, keeping what it counted in the totals', () => {
    const totals = new CounterTotals(['deliveries'] as const);
    totals.update(new Map([['gone', { deliveries: 5 }], ['stays', { deliveries: 2 }]]), 0);
    totals.update(new Map([['stays', { deliveries: 3 }]]), FORGET_NODE_AFTER_MS);
    assert.equal(totals.nodes, 2, 'an hour is not past it');
    totals.update(new Map([['stays', { deliveries: 4 }]]), FORGET_NODE_AFTER_MS + 1);
    assert.equal(totals.nodes, 1);
    assert.equal(totals.get('deliveries'), 9);
    totals.update(new Map(), 3 * FORGET_NODE_AFTER_MS);
    assert.equal(totals.nodes, 0);
    assert.equal(totals.get('deliveries'), 9);
  });

  const engines: [string, () => Promise<{ engine: EngineFactory; stop(): Promise<void> }>, typeof skipWithoutRedis][] = [
    ['the memory engine', async () => ({ engine: memoryEngine, stop: async () => undefined }), false],
    [
      'Redis',
      async () => {
        const redis = await RedisServer.start();
        return { engine: redisEngine(redis.url), stop: () => redis.stop() };
      },
      skipWithoutRedis,
    ],
  ];
  for (const [name, start, skip] of engines) {
    it(`on ${name}: a gateway node that goes away, or a new one from 0 in its place, never lowers them`, { skip }, async () => {
      const { engine, stop } = await start();
      const cluster = await startCluster(engine, 2);
      const clients: TestClient[] = [];
      try {
        clients.push(...(await Promise.all([cluster.gatewayUrls[0], cluster.gatewayUrls[1], cluster.gatewayUrls[1]].map((url) => TestClient.connect(url)))));
        for (let i = 0; i < 2; i++) assert.equal((await post(cluster.logicUrl, '/push/all', { val: 'v', tag: 2 })).status, 200);
        await Promise.all(clients.map((c) => c.collect(isPush, 2)));
        await post(cluster.logicUrl, '/conn/kick', { wsId: clients[2].wsId });
        assert.equal(await clients[2].closeCode(20_000), 4003);
        const counted = (families: Map<string, Family>): number[] => [
          valueOf(families, 'roomcast_gateway_nodes'),
          valueOf(families, 'roomcast_deliveries_total'),
          valueOf(families, 'roomcast_closes_total', { cause: 'kicked' }),
        ];
        assert.deepEqual(counted(await scrape(cluster)), [2, 6, 1]);

        // the second node goes away with its counts (4 deliveries, 1 kick)
        await cluster.gateways[1].close();
        assert.equal(await clients[1].closeCode(20_000), 1001);
        assert.deepEqual(counted(await scrape(cluster)), [1, 6, 1], 'the counters keep what the gone node counted');

        // a new node in its place starts from 0
        clients.push(await TestClient.connect(await cluster.addGateway()));
        assert.equal((await post(cluster.logicUrl, '/push/all', { val: 'v', tag: 2 })).status, 200);
        await Promise.all([clients[0], clients[3]].map((c) => c.next(isPush)));
        assert.deepEqual(counted(await scrape(cluster)), [2, 8, 1], 'the new node adds to them');
      } finally {
        for (const c of clients) await c.closeAndWait();
        await cluster.close();
        await stop();
      }
    });
  }
});

describe('GET /metrics access', () => {
  it('needs the API key when one is set, unless --public-metrics', async () => {
    await withServer({ apiKey: 'k3y' }, async (keyed) => {
      const refused = await call(keyed.logicUrl, '/metrics');
      assert.equal(refused.status, 401);
      assert.match(refused.body.msg, /Authorization: Bearer/);
      await scrape(keyed, { authorization: 'Bearer k3y' });
    });
    await withServer({ apiKey: 'k3y', publicMetrics: true }, async (open) => {
      await scrape(open);
      assert.equal((await call(open.logicUrl, '/stats')).status, 401, '--public-metrics opens /metrics only');
    });
  });
});

describe('docs/grafana-dashboard.json', () => {
  it('queries only metrics that /metrics serves', async () => {
    const dashboard = readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8');
    const exprs = [...dashboard.matchAll(/"expr":\s*"((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string);
    assert.ok(exprs.length >= 8, `${exprs.length} queries`);
    await withServer({}, async (server) => {
      const families = await scrape(server);
      const served = new Set([...families.values()].flatMap((f) => f.samples.map((s) => s.name)).concat([...families.keys()]));
      for (const expr of exprs) {
        const names = [...expr.matchAll(/\b(roomcast_\w+|process_\w+|nodejs_\w+)/g)].map((m) => m[1]);
        assert.ok(names.length > 0, `no metric in ${expr}`);
        for (const name of names) assert.ok(served.has(name), `${name} (in ${expr}) is not served`);
      }
    });
  });
});

describe('docs/REFERENCE.md, "Metrics"', () => {
  it('lists exactly the roomcast_ metrics /metrics serves, with every cause and limit label they carry', async () => {
    const reference = readFileSync(new URL('../../docs/REFERENCE.md', import.meta.url), 'utf8');
    const table = reference.slice(reference.indexOf('| metric | type |')).split('\n\n')[0];
    const rows = new Map(table.split('\n').slice(2).flatMap((row) => [...row.split('|')[1].matchAll(/`(roomcast_\w+)/g)].map((m) => [m[1], row] as const)));
    await withServer({}, async (server) => {
      const families = await scrape(server);
      const served = [...families.keys()].filter((name) => name.startsWith('roomcast_')).sort();
      assert.deepEqual([...rows.keys()].sort(), served);
      for (const [name, label] of [['roomcast_closes_total', 'cause'], ['roomcast_refusals_total', 'limit'], ['roomcast_pushes_total', 'kind']] as const) {
        for (const { labels } of families.get(name)!.samples) assert.ok(rows.get(name)!.includes(`\`${labels[label]}\``), `${name}: ${label} "${labels[label]}" is not in its row`);
      }
    });
  });
});

const log = pino({ level: 'silent' });

/** One more logic API on the broker of a cluster's first node (its own connection on Redis, as another process would have). */
async function anotherLogic(cluster: TestCluster, config: ReturnType<typeof testConfig>): Promise<{ logic: LogicServer; url: string; close(): Promise<void> }> {
  const nodeBroker = cluster.gateways[0].node.broker;
  const broker: Broker =
    nodeBroker instanceof RedisBroker ? await RedisBroker.connect({ url: redisUrl!, prefix: nodeBroker.names.prefix }, log) : nodeBroker;
  const logic = createLogic(logicPart(config), broker, log);
  const url = logicUrl(logicPart(config), (await logic.listen()).port);
  return {
    logic,
    url,
    async close() {
      await logic.close();
      if (broker !== nodeBroker) await broker.close();
    },
  };
}

let redisUrl: string | undefined;

describe('roomcast_refusals_total', () => {
  let redis: RedisServer | undefined;
  before(async () => {
    if (skipWithoutRedis === false) {
      redis = await RedisServer.start();
      redisUrl = redis.url;
    }
  });
  after(() => redis?.stop());

  const engines: [string, () => EngineFactory, typeof skipWithoutRedis][] = [
    ['the memory engine', () => memoryEngine, false],
    ['Redis', () => redisEngine(redisUrl!), skipWithoutRedis],
  ];
  for (const [name, engine, skip] of engines) {
    it(`on ${name}: counts the joins refused to an away session once, as /stats does, whichever logic API refused them; and the pushes a logic API refused for their size`, { skip }, async () => {
      const config = testConfig({ maxRoomsPerConnection: 1, maxValSize: 16 });
      const cluster = await startCluster(engine(), 1, { maxRoomsPerConnection: 1, maxValSize: 16 });
      const second = await anotherLogic(cluster, config);
      try {
        const { client } = await awayMember(nodeOf(cluster, 0), ['r1']);
        assert.equal((await post(cluster.logicUrl, '/room/join', { id: 'r2', wsId: client.wsId })).status, 409);
        assert.equal((await post(second.url, '/room/join', { id: 'r3', wsId: client.wsId })).status, 409);
        assert.equal((await post(cluster.logicUrl, '/push/all', { val: 'x'.repeat(17), tag: 2 })).status, 413);

        for (const [logic, valSize] of [
          [cluster.logicUrl, 1],
          [second.url, 0],
        ] as const) {
          const families = await scrape({ logicUrl: logic });
          assert.equal(valueOf(families, 'roomcast_refusals_total', { limit: 'max_rooms_per_connection' }), 2, `${logic}: /metrics`);
          assert.equal(valueOf(families, 'roomcast_refusals_total', { limit: 'max_val_size' }), valSize, `${logic}: /metrics`);
          const limits = (await call(logic, '/stats')).body.data?.limits as Record<string, number>;
          assert.equal(limits.maxRoomsPerConnection, 2, `${logic}: /stats`);
          assert.equal(limits.maxValSize, valSize, `${logic}: /stats`);
        }
      } finally {
        await second.close();
        await cluster.close();
      }
    });
  }
});

describe('process metrics', () => {
  it('count open file descriptors, one more at least per connection, and list no handles or resources at each scrape', async () => {
    await withServer({}, async (server) => {
      const before = await scrape(server);
      for (const name of ['nodejs_active_handles', 'nodejs_active_handles_total', 'nodejs_active_resources', 'nodejs_active_resources_total']) {
        assert.equal(before.get(name), undefined, `${name} is not served (its scrape cost grew with connections)`);
      }
      assert.ok(before.has('nodejs_active_requests_total'), 'the other default metrics stay');
      if (process.platform !== 'linux') return; // prom-client serves process_open_fds on Linux only
      const clients = await Promise.all(Array.from({ length: 20 }, () => TestClient.connect(server.gatewayUrl)));
      try {
        const opened = valueOf(await scrape(server), 'process_open_fds') - valueOf(before, 'process_open_fds');
        // each connection is two descriptors in this process (the client's and the server's)
        assert.ok(opened >= 20 && opened <= 60, `${opened} more descriptors with 20 more connections`);
      } finally {
        for (const c of clients) c.ws.close();
      }
    });
  });

  it('are those of the one process, collected once however many logic APIs it runs', async () => {
    const collections = (families: Map<string, Family>): number =>
      (families.get('nodejs_gc_duration_seconds')?.samples ?? []).filter((s) => s.name === 'nodejs_gc_duration_seconds_count').reduce((sum, s) => sum + s.value, 0);
    await withServer({}, async (first) => {
      for (let i = 0; i < 3; i++) {
        collectGarbage();
        await sleep(20); // the GC observer hears of them asynchronously, and counts one per batch
      }
      await withServer({}, async (second) => {
        const seenByFirst = collections(await scrape(first));
        assert.ok(seenByFirst >= 3, `${seenByFirst} collections`);
        assert.ok(collections(await scrape(second)) >= seenByFirst, 'the second logic API counts the collections from before it started too');
      });
    });
  });
});
