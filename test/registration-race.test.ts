/**
 * A gateway welcomes a connection without waiting for its registration to
 * reach Redis, so a backend told the wsId at once can send a command by wsId
 * before Redis names the node that holds it. Here the registration is held
 * in a relay while the command goes out: the command must still reach the
 * connection, not be taken for a command to an away or unknown session.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RedisBroker } from '../src/broker/redis/broker.js';
import { CloseCode } from '../src/protocol/close-codes.js';
import { TestClient, isPush } from './helpers/client.js';
import { relayedClusterPerSuite } from './helpers/cluster.js';
import { call, post, type ApiAnswer } from './helpers/http.js';
import { skipWithoutRedis } from './helpers/redis.js';

describe('a command by wsId sent before the gateway registered the connection in Redis', { skip: skipWithoutRedis }, () => {
  const env = relayedClusterPerSuite(1);

  /**
   * Connects a client while its registration is held, sends `command` meanwhile, and lets the registration through
   * once the logic has looked the wsId up in Redis and found no node for it.
   */
  async function beforeRegistration(command: (client: TestClient) => Promise<ApiAnswer>): Promise<{ client: TestClient; answer: ApiAnswer }> {
    const broker = env.cluster.gateways[0].node.broker as RedisBroker;
    const registration = env.relay.hold((name, text) => name === `roomcast:commands:${broker.processId}` && text.includes(broker.names.connKey('')));
    const client = await TestClient.connect(env.cluster.gatewayUrls[0]);
    try {
      await registration.held;
      const connKey = broker.names.connKey(client.wsId);
      const lookedUp = env.relay.answered((_name, words) => words[0]?.toUpperCase() === 'GET' && words[1] === connKey);
      const answering = command(client);
      await lookedUp;
      registration.release();
      return { client, answer: await answering };
    } finally {
      registration.release();
    }
  }

  it('a join reaches the connection: 200 changed, the joined frame, and the room in GET /conns', async () => {
    const { client, answer } = await beforeRegistration((c) => post(env.cluster.logicUrl, '/room/join', { id: 'early', wsId: c.wsId }));
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.body.data?.changed, true);
    assert.equal((await client.next((f) => f.op === 'joined')).room, 'early');
    assert.deepEqual((await call(env.cluster.logicUrl, `/conns/${client.wsId}`)).body.data?.rooms, ['early']);
    await post(env.cluster.logicUrl, '/push/room', { id: 'early', val: 'to the early member', tag: 2 });
    assert.equal((await client.next(isPush)).data, 'to the early member');
    await client.closeAndWait();
  });

  it('a push to the connection is delivered', async () => {
    const { client, answer } = await beforeRegistration((c) => post(env.cluster.logicUrl, '/push/conn', { wsId: c.wsId, val: 'early push', tag: 2 }));
    assert.equal(answer.status, 200, answer.text);
    assert.equal((await client.next(isPush)).data, 'early push');
    await client.closeAndWait();
  });

  it('a kick closes the connection with 4003', async () => {
    const { client, answer } = await beforeRegistration((c) => post(env.cluster.logicUrl, '/conn/kick', { wsId: c.wsId }));
    assert.equal(answer.status, 200, answer.text);
    assert.equal(await client.closeCode(20_000), CloseCode.kicked);
  });
});

describe('a command by wsId sent before the registration reached Redis, while another node does not answer', { skip: skipWithoutRedis }, () => {
  const QUERY_TIMEOUT_MS = 8000;
  const env = relayedClusterPerSuite(2, { queryTimeoutMs: QUERY_TIMEOUT_MS });

  it('goes out once the node that holds the connection says so, without waiting for the silent node until the query timeout', async () => {
    const [holder, silent] = env.cluster.gateways.map((g) => g.node.broker as RedisBroker);
    // the silent node's answers to the logic's question (which node holds the wsId) wait in the relay until the end
    const silentAnswers = env.relay.hold((name, text) => name === `roomcast:commands:${silent.processId}` && text.includes('"type":"reply"'));
    const registration = env.relay.hold((name, text) => name === `roomcast:commands:${holder.processId}` && text.includes(holder.names.connKey('')));
    const client = await TestClient.connect(env.cluster.gatewayUrls[0]);
    try {
      await registration.held;
      const started = Date.now();
      const answering = post(env.cluster.logicUrl, '/push/conn', { wsId: client.wsId, val: 'early push', tag: 2 });
      await silentAnswers.held;
      registration.release();
      const answer = await answering;
      assert.equal(answer.status, 200, answer.text);
      assert.ok(Date.now() - started < QUERY_TIMEOUT_MS / 2, `answered after ${Date.now() - started} ms: the command waited for the silent node`);
      assert.equal((await client.next(isPush)).data, 'early push');
    } finally {
      registration.release();
      silentAnswers.release();
      await client.closeAndWait();
    }
  });
});
