/**
 * roomcast/api, the server-side client of the logic API, against a real server
 * and real WebSocket clients: every method round-trips, errors carry the server's
 * code and msg, and retries (after a timeout, on 503) never deliver a push twice.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RoomcastApi, RoomcastApiError } from '../api/index.js';
import { backoffDelay } from '../api/retry.js';
import type { RedisBroker } from '../src/broker/redis/broker.js';
import { TestClient, isPush, type Frame } from './helpers/client.js';
import { relayedClusterPerSuite } from './helpers/cluster.js';
import { startHeldAnswerRelay } from './helpers/held-answer-relay.js';
import { startLostAnswersCluster, type LostAnswersCluster } from './helpers/lost-redis-answers.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import type { Hold } from './helpers/redis-relay.js';
import { serverPerSuite, startServer, type TestServer } from './helpers/server.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';
import { until } from './helpers/until.js';

const API_KEY = 'the-api-key';

/** Rejects with the RoomcastApiError `call` throws (and fails when it resolves or throws something else). */
async function apiError(call: Promise<unknown>): Promise<RoomcastApiError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof RoomcastApiError, `threw ${String(error)}`);
    return error;
  }
  assert.fail('the call succeeded');
}

/** A fetch that records the body of every request it makes, then makes it (with the real global fetch unless told). */
function recordingFetch(inner: typeof fetch = fetch): { fetch: typeof fetch; bodies: string[] } {
  const bodies: string[] = [];
  return { bodies, fetch: (input, init) => (bodies.push(String(init?.body ?? '')), inner(input, init)) };
}

const keysOf = (bodies: string[]): string[] => bodies.map((body) => (JSON.parse(body) as { idempotencyKey: string }).idempotencyKey);

const pushesWith = (client: TestClient, data: string): Frame[] => client.frames.filter((f) => isPush(f) && f.data === data);

describe('roomcast/api backoff', () => {
  it('waits half its ceiling plus up to half again, the ceiling doubling to maxMs; backoffMs 0 waits 0 however many retries (0 * 2^2000 is NaN)', () => {
    const waits = (baseMs: number, retries: number[], random: number): number[] => retries.map((n) => backoffDelay(n, { baseMs, maxMs: 2000 }, () => random));
    assert.deepEqual(waits(100, [1, 2, 3, 5, 6, 2000], 0), [50, 100, 200, 800, 1000, 1000]);
    assert.deepEqual(waits(100, [1, 6], 0.5), [75, 1500]);
    assert.deepEqual(waits(0, [1, 1025, 2000], 0.5), [0, 0, 0]);
  });
});

describe('roomcast/api against a running server', () => {
  const server = serverPerSuite({ apiKey: API_KEY, auth: 'optional', jwtSecret: JWT_SECRET });
  const api = (): RoomcastApi => new RoomcastApi(server.logicUrl, { apiKey: API_KEY, backoffMs: 10 });

  it('each method round-trips: pushes reach the clients, join and leave send their frames, reads describe them, kick closes with 4003', async () => {
    const client = await TestClient.connect(server.gatewayUrl);
    const ann = await TestClient.connect(`${server.gatewayUrl}?token=${await signToken({ sub: 'ann', expiresIn: 60 })}`);
    const roomcast = api();

    assert.deepEqual(await roomcast.join(client.wsId, 'rt-lobby'), { room: 'rt-lobby', wsId: client.wsId, changed: true });
    await client.next((f) => f.op === 'joined' && f.room === 'rt-lobby');

    const toRoom = await roomcast.pushRoom('rt-lobby', 'to the room', { tag: 3 });
    assert.equal(toRoom.room, 'rt-lobby');
    assert.equal(toRoom.seq, 1);
    assert.equal(toRoom.repeated, false, 'the push carried a key the client made');
    assert.deepEqual(await client.next((f) => f.data === 'to the room'), { type: 3, data: 'to the room', room: 'rt-lobby', seq: 1 });

    const toAll = await roomcast.pushAll('to all', { tag: 4 });
    assert.equal(typeof toAll.seq, 'number');
    assert.equal((await client.next((f) => f.data === 'to all')).type, 4);
    assert.equal((await ann.next((f) => f.data === 'to all')).type, 4);

    assert.deepEqual(await roomcast.pushConn(client.wsId, 'to one', { tag: 5 }), { wsId: client.wsId, delivered: true, repeated: false });
    assert.equal((await client.next((f) => f.data === 'to one')).type, 5);

    const toUser = await roomcast.pushUser('ann', 'to ann', { tag: 6 });
    assert.deepEqual([toUser.uid, toUser.nodes], ['ann', 1]);
    assert.equal((await ann.next((f) => f.data === 'to ann')).type, 6);

    assert.deepEqual(await roomcast.room('rt-lobby'), { room: 'rt-lobby', members: 1, offset: 0, limit: 100, wsIds: [client.wsId] });
    assert.deepEqual(await roomcast.rooms({ prefix: 'rt-', limit: 10 }), { total: 1, offset: 0, limit: 10, rooms: [{ room: 'rt-lobby', members: 1 }] });
    const conn = await roomcast.conn(client.wsId);
    assert.equal(conn.state, 'connected');
    assert.deepEqual(conn.rooms, ['rt-lobby']);
    const user = await roomcast.user('ann');
    assert.deepEqual([user.total, user.connections.map((c) => c.wsId)], [1, [ann.wsId]]);
    const history = await roomcast.history('rt-lobby', { since: 0, limit: 10 });
    assert.deepEqual(
      history.entries.map(({ seq, tag, val }) => ({ seq, tag, val })),
      [{ seq: 1, tag: 3, val: 'to the room' }],
    );
    const stats = await roomcast.stats();
    assert.ok(stats.connections >= 2 && stats.pushes.room >= 1, JSON.stringify(stats));
    assert.deepEqual(await roomcast.ready(), { status: 'ready' });

    assert.deepEqual(await roomcast.leave(client.wsId, 'rt-lobby'), { room: 'rt-lobby', wsId: client.wsId, changed: true });
    await client.next((f) => f.op === 'left' && f.room === 'rt-lobby');

    assert.deepEqual(await roomcast.kick(client.wsId), { wsId: client.wsId, kicked: true });
    assert.equal((await client.closedWithin()).code, 4003);
    await ann.closeAndWait();
  });

  it('a push given an idempotency key twice is delivered once; the second answer is the first one, repeated', async () => {
    const client = await TestClient.connect(server.gatewayUrl);
    const roomcast = api();
    const first = await roomcast.pushAll('keyed once', { tag: 3, idempotencyKey: 'order-17' });
    const second = await roomcast.pushAll('keyed once', { tag: 3, idempotencyKey: 'order-17' });
    assert.deepEqual(second, { ...first, repeated: true });
    assert.equal(first.repeated, false);
    await client.next((f) => f.data === 'keyed once');
    await roomcast.pushConn(client.wsId, 'a later push', { tag: 3 });
    await client.next((f) => f.data === 'a later push');
    assert.deepEqual(pushesWith(client, 'keyed once'), []);
    await client.closeAndWait();
  });

  it("errors carry the server's status, code and msg, and a 4xx is never retried", async () => {
    const recorder = recordingFetch();
    const roomcast = new RoomcastApi(server.logicUrl, { apiKey: API_KEY, fetch: recorder.fetch });

    const badRoom = await apiError(roomcast.pushRoom('no spaces allowed', 'x', { tag: 3 }));
    assert.deepEqual([badRoom.status, badRoom.code, badRoom.attempts, badRoom.outcomeUnknown], [400, 400, 1, false]);
    assert.match(badRoom.msg, /^id /);
    assert.match(badRoom.message, new RegExp(`^POST ${server.logicUrl}/push/room: 400 id `));

    const badTag = await apiError(roomcast.pushAll('x', { tag: 1 }));
    assert.equal(badTag.status, 400);
    assert.match(badTag.msg, /^tag must be an integer from 2/);

    const unknown = await apiError(roomcast.conn('nobody'));
    assert.deepEqual([unknown.status, unknown.code, unknown.msg], [404, 404, 'wsId "nobody" is not connected']);
    assert.equal(recorder.bodies.length, 3, 'one request each');

    const wrongKey = await apiError(new RoomcastApi(server.logicUrl, { apiKey: 'wrong' }).stats());
    assert.deepEqual([wrongKey.status, wrongKey.code, wrongKey.attempts], [401, 401, 1]);
    assert.match(wrongKey.msg, /missing or wrong API key/);
  });

  it('a network failure is status 0, code network, naming the URL, after the retries', async () => {
    const refused = await startServer();
    const url = refused.logicUrl;
    await refused.close();
    const error = await apiError(new RoomcastApi(url, { retries: 2, backoffMs: 10 }).rooms());
    assert.deepEqual([error.status, error.code, error.attempts], [0, 'network', 3]);
    assert.match(error.msg, /ECONNREFUSED/);
    assert.ok(error.message.startsWith(`GET ${url}/rooms: network `), error.message);
  });

  it('every operation of the OpenAPI document a backend calls has a method', async () => {
    const doc = (await (await fetch(`${server.logicUrl}/openapi.json`, { headers: { authorization: `Bearer ${API_KEY}` } })).json()) as { paths: Record<string, object> };
    const methods: Record<string, keyof RoomcastApi> = {
      '/push/all': 'pushAll',
      '/push/room': 'pushRoom',
      '/push/conn': 'pushConn',
      '/push/user': 'pushUser',
      '/room/join': 'join',
      '/room/leave': 'leave',
      '/conn/kick': 'kick',
      '/rooms': 'rooms',
      '/rooms/{id}': 'room',
      '/rooms/{id}/history': 'history',
      '/conns/{wsId}': 'conn',
      '/users/{uid}': 'user',
      '/stats': 'stats',
      '/readyz': 'ready',
    };
    /** For people and probes, not a backend: liveness, the live stream of totals, Prometheus, the document itself. */
    const notForBackends = ['/healthz', '/stats/stream', '/metrics', '/openapi.json'];
    assert.deepEqual(Object.keys(doc.paths).filter((path) => !notForBackends.includes(path)).sort(), Object.keys(methods).sort());
    for (const method of Object.values(methods)) assert.equal(typeof RoomcastApi.prototype[method], 'function', method);
  });

  it('a path parameter no URL can carry (".", "..", a lone surrogate, not a string) is a TypeError naming it, before any request', async () => {
    const recorder = recordingFetch();
    const roomcast = new RoomcastApi(server.logicUrl, { apiKey: API_KEY, fetch: recorder.fetch });
    // fetch resolves "." and ".." (and %2e) as dot segments: GET /rooms/./history would read the room "history"
    await assert.rejects(async () => roomcast.history('.'), { name: 'TypeError', message: /^room "\." cannot be sent as a URL path segment/ });
    await assert.rejects(async () => roomcast.room('..'), { name: 'TypeError', message: /^roomId "\.\." cannot be sent as a URL path segment/ });
    await assert.rejects(async () => roomcast.conn('.'), { name: 'TypeError', message: /^wsId "\." cannot be sent/ });
    await assert.rejects(async () => roomcast.user('..'), { name: 'TypeError', message: /^uid "\.\." cannot be sent/ });
    await assert.rejects(async () => roomcast.user('ann\ud800'), { name: 'TypeError', message: /^uid has a lone UTF-16 surrogate at index 3/ });
    // from JavaScript: undefined would read the room named "undefined"
    await assert.rejects(async () => roomcast.room(undefined as unknown as string), { name: 'TypeError', message: /^roomId must be a string, got undefined/ });
    await assert.rejects(async () => roomcast.conn({} as unknown as string), { name: 'TypeError', message: /^wsId must be a string, got object/ });
    assert.deepEqual(recorder.bodies, [], 'no request was made');
    assert.deepEqual(await roomcast.room('a.b'), { room: 'a.b', members: 0, offset: 0, limit: 100, wsIds: [] }, 'a dot within an id is fine');
  });

  it('a push without its options (the tag) is a TypeError naming them, before any request', async () => {
    const recorder = recordingFetch();
    const roomcast = new RoomcastApi(server.logicUrl, { apiKey: API_KEY, fetch: recorder.fetch });
    const push = roomcast.pushRoom.bind(roomcast) as (room: string, val: string, options?: unknown) => Promise<unknown>;
    await assert.rejects(async () => push('lobby', 'x'), { name: 'TypeError', message: 'options must be an object with the tag of the push ({ tag, idempotencyKey? }), got undefined' });
    await assert.rejects(async () => push('lobby', 'x', 3), { name: 'TypeError', message: /^options must be an object .*, got number/ });
    assert.deepEqual(recorder.bodies, [], 'no request was made');
  });

  it('loads nothing but its own modules at run time (no zod, no dependency)', () => {
    const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'api');
    for (const file of readdirSync(dir).filter((name) => name.endsWith('.js'))) {
      const specifiers = [...readFileSync(join(dir, file), 'utf8').matchAll(/\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1] ?? m[2]);
      for (const specifier of specifiers) assert.match(specifier, /^\.\/[\w-]+\.js$/, `${file} imports ${specifier}`);
    }
  });
});

describe('roomcast/api retries', () => {
  const server = serverPerSuite({ apiKey: API_KEY });

  it('a room push whose answer came too late is retried with the same key: delivered once, the answer says repeated', async () => {
    // the first answer is held well past the timeout, and the timeout leaves a loaded machine time to answer the retry
    const held = await startHeldAnswerRelay(Number(new URL(server.logicUrl).port), 4000);
    const client = await TestClient.connect(server.gatewayUrl);
    try {
      const recorder = recordingFetch();
      await new RoomcastApi(server.logicUrl, { apiKey: API_KEY }).join(client.wsId, 'retried');
      const roomcast = new RoomcastApi(held.url, { apiKey: API_KEY, timeoutMs: 1500, retries: 2, backoffMs: 10, fetch: recorder.fetch });
      const answer = await roomcast.pushRoom('retried', 'exactly once', { tag: 3 });
      // a later push to the room comes after every earlier one: once it is here, a second delivery would be too
      await new RoomcastApi(server.logicUrl, { apiKey: API_KEY }).pushRoom('retried', 'after', { tag: 3 });
      await client.next((f) => isPush(f) && f.data === 'after');
      assert.deepEqual(
        pushesWith(client, 'exactly once').map((f) => f.seq),
        [1],
        'delivered once',
      );
      const keys = keysOf(recorder.bodies);
      assert.equal(keys.length, 2, 'the push was made again after its timeout');
      assert.equal(new Set(keys).size, 1, 'with the same key');
      assert.deepEqual({ seq: answer.seq, repeated: answer.repeated }, { seq: 1, repeated: true });
    } finally {
      await client.closeAndWait();
      await held.relay.close();
    }
  });

  it('a call whose answer does not come within timeoutMs is status 0, code timeout, naming the URL', async () => {
    const held = await startHeldAnswerRelay(Number(new URL(server.logicUrl).port), 5000);
    try {
      const error = await apiError(new RoomcastApi(held.url, { apiKey: API_KEY, timeoutMs: 300, retries: 0 }).stats());
      assert.deepEqual([error.status, error.code, error.msg, error.attempts], [0, 'timeout', 'no answer within 300 ms', 1]);
      assert.equal(error.message, `GET ${held.url}/stats: timeout no answer within 300 ms`);
    } finally {
      await held.relay.close();
    }
  });

  it('an answer whose body stops after its headers is a timeout within timeoutMs, not a stall', async () => {
    const stalling = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"code":0,"msg":"ok","data":');
    });
    stalling.listen(0, '127.0.0.1');
    await once(stalling, 'listening');
    const url = `http://127.0.0.1:${(stalling.address() as AddressInfo).port}`;
    try {
      const started = Date.now();
      const error = await apiError(new RoomcastApi(url, { timeoutMs: 300, retries: 1, backoffMs: 10 }).stats());
      assert.deepEqual([error.status, error.code, error.attempts], [0, 'timeout', 2]);
      assert.ok(Date.now() - started < 2000, `gave up after ${Date.now() - started} ms`);
    } finally {
      stalling.closeAllConnections();
      stalling.close();
    }
  });

  it('a push to a connection whose answer came too late is retried with the same key: delivered once, the answer says repeated', async () => {
    // the first answer is held well past the timeout, and the timeout leaves a loaded machine time to answer the retry
    const held = await startHeldAnswerRelay(Number(new URL(server.logicUrl).port), 4000);
    const client = await TestClient.connect(server.gatewayUrl);
    try {
      const recorder = recordingFetch();
      const roomcast = new RoomcastApi(held.url, { apiKey: API_KEY, timeoutMs: 1500, retries: 2, backoffMs: 10, fetch: recorder.fetch });
      const answer = await roomcast.pushConn(client.wsId, 'once to one', { tag: 3 });
      await new RoomcastApi(server.logicUrl, { apiKey: API_KEY }).pushConn(client.wsId, 'after', { tag: 3 });
      await client.next((f) => isPush(f) && f.data === 'after');
      assert.equal(pushesWith(client, 'once to one').length, 1, 'delivered once');
      // counted as requests, not as the relay's TCP connections (fetch may open one more than it uses)
      const keys = keysOf(recorder.bodies);
      assert.equal(keys.length, 2, 'the push was made again after its timeout');
      assert.equal(new Set(keys).size, 1, 'with the same key');
      assert.deepEqual(answer, { wsId: client.wsId, delivered: true, repeated: true });
    } finally {
      await client.closeAndWait();
      await held.relay.close();
    }
  });
});

describe('roomcast/api against a server with --idempotency-window 0', () => {
  const server = serverPerSuite({ idempotencyWindow: 0 });

  it('pushes of a default client are refused 400 naming the flag; with idempotencyKeys: false they carry no key, are made once and not retried', async () => {
    const client = await TestClient.connect(server.gatewayUrl);
    const refused = await apiError(new RoomcastApi(server.logicUrl).pushAll('with a key', { tag: 2 }));
    assert.equal(refused.status, 400);
    assert.match(refused.msg, /--idempotency-window 0/);
    const recorded = recordingFetch();
    const plain = new RoomcastApi(server.logicUrl, { idempotencyKeys: false, fetch: recorded.fetch });
    const answer = await plain.pushAll('without a key', { tag: 2 });
    assert.equal('repeated' in answer, false, 'an answer to a push without a key has no repeated field');
    assert.deepEqual(
      recorded.bodies.map((body) => 'idempotencyKey' in (JSON.parse(body) as object)),
      [false],
      'one request, with no key',
    );
    assert.equal((await client.next((f) => isPush(f) && f.data === 'without a key')).type, 2);
    await client.closeAndWait();
  });
});

describe('roomcast/api on Redis, Redis stopped', { skip: skipWithoutRedis }, () => {
  let redis: RedisServer;
  let server: TestServer;

  before(async () => {
    redis = await RedisServer.start();
    server = await startServer({ broker: redis.url });
  });
  after(async () => {
    await server?.close();
    await redis?.stop();
  });

  it('a push answered 503 is retried with its key, then surfaced as status 503 after the retries', async () => {
    const client = await TestClient.connect(server.gatewayUrl);
    const recorder = recordingFetch();
    const roomcast = new RoomcastApi(server.logicUrl, { timeoutMs: 15_000, retries: 2, backoffMs: 10, fetch: recorder.fetch });
    await roomcast.join(client.wsId, 'down');
    await redis.kill();
    const error = await apiError(roomcast.pushRoom('down', 'never', { tag: 3 }));
    assert.deepEqual([error.status, error.code, error.attempts, error.outcomeUnknown], [503, 503, 3, true]);
    assert.match(error.msg, /Redis/);
    const keys = keysOf(recorder.bodies.slice(1));
    assert.equal(keys.length, 3);
    assert.equal(new Set(keys).size, 1, 'every attempt with the same key');
    await client.closeAndWait();
  });
});

describe('roomcast/api on Redis, answers from Redis lost', { skip: skipWithoutRedis }, () => {
  let redis: RedisServer;
  let lossy: LostAnswersCluster;
  let client: TestClient;

  before(async () => {
    redis = await RedisServer.start();
    lossy = await startLostAnswersCluster(redis, `api-lost${Date.now()}:`);
    client = await TestClient.connect(lossy.cluster.gatewayUrls[0]);
    await new RoomcastApi(lossy.cluster.logicUrl).join(client.wsId, 'lost');
  });
  after(async () => {
    await client?.closeAndWait();
    await lossy?.close();
    await redis?.stop();
  });

  /** The global fetch, that after the first answer (a 503: Redis's answer to its push was lost) lets Redis's answers through again and waits until the API is ready. */
  const answersAfterFirst = (lost: { answer(): void }): typeof fetch => {
    let first = true;
    return async (input, init) => {
      const response = await fetch(input, init);
      if (first) {
        first = false;
        assert.equal(response.status, 503);
        lost.answer();
        await until('the logic API is ready again', async () => ((await fetch(`${lossy.cluster.logicUrl}/readyz`)).ok ? true : undefined));
      }
      return response;
    };
  };

  it('a room push Redis ran but answered 503 is retried with its key: the answer is the seq the client got, repeated, and it is delivered once', async () => {
    const roomcast = new RoomcastApi(lossy.cluster.logicUrl, { backoffMs: 10, fetch: answersAfterFirst(lossy.loseAnswers()) });
    const answer = await roomcast.pushRoom('lost', 'ran once', { tag: 3 });
    const delivered = await client.next((f) => f.data === 'ran once');
    assert.deepEqual({ seq: answer.seq, repeated: answer.repeated }, { seq: delivered.seq, repeated: true });
    await client.ping();
    assert.deepEqual(pushesWith(client, 'ran once'), [], 'delivered a second time');
  });

  it('a push to a connection answered 503 whose key Redis kept claimed, unsettled: its retries find it under way (409, Retry-After) until they run out, then an error that says its outcome is unknown', async () => {
    const recorder = recordingFetch(answersAfterFirst(lossy.loseAnswers()));
    const roomcast = new RoomcastApi(lossy.cluster.logicUrl, { backoffMs: 10, maxBackoffMs: 100, retries: 3, fetch: recorder.fetch });
    const error = await apiError(roomcast.pushConn(client.wsId, 'at most once', { tag: 3 }));
    assert.deepEqual([error.status, error.code, error.attempts, error.outcomeUnknown], [409, 409, 4, true]);
    const [key] = keysOf(recorder.bodies);
    assert.match(error.message, new RegExp(`idempotency key "${key}" was still under way on the server after 4 attempts .*may yet be delivered, once`));
    await client.ping();
    assert.ok(pushesWith(client, 'at most once').length <= 1);
  });
});

describe('roomcast/api on Redis, a push to a connection still under way when its retry comes', { skip: skipWithoutRedis }, () => {
  const env = relayedClusterPerSuite(1, { requestTimeoutMs: 1500 });

  /** Holds the gateway node's answer to the next push to a connection (its PUBLISH to the logic's reply channel) in the relay: the push is made, its answer late. */
  function holdTheAnswer(): Hold {
    const gateway = env.cluster.gateways[0].node.broker as RedisBroker;
    const replyChannel = gateway.names.replyChannel((env.cluster.logic.broker as RedisBroker).processId);
    return env.relay.hold((name, text) => name === `roomcast:commands:${gateway.processId}` && text.includes(replyChannel) && text.includes('delivered'));
  }

  /** The global fetch, noting each answer's status and its Retry-After header, and calling `onConflict` after a 409. */
  function watchingFetch(onConflict: () => void): { fetch: typeof fetch; answers: [number, string | null][] } {
    const answers: [number, string | null][] = [];
    return {
      answers,
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        answers.push([response.status, response.headers.get('retry-after')]);
        if (response.status === 409) onConflict();
        return response;
      },
    };
  }

  /** How many times `client` got `val`, once a push sent after it has reached it. */
  async function deliveries(client: TestClient, val: string): Promise<number> {
    const marker = `after ${val}`;
    await new RoomcastApi(env.cluster.logicUrl).pushConn(client.wsId, marker, { tag: 3 });
    await client.next((f) => isPush(f) && f.data === marker);
    return pushesWith(client, val).length;
  }

  it('a retry answered 409 with Retry-After (the first still under way) waits and asks again: the first answer, repeated, and delivered once', async () => {
    const client = await TestClient.connect(env.cluster.gatewayUrls[0]);
    const hold = holdTheAnswer();
    try {
      const watched = watchingFetch(() => hold.release());
      const roomcast = new RoomcastApi(env.cluster.logicUrl, { timeoutMs: 300, retries: 10, backoffMs: 10, maxBackoffMs: 200, fetch: watched.fetch });
      const answer = await roomcast.pushConn(client.wsId, 'while under way', { tag: 3 });
      assert.deepEqual(answer, { wsId: client.wsId, delivered: true, repeated: true });
      const conflicts = watched.answers.filter(([status]) => status === 409);
      assert.ok(conflicts.length >= 1, `no retry found the first under way: ${JSON.stringify(watched.answers)}`);
      for (const [, retryAfter] of conflicts) assert.ok(Number(retryAfter) >= 1, `Retry-After ${retryAfter}`);
      assert.equal(await deliveries(client, 'while under way'), 1);
    } finally {
      hold.release();
      await client.closeAndWait();
    }
  });

  it('a client that runs out of retries while the first is still under way throws outcomeUnknown, saying the first is under way', async () => {
    const client = await TestClient.connect(env.cluster.gatewayUrls[0]);
    const hold = holdTheAnswer();
    try {
      const watched = watchingFetch(() => undefined);
      const roomcast = new RoomcastApi(env.cluster.logicUrl, { timeoutMs: 300, retries: 2, backoffMs: 10, maxBackoffMs: 50, fetch: watched.fetch });
      const error = await apiError(roomcast.pushConn(client.wsId, 'still under way', { tag: 3 }));
      assert.deepEqual([error.status, error.code, error.attempts, error.outcomeUnknown], [409, 409, 3, true]);
      assert.match(error.message, /still under way/);
      assert.deepEqual(
        watched.answers.map(([status]) => status),
        [409, 409],
        'the first attempt timed out; both retries found it under way',
      );
      hold.release();
      assert.equal(await deliveries(client, 'still under way'), 1);
    } finally {
      hold.release();
      await client.closeAndWait();
    }
  });

  it('a retry answered 409 without Retry-After (the first answered 503: its node silent, the push delivered) is an error that says its outcome is unknown, not retried again', async () => {
    const client = await TestClient.connect(env.cluster.gatewayUrls[0]);
    const hold = holdTheAnswer();
    try {
      const watched = watchingFetch(() => undefined);
      const roomcast = new RoomcastApi(env.cluster.logicUrl, { timeoutMs: 10_000, retries: 3, backoffMs: 10, fetch: watched.fetch });
      const error = await apiError(roomcast.pushConn(client.wsId, 'outcome unknown', { tag: 3 }));
      assert.deepEqual([error.status, error.code, error.attempts, error.outcomeUnknown], [409, 409, 2, true]);
      assert.deepEqual(watched.answers, [
        [503, null],
        [409, null],
      ]);
      assert.match(error.message, /ended with 503 .*may have been delivered.*new idempotency key/);
      hold.release();
      assert.equal(await deliveries(client, 'outcome unknown'), 1);
    } finally {
      hold.release();
      await client.closeAndWait();
    }
  });
});

describe('roomcast/api options', () => {
  it('a bad base URL or option throws a TypeError naming it', () => {
    assert.throws(() => new RoomcastApi('ws://127.0.0.1:9999'), { name: 'TypeError', message: /^baseUrl must be an http:\/\/ or https:\/\/ URL/ });
    assert.throws(() => new RoomcastApi('http://127.0.0.1:9999', { timeoutMs: 0 }), { name: 'TypeError', message: /^timeoutMs must be a positive integer/ });
    assert.throws(() => new RoomcastApi('http://127.0.0.1:9999', { retries: -1 }), { name: 'TypeError', message: /^retries must be a non-negative integer/ });
    assert.throws(() => new RoomcastApi('http://127.0.0.1:9999', { backoffMs: 500, maxBackoffMs: 100 }), { name: 'TypeError', message: 'maxBackoffMs must be >= backoffMs (500), got 100' });
  });

  it('an option fetch would refuse at each attempt (and retry as a network failure) is a TypeError naming it, without the secret in it', () => {
    const options = (more: Record<string, unknown>) => () => new RoomcastApi('http://127.0.0.1:9999', more);
    for (const apiKey of ['sec\nret', 'sec\u0000ret', '']) {
      assert.throws(options({ apiKey }), (error: Error) => {
        assert.equal(error.name, 'TypeError');
        assert.match(error.message, /^apiKey must be a non-empty string of visible ASCII characters and spaces/);
        assert.ok(!error.message.includes('sec'), `the message shows the key: ${error.message}`);
        return true;
      });
    }
    for (const apiKey of [' secret', 'secret ']) {
      assert.throws(options({ apiKey }), (error: Error) => {
        assert.equal(error.name, 'TypeError');
        assert.match(error.message, /^apiKey must be .* but it starts or ends with a space, which HTTP trims from the header$/);
        assert.ok(!error.message.includes('secret'), `the message shows the key: ${error.message}`);
        return true;
      });
    }
    assert.throws(options({ apiKey: 42 }), { name: 'TypeError', message: /^apiKey must be a non-empty string .*got number/ });
    assert.throws(options({ fetch: 'fetch' }), { name: 'TypeError', message: 'fetch must be a function, got string' });
    assert.throws(options({ timeoutMs: 2 ** 40 }), { name: 'TypeError', message: /^timeoutMs must be at most 2147483647/ });
    assert.throws(options({ maxBackoffMs: 2 ** 40 }), { name: 'TypeError', message: /^maxBackoffMs must be at most 2147483647/ });
    assert.throws(() => new RoomcastApi('http://user:hunter2@127.0.0.1:9999'), (error: Error) => {
      assert.equal(error.name, 'TypeError');
      assert.match(error.message, /^baseUrl must carry no user or password/);
      assert.ok(!error.message.includes('hunter2'), error.message);
      return true;
    });
  });
});
