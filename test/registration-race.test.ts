/**
 * A gateway welcomes a connection without waiting for its registration to
 * reach Redis, so a backend told the wsId at once can send a command by wsId
 * before Redis names the node that holds it. Here the registration is held
 * in a relay while the command goes out: the command must still reach the
 * connection, not be taken for a command to an away or unknown session.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { RedisBroker } from '../src/broker/redis/broker.js';
import { CloseCode } from '../src/protocol/close-codes.js';
import { TestClient, isPush } from './helpers/client.js';
import { redisEngine, startCluster, type TestCluster } from './helpers/cluster.js';
import { call, post, type ApiAnswer } from './helpers/http.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { RedisRelay } from './helpers/redis-relay.js';

describe('a command by wsId sent before the gateway registered the connection in Redis', { skip: skipWithoutRedis }, () => {
  let redis: RedisServer;
  let relay: RedisRelay;
  let cluster: TestCluster;
  before(async () => {
    redis = await RedisServer.start();
    relay = await RedisRelay.start(redis.port);
    cluster = await startCluster(redisEngine(relay.url), 1);
  });
  after(async () => {
    await cluster.close();
    await relay.close();
    await redis.stop();
  });

  /** Connects a client while its registration is held, sends `command` meanwhile, then lets the registration through after 300 ms. */
  async function beforeRegistration(command: (client: TestClient) => Promise<ApiAnswer>): Promise<{ client: TestClient; answer: ApiAnswer }> {
    const broker = cluster.gateways[0].node.broker as RedisBroker;
    const registration = relay.hold((name, text) => name === `roomcast:commands:${broker.processId}` && text.includes(broker.names.connKey('')));
    const client = await TestClient.connect(cluster.gatewayUrls[0]);
    try {
      await registration.held;
      const answering = command(client);
      await sleep(300);
      registration.release();
      return { client, answer: await answering };
    } finally {
      registration.release();
    }
  }

  it('a join reaches the connection: 200 changed, the joined frame, and the room in GET /conns', async () => {
    const { client, answer } = await beforeRegistration((c) => post(cluster.logicUrl, '/room/join', { id: 'early', wsId: c.wsId }));
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.body.data?.changed, true);
    assert.equal((await client.next((f) => f.op === 'joined')).room, 'early');
    assert.deepEqual((await call(cluster.logicUrl, `/conns/${client.wsId}`)).body.data?.rooms, ['early']);
    await post(cluster.logicUrl, '/push/room', { id: 'early', val: 'to the early member', tag: 2 });
    assert.equal((await client.next(isPush)).data, 'to the early member');
    await client.closeAndWait();
  });

  it('a push to the connection is delivered', async () => {
    const { client, answer } = await beforeRegistration((c) => post(cluster.logicUrl, '/push/conn', { wsId: c.wsId, val: 'early push', tag: 2 }));
    assert.equal(answer.status, 200, answer.text);
    assert.equal((await client.next(isPush)).data, 'early push');
    await client.closeAndWait();
  });

  it('a kick closes the connection with 4003', async () => {
    const { client, answer } = await beforeRegistration((c) => post(cluster.logicUrl, '/conn/kick', { wsId: c.wsId }));
    assert.equal(answer.status, 200, answer.text);
    assert.equal(await client.closeCode(20_000), CloseCode.kicked);
  });
});
