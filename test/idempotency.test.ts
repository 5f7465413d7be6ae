/**
 * Idempotency keys of pushes, over real HTTP and WebSockets on each engine: a
 * push repeated with its key is not delivered again and gets the first answer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { MemoryBroker } from '../src/broker/memory.js';
import type { RedisBroker } from '../src/broker/redis/broker.js';
import { pushOnceOf } from '../src/logic/push-once.js';
import { TestClient, isPush } from './helpers/client.js';
import { relayedClusterPerSuite, startCluster, type TestCluster } from './helpers/cluster.js';
import { startLostAnswersCluster, type LostAnswersCluster } from './helpers/lost-redis-answers.js';
import { onEachEngine } from './helpers/engine-suite.js';
import { parsePrometheus, valueOf } from './helpers/prometheus.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import type { Hold } from './helpers/redis-relay.js';
import { call, post, postJson, type ApiAnswer } from './helpers/http.js';
import { settled } from './helpers/pushes.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';
import { until } from './helpers/until.js';

const WINDOW_MS = 1500;
let keys = 0;
/** A key no other test uses. */
const newKey = (): string => `key-${++keys}-${Math.random().toString(36).slice(2)}`;

/** The pushes `client` got with this val, once every push answered before has reached it. */
async function received(logic: string, client: TestClient, val: string): Promise<number> {
  await settled(logic, client);
  return client.frames.filter((f) => isPush(f) && f.data === val).length;
}

/** The first answer and its repeat: the same status and data, the repeat saying so. */
function assertRepeated(first: ApiAnswer, repeat: ApiAnswer): void {
  assert.equal(first.status, 200, first.text);
  assert.equal(repeat.status, first.status, repeat.text);
  assert.equal(first.body.data?.repeated, false);
  assert.deepEqual(repeat.body.data, { ...first.body.data, repeated: true });
}

onEachEngine(
  'push idempotency keys',
  2,
  (suite) => {
    let a: TestClient;
    let b: TestClient;
    let ann: TestClient;
    let logic: string;
    before(async () => {
      logic = suite.cluster.logicUrl;
      a = await TestClient.connect(suite.cluster.gatewayUrls[0]);
      b = await TestClient.connect(suite.cluster.gatewayUrls[1]);
      ann = await TestClient.connect(`${suite.cluster.gatewayUrls[1]}?token=${await signToken({ sub: 'ann' })}`);
      for (const c of [a, b]) assert.equal((await post(logic, '/room/join', { id: 'r', wsId: c.wsId })).status, 200);
      await until('the push to ann reaches her node', async () => ((await post(logic, '/push/user', { uid: 'ann', val: 'warm-up', tag: 2 })).body.data?.nodes === 1 ? true : undefined));
    });
    after(async () => {
      await Promise.all([a, b, ann].map((c) => c?.closeAndWait()));
    });

    it('a room push repeated with its key (form, JSON or header) is delivered once, and every repeat gets the first answer', async () => {
      const key = newKey();
      const first = await post(logic, '/push/room', { id: 'r', val: 'room-once', tag: 2, idempotencyKey: key });
      const asJson = await postJson(logic, '/push/room', { id: 'r', val: 'room-once', tag: 2, idempotencyKey: key });
      const asHeader = await post(logic, '/push/room', { id: 'r', val: 'room-once', tag: 2 }, { 'Idempotency-Key': key });
      for (const repeat of [asJson, asHeader]) assertRepeated(first, repeat);
      for (const c of [a, b]) assert.equal(await received(logic, c, 'room-once'), 1);
      assert.equal((await post(logic, '/push/room', { id: 'r', val: 'room-after', tag: 2 })).body.data?.seq, (first.body.data?.seq as number) + 1);
    });

    it('a push/all repeated with its key is delivered once', async () => {
      const key = newKey();
      const first = await post(logic, '/push/all', { val: 'all-once', tag: 2 }, { 'Idempotency-Key': key });
      assertRepeated(first, await post(logic, '/push/all', { val: 'all-once', tag: 2, idempotencyKey: key }, { 'Idempotency-Key': key }));
      for (const c of [a, b, ann]) assert.equal(await received(logic, c, 'all-once'), 1);
    });

    it('a push to a connection or a user repeated with its key is delivered once', async () => {
      const connKey = newKey();
      const toConn = { wsId: a.wsId, val: 'conn-once', tag: 2, idempotencyKey: connKey };
      const first = await post(logic, '/push/conn', toConn);
      assert.deepEqual(first.body.data, { wsId: a.wsId, delivered: true, repeated: false });
      assertRepeated(first, await post(logic, '/push/conn', toConn));
      assert.equal(await received(logic, a, 'conn-once'), 1);

      const toUser = { uid: 'ann', val: 'user-once', tag: 2, idempotencyKey: newKey() };
      const firstToUser = await post(logic, '/push/user', toUser);
      assert.equal(firstToUser.body.data?.nodes, 1);
      assertRepeated(firstToUser, await postJson(logic, '/push/user', toUser));
      assert.equal(await received(logic, ann, 'user-once'), 1);
    });

    it('different keys, or one key on different targets, are different pushes; a push without a key says nothing of repeats', async () => {
      const key = newKey();
      const pushes = [
        await post(logic, '/push/room', { id: 'r', val: 'two-keys', tag: 2, idempotencyKey: key }),
        await post(logic, '/push/room', { id: 'r', val: 'two-keys', tag: 2, idempotencyKey: newKey() }),
        await post(logic, '/push/all', { val: 'two-keys', tag: 2, idempotencyKey: key }),
        await post(logic, '/push/conn', { wsId: a.wsId, val: 'two-keys', tag: 2, idempotencyKey: key }),
        await post(logic, '/push/conn', { wsId: b.wsId, val: 'two-keys', tag: 2, idempotencyKey: key }),
      ];
      for (const push of pushes) assert.equal(push.body.data?.repeated, false, push.text);
      assert.equal(await received(logic, a, 'two-keys'), 4);
      assert.equal(await received(logic, b, 'two-keys'), 4);
      const keyless = await post(logic, '/push/room', { id: 'r', val: 'keyless', tag: 2 });
      assert.equal('repeated' in (keyless.body.data ?? {}), false);
    });

    it('two logic APIs given the same key at once deliver once, and answer alike', async () => {
      const other = await suite.cluster.addLogic();
      for (let round = 0; round < 10; round++) {
        const key = newKey();
        const val = `race-${round}`;
        const answers = await Promise.all([logic, other, logic, other].map((url) => post(url, '/push/room', { id: 'r', val, tag: 2, idempotencyKey: key })));
        assert.equal(answers.filter((x) => x.body.data?.repeated === false).length, 1, JSON.stringify(answers.map((x) => x.body)));
        for (const answer of answers) assert.deepEqual({ ...answer.body.data, repeated: undefined }, { ...answers[0].body.data, repeated: undefined });
        const toConn = await Promise.all([logic, other].map((url) => post(url, '/push/conn', { wsId: b.wsId, val, tag: 3, idempotencyKey: key })));
        // a repeat that finds the first under way is answered 409; otherwise it gets the first answer
        const made = toConn.filter((x) => x.body.data?.repeated === false);
        assert.equal(made.length, 1, JSON.stringify(toConn.map((x) => x.body)));
        for (const answer of toConn) assert.ok(answer.body.data?.repeated === true || answer.status === 409 || answer === made[0], answer.text);
      }
      for (let round = 0; round < 10; round++) {
        assert.equal(await received(logic, a, `race-${round}`), 1);
        await settled(logic, b);
        assert.equal(b.frames.filter((f) => isPush(f) && f.data === `race-${round}` && f.type === 2).length, 1);
        assert.equal(b.frames.filter((f) => isPush(f) && f.data === `race-${round}` && f.type === 3).length, 1);
      }
    });

    it('a push repeated after the window is delivered again', async () => {
      const key = newKey();
      const first = await post(logic, '/push/room', { id: 'r', val: 'window', tag: 2, idempotencyKey: key });
      await sleep(WINDOW_MS + 200);
      const again = await post(logic, '/push/room', { id: 'r', val: 'window', tag: 2, idempotencyKey: key });
      assert.equal(again.body.data?.repeated, false);
      assert.equal(again.body.data?.seq, (first.body.data?.seq as number) + 1);
      assert.equal(await received(logic, a, 'window'), 2);
    });

    it('a push to a connection that finds its key claimed and unsettled is answered 409 with Retry-After, saying it is under way, and not delivered', async () => {
      const key = newKey();
      const once = pushOnceOf(WINDOW_MS, 'conn', a.wsId, key, undefined)!;
      assert.equal((await suite.cluster.logic.broker.claimPush(once, 'test')).status, 'claimed');
      const answer = await post(logic, '/push/conn', { wsId: a.wsId, val: 'under-way', tag: 2, idempotencyKey: key });
      assert.equal(answer.status, 409, answer.text);
      assert.equal(answer.headers.get('retry-after'), '1');
      assert.match(answer.body.msg, /idempotency key is still under way: ask again after Retry-After/);
      assert.deepEqual(Object.keys(answer.body), ['code', 'msg']);
      assert.equal(await received(logic, a, 'under-way'), 0);
    });

    it('a push to a connection whose key was settled with its outcome unknown is answered 409 without Retry-After, saying so', async () => {
      const key = newKey();
      const once = pushOnceOf(WINDOW_MS, 'conn', a.wsId, key, undefined)!;
      assert.equal((await suite.cluster.logic.broker.claimPush(once, 'test')).status, 'claimed');
      await suite.cluster.logic.broker.settlePush(once, 'test', { status: 'unknown' });
      const answer = await post(logic, '/push/conn', { wsId: a.wsId, val: 'unknown', tag: 2, idempotencyKey: key });
      assert.equal(answer.status, 409, answer.text);
      assert.equal(answer.headers.get('retry-after'), null);
      assert.match(answer.body.msg, /failed with its outcome unknown/);
      assert.equal(await received(logic, a, 'unknown'), 0);
    });

    it("a push's settle after its key's window ended leaves the claim made since alone: no third push while the second is under way", async () => {
      const once = pushOnceOf(300, 'conn', a.wsId, newKey(), undefined)!;
      const broker = suite.cluster.logic.broker;
      assert.equal((await broker.claimPush(once, 'first')).status, 'claimed');
      await until("the first claim's window ends and a second claims the key", async () => ((await broker.claimPush(once, 'second')).status === 'claimed' ? true : undefined));
      // the first push ends now, surely not made, then made, then with its outcome unknown
      await broker.settlePush(once, 'first', { status: 'not-made' });
      assert.equal((await broker.claimPush(once, 'third')).status, 'under-way');
      await broker.settlePush(once, 'first', { status: 'made', answer: '{"first":true}' });
      assert.equal((await broker.claimPush(once, 'third')).status, 'under-way');
      await broker.settlePush(once, 'first', { status: 'unknown' });
      assert.equal((await broker.claimPush(once, 'third')).status, 'under-way');
      await broker.settlePush(once, 'second', { status: 'made', answer: '{"second":true}' });
      assert.deepEqual(await broker.claimPush(once, 'third'), { status: 'done', answer: '{"second":true}' });
    });

    it('a push to a connection answered 404 frees its key: a retry is tried again', async () => {
      const key = newKey();
      for (let i = 0; i < 2; i++) {
        const answer = await post(logic, '/push/conn', { wsId: 'nobody', val: 'v', tag: 2, idempotencyKey: key });
        assert.equal(answer.status, 404, answer.text);
      }
    });

    it('bad keys, and a header and a field that differ, are answered 400 naming them', async () => {
      const bad = ['', 'x'.repeat(129), 'café', 'tab\there', 'new\nline'];
      for (const key of bad) {
        const answer = await postJson(logic, '/push/room', { id: 'r', val: 'bad', tag: 2, idempotencyKey: key });
        assert.equal(answer.status, 400, `${JSON.stringify(key)}: ${answer.text}`);
        assert.equal(answer.body.msg, 'idempotencyKey must be a string of 1-128 printable ASCII characters');
      }
      assert.equal((await postJson(logic, '/push/user', { uid: 'ann', val: 'bad', tag: 2, idempotencyKey: 7 })).body.msg, 'idempotencyKey must be a string of 1-128 printable ASCII characters');
      const longHeader = await post(logic, '/push/conn', { wsId: a.wsId, val: 'bad', tag: 2 }, { 'Idempotency-Key': 'y'.repeat(129) });
      assert.equal(longHeader.status, 400);
      assert.equal(longHeader.body.msg, 'the Idempotency-Key header must be a string of 1-128 printable ASCII characters');
      const differ = await post(logic, '/push/all', { val: 'bad', tag: 2, idempotencyKey: 'one' }, { 'Idempotency-Key': 'two' });
      assert.equal(differ.status, 400);
      assert.equal(differ.body.msg, 'idempotencyKey and the Idempotency-Key header differ: give the key once, or the same in both');
      for (const c of [a, b, ann]) assert.equal(await received(logic, c, 'bad'), 0);
      assert.equal((await post(logic, '/push/room', { id: 'r', val: 'edge', tag: 2, idempotencyKey: ' ~'.repeat(64) })).status, 200);
    });

    it('counts repeats in /stats and /metrics', async () => {
      const before = (await call(logic, '/stats')).body.data?.repeatedPushes as Record<string, number>;
      const key = newKey();
      for (let i = 0; i < 3; i++) await post(logic, '/push/room', { id: 'r', val: 'counted', tag: 2, idempotencyKey: key });
      const stats = (await call(logic, '/stats')).body.data!;
      assert.deepEqual(stats.repeatedPushes, { ...before, room: before.room + 2 });
      const metrics = await fetch(`${logic}/metrics`).then((r) => r.text());
      assert.match(metrics, new RegExp(`^roomcast_push_repeats_total\\{kind="room"\\} ${before.room + 2}$`, 'm'));
    });

    it('keeps a key no longer than its window', async () => {
      const key = newKey();
      await post(logic, '/push/room', { id: 'r', val: 'kept', tag: 2, idempotencyKey: key });
      const once = pushOnceOf(WINDOW_MS, 'room', 'r', key, undefined)!;
      if (suite.redis === undefined) {
        const broker = suite.cluster.logic.broker as MemoryBroker;
        assert.ok(broker.pushKeysHeld.keys > 0);
        // swept every second once their window ended
        await until('the memory engine forgets every key', async () => (broker.pushKeysHeld.keys === 0 && broker.pushKeysHeld.bytes === 0 ? true : undefined), 5000);
        return;
      }
      const redis = createClient({ url: suite.redis.url });
      await redis.connect();
      try {
        const [name] = await redis.keys(`*push-key:${once.key}`);
        const ttl = await redis.pTTL(name);
        assert.ok(ttl > 0 && ttl <= WINDOW_MS, `TTL ${ttl}`);
        assert.match((await redis.get(name)) ?? '', /^\d+\|[\w-]+\|[\w-]+$/);
      } finally {
        await redis.close();
      }
    });
  },
  { idempotencyWindow: WINDOW_MS, auth: 'optional', jwtSecret: JWT_SECRET },
);

describe('push idempotency keys: --idempotency-window 0', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster(async () => {
      const broker = new MemoryBroker();
      return { brokerFor: async () => broker, close: () => broker.close() };
    }, 1, { idempotencyWindow: 0 });
  });
  after(() => cluster.close());

  it('refuses a key with 400 naming the flag; pushes without one are made', async () => {
    const answer = await post(cluster.logicUrl, '/push/all', { val: 'v', tag: 2, idempotencyKey: 'k' });
    assert.equal(answer.status, 400);
    assert.match(answer.body.msg, /--idempotency-window 0/);
    assert.equal((await post(cluster.logicUrl, '/push/all', { val: 'v', tag: 2 }, { 'Idempotency-Key': 'k' })).status, 400);
    assert.equal((await post(cluster.logicUrl, '/push/all', { val: 'v', tag: 2 })).status, 200);
  });

  it('the OpenAPI document gives every push the idempotencyKey field, the Idempotency-Key header and the repeated answer', async () => {
    type Operation = {
      parameters: { name: string; in: string }[];
      requestBody: { content: Record<string, { schema: { properties: Record<string, unknown> } }> };
      responses: Record<string, { content?: Record<string, { schema: { properties: { data: { properties: Record<string, unknown> } } } }> }>;
    };
    const doc = (await call(cluster.logicUrl, '/openapi.json')).body as unknown as { paths: Record<string, { post: Operation }> };
    for (const path of ['/push/all', '/push/room', '/push/conn', '/push/user']) {
      const op = doc.paths[path].post;
      assert.deepEqual(op.parameters.filter((p) => p.in === 'header').map((p) => p.name), ['Idempotency-Key'], path);
      for (const type of ['application/json', 'application/x-www-form-urlencoded']) assert.ok('idempotencyKey' in op.requestBody.content[type].schema.properties, path);
      assert.ok('repeated' in op.responses['200'].content!['application/json'].schema.properties.data.properties, path);
    }
  });
});

describe('push idempotency keys: the memory engine bounds them', () => {
  let cluster: TestCluster;
  let broker: MemoryBroker;
  const maxBytes = 4000;
  before(async () => {
    broker = new MemoryBroker({ pushKeysMaxBytes: maxBytes });
    cluster = await startCluster(async () => ({ brokerFor: async () => broker, close: () => broker.close() }), 1);
  });
  after(() => cluster.close());

  it('drops the oldest keys past the bound, counts them in /stats and /metrics, and a push repeated after its key went is made again', async () => {
    const pushKeyed = (i: number): Promise<ApiAnswer> => post(cluster.logicUrl, '/push/all', { val: `v${i}`, tag: 2, idempotencyKey: `bounded-${i}` });
    for (let i = 0; i < 100; i++) assert.equal((await pushKeyed(i)).body.data?.repeated, false);
    assert.ok(broker.pushKeysHeld.bytes <= maxBytes, `${broker.pushKeysHeld.bytes} bytes`);
    const evicted = (await call(cluster.logicUrl, '/stats')).body.data?.limits as Record<string, number>;
    assert.equal(evicted.idempotencyKeys, 100 - broker.pushKeysHeld.keys);
    assert.ok(evicted.idempotencyKeys > 50);
    const metrics = parsePrometheus(await (await fetch(`${cluster.logicUrl}/metrics`)).text());
    assert.equal(valueOf(metrics, 'roomcast_idempotency_keys_evicted_total'), evicted.idempotencyKeys);
    assert.equal((await pushKeyed(99)).body.data?.repeated, true);
    assert.equal((await pushKeyed(0)).body.data?.repeated, false);
  });
});

describe('push idempotency keys: a push whose answer from Redis was lost (503), retried with its key', { skip: skipWithoutRedis }, () => {
  let redis: RedisServer;
  let lossy: LostAnswersCluster;
  let cluster: TestCluster;
  let client: TestClient;
  const loseAnswers = (): { answer(): void } => lossy.loseAnswers();
  before(async () => {
    redis = await RedisServer.start();
    lossy = await startLostAnswersCluster(redis, `lost${Date.now()}:`, { idempotencyWindow: 60_000 });
    cluster = lossy.cluster;
    client = await TestClient.connect(cluster.gatewayUrls[0]);
    assert.equal((await post(cluster.logicUrl, '/room/join', { id: 'lost', wsId: client.wsId })).status, 200);
  });
  after(async () => {
    await client?.closeAndWait();
    await lossy?.close();
    await redis?.stop();
  });

  const ready = (): Promise<true> => until('the logic API is ready again', async () => ((await call(cluster.logicUrl, '/readyz')).status === 200 ? true : undefined));

  it('a room push Redis ran is answered 503; its retry is not delivered again and gets the seq the client got', async () => {
    const lost = loseAnswers();
    const push = { id: 'lost', val: 'ran-once', tag: 2, idempotencyKey: 'lost-room' };
    const first = await post(cluster.logicUrl, '/push/room', push);
    assert.equal(first.status, 503, first.text);
    const delivered = await client.next((f) => isPush(f) && f.data === 'ran-once');
    lost.answer();
    await ready();
    const retry = await post(cluster.logicUrl, '/push/room', push);
    assert.equal(retry.status, 200, retry.text);
    assert.deepEqual({ seq: retry.body.data?.seq, repeated: retry.body.data?.repeated }, { seq: delivered.seq, repeated: true });
    assert.equal(await received(cluster.logicUrl, client, 'ran-once'), 0, 'delivered a second time');
  });

  it('a push to a connection whose claim or push was answered 503 is answered 409 on every retry, and delivered at most once', async () => {
    const lost = loseAnswers();
    const push = { wsId: client.wsId, val: 'at-most-once', tag: 2, idempotencyKey: 'lost-conn' };
    assert.equal((await post(cluster.logicUrl, '/push/conn', push)).status, 503);
    lost.answer();
    await ready();
    for (let i = 0; i < 2; i++) {
      const retry = await post(cluster.logicUrl, '/push/conn', push);
      assert.equal(retry.status, 409, retry.text);
    }
    assert.ok((await received(cluster.logicUrl, client, 'at-most-once')) <= 1);
  });
});

describe('push idempotency keys: a push to a connection whose node answers late (Redis)', { skip: skipWithoutRedis }, () => {
  const env = relayedClusterPerSuite(1, { requestTimeoutMs: 1500 });
  let client: TestClient;
  before(async () => {
    client = await TestClient.connect(env.cluster.gatewayUrls[0]);
  });
  after(async () => {
    await client?.closeAndWait();
  });

  /** Holds the gateway node's answer to the next push to a connection (its PUBLISH to the logic's reply channel): the push is made, its answer late. */
  function holdTheAnswer(): Hold {
    const gateway = env.cluster.gateways[0].node.broker as RedisBroker;
    const replyChannel = gateway.names.replyChannel((env.cluster.logic.broker as RedisBroker).processId);
    return env.relay.hold((name, text) => name === `roomcast:commands:${gateway.processId}` && text.includes(replyChannel) && text.includes('delivered'));
  }

  it('a repeat while the first is under way is 409 with Retry-After, saying so; once the first is answered, a repeat gets its answer', async () => {
    const push = { wsId: client.wsId, val: 'answered late', tag: 2, idempotencyKey: newKey() };
    const hold = holdTheAnswer();
    try {
      const first = post(env.cluster.logicUrl, '/push/conn', push);
      await hold.held;
      const repeat = await post(env.cluster.logicUrl, '/push/conn', push);
      assert.equal(repeat.status, 409, repeat.text);
      assert.ok(Number(repeat.headers.get('retry-after')) >= 1, `Retry-After ${repeat.headers.get('retry-after')}`);
      assert.match(repeat.body.msg, /still under way/);
      hold.release();
      const made = await first;
      assert.equal(made.status, 200, made.text);
      assertRepeated(made, await post(env.cluster.logicUrl, '/push/conn', push));
      assert.equal(await received(env.cluster.logicUrl, client, 'answered late'), 1);
    } finally {
      hold.release();
    }
  });

  it('a repeat after the first was answered 503 (its node silent past the request timeout, the push delivered) is 409 without Retry-After, saying the outcome is unknown', async () => {
    const push = { wsId: client.wsId, val: 'answered too late', tag: 2, idempotencyKey: newKey() };
    const hold = holdTheAnswer();
    try {
      const first = await post(env.cluster.logicUrl, '/push/conn', push);
      assert.equal(first.status, 503, first.text);
      const repeat = await post(env.cluster.logicUrl, '/push/conn', push);
      assert.equal(repeat.status, 409, repeat.text);
      assert.equal(repeat.headers.get('retry-after'), null);
      assert.match(repeat.body.msg, /failed with its outcome unknown/);
      hold.release();
      assert.equal(await received(env.cluster.logicUrl, client, 'answered too late'), 1);
    } finally {
      hold.release();
    }
  });
});

