/** A resume whose replay is ahead of its node for longer than the node waits for it (PROTOCOL.md §4: no duplicates). */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { createClient } from 'redis';
import type { RedisBroker } from '../src/broker/redis/broker.js';
import { TestClient, isPush } from './helpers/client.js';
import { nodeOf, redisEngine, startCluster } from './helpers/cluster.js';
import { post } from './helpers/http.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { dropConnection, member } from './helpers/resume.js';

describe('resume ahead of its node past the catch-up wait', () => {
  it('on Redis, with the subscriber cut past the 2 s the resume waits for its node: resumed comes after the wait, and the replayed pushes the node fans out later do not reach the client again', { skip: skipWithoutRedis }, async () => {
    const redis = await RedisServer.start();
    const cluster = await startCluster(redisEngine(redis.url), 1);
    const admin = createClient({ url: redis.url });
    await admin.connect();
    try {
      const servers = nodeOf(cluster, 0);
      const { client, since } = await member(servers, ['behind']);
      const { client: stays } = await member(servers, ['behind']);
      await dropConnection(servers, client);
      // no new connection to Redis until maxclients is raised: the subscriber, once cut, stays away
      const clients = String(await admin.sendCommand(['CLIENT', 'LIST'])).trim().split('\n');
      await admin.sendCommand(['CONFIG', 'SET', 'maxclients', String(clients.length - 1)]);
      const subscriber = `roomcast:subscriber:${(cluster.gateways[0].node.broker as RedisBroker).processId}`;
      const id = clients.find((line) => line.includes(` name=${subscriber} `))?.match(/^id=(\d+)/)?.[1];
      await admin.sendCommand(['CLIENT', 'KILL', 'ID', id!]);
      const missed: number[] = [];
      for (let i = 0; i < 5; i++) missed.push((await post(cluster.logicUrl, '/push/room', { val: `b${i}`, tag: 2, id: 'behind' })).body.data?.seq as number);

      const again = await TestClient.connect(servers.gatewayUrl, { quiet: true });
      again.send({ op: 'resume', token: client.welcome!.resume, since, id: 1 });
      const end = await again.next((f) => f.op === 'resumed', 5000);
      assert.equal(end.recovered, true);
      await admin.sendCommand(['CONFIG', 'SET', 'maxclients', '10000']);
      // the node reads its gap from history and fans the 5 out to its members: the other member gets them once
      assert.deepEqual((await stays.collect(isPush, 5, 10_000)).map((f) => f.seq), missed);
      const live = await post(cluster.logicUrl, '/push/room', { val: 'live', tag: 2, id: 'behind' });
      await again.collect((f) => f.data === 'live', 1, 10_000);
      await sleep(100);
      await again.ping();
      assert.deepEqual(
        again.frames.filter(isPush).map((f) => f.seq),
        [...missed, live.body.data?.seq],
        'the replay, then live pushes, nothing twice',
      );
      await Promise.all([again.closeAndWait(), stays.closeAndWait()]);
    } finally {
      await admin.sendCommand(['CONFIG', 'SET', 'maxclients', '10000']).catch(() => undefined);
      admin.destroy();
      await cluster.close();
      await redis.stop();
    }
  });
});
