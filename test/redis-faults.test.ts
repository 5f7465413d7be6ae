/**
 * The Redis engine when Redis misbehaves, over real sockets on a real Redis:
 * Redis stopped (SIGSTOP) while pushes go on, two deployments on two
 * databases of one Redis, and broker URLs that carry a password.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { freePort } from '../bench/local-redis.js';
import { isPush, TestClient, type Frame } from './helpers/client.js';
import { redisEngine, startCluster } from './helpers/cluster.js';
import { call, post } from './helpers/http.js';
import { runCli } from './helpers/process.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { member } from './helpers/resume.js';
import { startServer } from './helpers/server.js';
import { until, within } from './helpers/until.js';

// one redis-server for the file; each cluster has its own key prefix
let redis: RedisServer;
before(async () => {
  if (skipWithoutRedis === false) redis = await RedisServer.start();
});
after(() => redis?.stop());

function pushToRoom(logicUrl: string, room: string, val: string): ReturnType<typeof post> {
  return post(logicUrl, '/push/room', { val, tag: 2, id: room });
}

/** The values of the pushes among the frames, in order. */
function pushedValues(frames: Frame[]): unknown[] {
  return frames.filter(isPush).map((f) => f.data);
}

/** Pings from each client every 2 s (their PONGs are not pushes), so none is closed for silence in a long test; returns what stops it. */
function keepAlive(clients: TestClient[]): () => void {
  const timer = setInterval(() => {
    for (const client of clients) if (client.ws.readyState === WebSocket.OPEN) client.send({ type: 1, data: 'PING' });
  }, 2000);
  return () => clearInterval(timer);
}

describe('Redis stopped (SIGSTOP) while pushes go on', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  it('pushes answer 503 within the deadline, and at once while Redis stays silent; none of them is delivered once it wakes; then pushes flow again, every 200 once and in order', async () => {
    const cluster = await startCluster(redisEngine(redis.url, { commandTimeoutMs: 1000 }), 2);
    const pid = Number(/process_id:(\d+)/.exec(String(await redis.command(['INFO', 'server'])))?.[1]);
    const members: TestClient[] = [];
    let stopped = false;
    let stopPinging = (): void => undefined;
    try {
      for (const node of [0, 1]) members.push((await member({ gatewayUrl: cluster.gatewayUrls[node], logicUrl: cluster.logicUrl }, ['r'])).client);
      stopPinging = keepAlive(members);
      for (const val of ['before-0', 'before-1']) assert.equal((await pushToRoom(cluster.logicUrl, 'r', val)).status, 200);

      process.kill(pid, 'SIGSTOP');
      stopped = true;
      const stoppedAt = Date.now();
      // within the deadline (1 s) and the wait for an answer past it (1 s), not once Redis wakes
      const during = await within(Promise.all([0, 1, 2].map((i) => pushToRoom(cluster.logicUrl, 'r', `during-${i}`))), 4000, 'pushes answered while Redis is stopped');
      assert.deepEqual(
        during.map((answer) => answer.status),
        [503, 503, 503],
      );
      assert.match(during[0].body.msg, /Redis/);
      await until('/readyz says 503', async () => ((await call(cluster.logicUrl, '/readyz')).status === 503 ? true : undefined), 3000);
      const askedAt = Date.now();
      const refused = await pushToRoom(cluster.logicUrl, 'r', 'during-silence');
      assert.equal(refused.status, 503);
      assert.match(refused.body.msg, /Redis has not answered/);
      assert.ok(Date.now() - askedAt < 1000, 'answered at once, without waiting for Redis');
      for (const client of members) assert.deepEqual(await client.ping(), { type: 1, data: 'PONG' });

      await sleep(5000 - (Date.now() - stoppedAt));
      process.kill(pid, 'SIGCONT');
      stopped = false;
      const accepted: string[] = [];
      await until(
        'a push accepted again',
        async () => {
          const val = `after-${accepted.length}-${Date.now()}`;
          const answer = await pushToRoom(cluster.logicUrl, 'r', val);
          return answer.status === 200 ? accepted.push(val) : undefined;
        },
        5000,
      );
      for (const [i, client] of members.entries()) {
        await client.collect(isPush, 3);
        await client.ping();
        assert.deepEqual(pushedValues(client.frames), ['before-0', 'before-1', ...accepted], `member on node ${i}`);
        assert.equal(client.ws.readyState, WebSocket.OPEN);
      }
    } finally {
      if (stopped) process.kill(pid, 'SIGCONT');
      stopPinging();
      await Promise.all(members.map((c) => c.closeAndWait()));
      await cluster.close();
    }
  });
});

describe('two deployments on two databases of one Redis', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  it("do not hear each other: pushes on one reach none of the other's members, and each counts only its own gateways", async () => {
    const servers = [await startServer({ broker: `${redis.url}/1` }), await startServer({ broker: `${redis.url}/2` })];
    const members: TestClient[] = [];
    try {
      for (const server of servers) members.push((await member(server, ['r'])).client);
      assert.equal((await pushToRoom(servers[0].logicUrl, 'r', 'first')).status, 200);
      assert.equal((await post(servers[0].logicUrl, '/push/all', { val: 'first to all', tag: 2 })).status, 200);
      await members[0].collect(isPush, 2);
      await sleep(300);
      await members[1].ping();
      assert.deepEqual(pushedValues(members[1].frames), []);
      assert.equal(members[1].ws.readyState, WebSocket.OPEN);
      for (const server of servers) {
        const stats = await call(server.logicUrl, '/stats');
        assert.equal(stats.body.data?.nodes, 1);
        assert.equal(stats.body.data?.connections, 1);
      }
    } finally {
      await Promise.all(members.map((c) => c.closeAndWait()));
      await Promise.all(servers.map((s) => s.close()));
    }
  });
});

describe('a broker URL with a password', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  const password = 'hunter2-do-not-print';

  it('is never repeated by a refusal of the URL, from the flag or from the environment', async () => {
    const refusals = [
      await runCli(['logic', '--port', '0', '--broker', `redis://:${password}@127.0.0.1:1:2`]),
      await runCli(['logic', '--port', '0'], { ROOMCAST_BROKER: `redis://user:${password}@127.0.0.1:1:2` }),
    ];
    for (const { code, stdout, stderr } of refusals) {
      assert.equal(code, 1);
      assert.match(stderr, /--broker must be memory or a redis:\/\/HOST:PORT URL, got "redis:\/\/(user)?:\*\*\*@127\.0\.0\.1:1:2"/);
      assert.ok(!(stdout + stderr).includes(password), stdout + stderr);
    }
    const path = await runCli(['gateway', '--port', '0', '--broker', `redis://:${password}@127.0.0.1:1/users`]);
    assert.equal(path.code, 1);
    assert.match(path.stderr, /--broker: the path of a redis:\/\/ URL is the database number \(redis:\/\/HOST:PORT\/2\), got "\/users"/);
    assert.ok(!path.stderr.includes(password));
  });

  it('a Redis that cannot be reached: the start fails naming why, without the password', async () => {
    const port = await freePort();
    const { code, stdout, stderr } = await runCli(['logic', '--host', '127.0.0.1', '--port', '0', '--broker', `redis://:${password}@127.0.0.1:${port}/3`], {}, undefined, 20_000);
    assert.equal(code, 1);
    assert.match(stdout, new RegExp(`could not start: cannot reach Redis at 127\\.0\\.0\\.1:${port} within 5000 ms: connect ECONNREFUSED`));
    assert.ok(!(stdout + stderr).includes(password));
  });
});
