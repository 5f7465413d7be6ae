/**
 * Recovery on a real Redis: what roomcast leaves behind in Redis.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { RedisBroker } from '../src/broker/redis/broker.js';
import { TestClient, isPush } from './helpers/client.js';
import { redisEngine, startCluster, type TestCluster } from './helpers/cluster.js';
import { call, post } from './helpers/http.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { dropConnection, member } from './helpers/resume.js';

function brokerOf(cluster: TestCluster, node: number): RedisBroker {
  return cluster.gateways[node].node.broker as RedisBroker;
}

// one redis-server for the file; each cluster has its own key prefix
let redis: RedisServer;
before(async () => {
  if (skipWithoutRedis === false) redis = await RedisServer.start();
});
after(() => redis?.stop());

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
      assert.equal(await store.addRoom('gone-session', 'r', { seq: 0, epoch: 'e' }), false);
      assert.deepEqual(await redis.command(['KEYS', '*session:gone-session']), []);

      const { client } = await member({ gatewayUrl: cluster.gatewayUrls[0], logicUrl: cluster.logicUrl }, []);
      await dropConnection(cluster, client);
      assert.equal((await post(cluster.logicUrl, '/room/join', { id: 'while-away', wsId: client.wsId })).body.data?.changed, true);
      const ttl = await ttlOf(`*session:${client.wsId}`);
      assert.ok(ttl > 0 && ttl <= 120, `the session expires with its recovery window (TTL ${ttl} s)`);
    } finally {
      await cluster.close();
    }
  });

  it('a room only joined keeps its seq and epoch as long as a session may resume in it, not 24 h; a push keeps them 24 h', async () => {
    const cluster = await startCluster(redisEngine(redis.url), 1);
    const [a, b] = await Promise.all([0, 0].map(() => TestClient.connect(cluster.gatewayUrls[0])));
    try {
      await post(cluster.logicUrl, '/room/join', { id: 'joined-only', wsId: a.wsId });
      const joined = await ttlOf('*stream:joined-only');
      // 30 s registry + 120 s recovery window + 30 s
      assert.ok(joined > 0 && joined <= 180, `TTL ${joined} s`);
      await post(cluster.logicUrl, '/push/room', { val: 'x', tag: 2, id: 'joined-only' });
      assert.ok((await ttlOf('*stream:joined-only')) > 86_000);
      await post(cluster.logicUrl, '/room/join', { id: 'joined-only', wsId: b.wsId });
      assert.ok((await ttlOf('*stream:joined-only')) > 86_000, 'a join does not shorten it');
    } finally {
      await Promise.all([a.closeAndWait(), b.closeAndWait()]);
      await cluster.close();
    }
  });

  it('a quiet room keeps its epoch while a node has members in it', async () => {
    // its seq and epoch would expire 1 s after the join if the node did not keep them
    const cluster = await startCluster(redisEngine(redis.url, { registryTtlMs: 300, recoveryWindowMs: 300 }), 1);
    try {
      const { client, since } = await member({ gatewayUrl: cluster.gatewayUrls[0], logicUrl: cluster.logicUrl }, ['quiet']);
      await sleep(2500);
      const pushed = await post(cluster.logicUrl, '/push/room', { val: 'still', tag: 2, id: 'quiet' });
      assert.deepEqual(pushed.body.data?.seq, since.quiet.seq + 1);
      const history = await call(cluster.logicUrl, `/rooms/quiet/history?since=${since.quiet.seq}`);
      assert.equal(history.body.data?.epoch, since.quiet.epoch);
      assert.equal((await client.next(isPush)).seq, pushed.body.data?.seq);
      await client.closeAndWait();
    } finally {
      await cluster.close();
    }
  });
});
