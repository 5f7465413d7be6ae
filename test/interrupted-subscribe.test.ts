/**
 * A gateway's subscriber connection that drops while a SUBSCRIBE is under way
 * (sent, not answered): Redis forgets it with the connection and the client
 * resubscribes only to the channels it had heard back about. A user's channel
 * opened then must still be heard once the subscriptions are back, or every
 * push to the user is lost for as long as the connection stays.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RedisBroker } from '../src/broker/redis/broker.js';
import { isPush, TestClient } from './helpers/client.js';
import { relayedClusterPerSuite } from './helpers/cluster.js';
import { postJson } from './helpers/http.js';
import { skipWithoutRedis } from './helpers/redis.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';
import { until } from './helpers/until.js';

describe("a user's channel whose SUBSCRIBE the subscriber connection's drop cut short (Redis)", { skip: skipWithoutRedis }, () => {
  const env = relayedClusterPerSuite(1, {}, { auth: 'required', jwtSecret: JWT_SECRET });

  it('is subscribed again once the subscriptions are back: pushes to the user reach its connection', async () => {
    const { gatewayUrls, logicUrl, gateways } = env.cluster;
    const broker = gateways[0].node.broker as RedisBroker;
    const subscriber = `roomcast:subscriber:${broker.processId}`;
    const channel = broker.names.userChannel('cut-short');
    const subscribe = env.relay.hold((name, text) => name === subscriber && text.includes(channel));
    const client = await TestClient.connect(`${gatewayUrls[0]}?token=${await signToken({ sub: 'cut-short' })}`);
    await subscribe.held;
    await env.redis.killClient(subscriber);
    subscribe.release();
    // each push reaches no node until the user's channel is heard again; the first that reaches one is delivered
    const nodes = await until('a push to the user reaching its node', async () => {
      const push = await postJson(logicUrl, '/push/user', { uid: 'cut-short', val: 'heard', tag: 2 });
      assert.equal(push.status, 200, push.text);
      return push.body.data?.nodes === 1 ? 1 : undefined;
    });
    assert.equal(nodes, 1);
    assert.equal((await client.next(isPush)).data, 'heard');
    await client.closeAndWait();
  });
});
