/**
 * The logic API stopping (SIGTERM) while requests are under way: a push it has
 * handed to Redis is answered with what came of it, not cut off unanswered
 * (its caller could not tell whether it was delivered); a request that comes
 * once the shutdown has begun is refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RedisBroker } from '../src/broker/redis/broker.js';
import { IN_FLIGHT_GRACE_MS } from '../src/logic/server.js';
import { isPush } from './helpers/client.js';
import { relayedClusterPerSuite } from './helpers/cluster.js';
import { post } from './helpers/http.js';
import { skipWithoutRedis } from './helpers/redis.js';
import { member } from './helpers/resume.js';
import { until } from './helpers/until.js';

describe('a push in flight when the logic API shuts down (Redis)', { skip: skipWithoutRedis }, () => {
  const env = relayedClusterPerSuite(1);

  it('is answered 200 with its seq once Redis ran it, and delivered; the shutdown waits for it', async () => {
    const { cluster, relay } = env;
    const { client } = await member({ gatewayUrl: cluster.gatewayUrls[0], logicUrl: cluster.logicUrl }, ['last-words']);
    const gatewayProcess = (cluster.gateways[0].node.broker as RedisBroker).processId;
    // the logic's publish waits in the relay: the push is under way when the shutdown begins
    const publish = relay.hold((name, text) => name.startsWith('roomcast:commands:') && !name.endsWith(gatewayProcess) && text.includes('last-words'));
    const push = post(cluster.logicUrl, '/push/room', { id: 'last-words', val: 'final', tag: 2 });
    await publish.held;
    let closed = false;
    const closing = cluster.logic.close().then(() => (closed = true));
    await until('the logic API no longer listening', () => (cluster.logic.app.server.listening ? undefined : true));
    assert.equal(closed, false, 'the shutdown waits for the push under way');
    publish.release();
    const answer = await push;
    assert.equal(answer.status, 200, answer.text);
    assert.equal(typeof answer.body.data?.seq, 'number', answer.text);
    const answered = Date.now();
    assert.equal((await client.next(isPush)).data, 'final');
    await closing;
    // its connection closes with the answer: the shutdown does not sit out its grace for it
    assert.ok(Date.now() - answered < IN_FLIGHT_GRACE_MS / 2, `closed ${Date.now() - answered} ms after the answer`);
    await client.closeAndWait();
  });
});
