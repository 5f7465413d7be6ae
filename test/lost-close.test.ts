/**
 * A connection's close whose write to Redis the gateway's command connection
 * lost (it dropped with the write sent, unanswered): the close is written once
 * the connection is back. Otherwise the session of a kicked connection (or one
 * its client closed) would outlive it in Redis, named as connected, and a
 * resume would take it back with its rooms: the kick undone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RedisBroker } from '../src/broker/redis/broker.js';
import { CloseCode } from '../src/protocol/close-codes.js';
import { relayedClusterPerSuite } from './helpers/cluster.js';
import { call, post } from './helpers/http.js';
import { skipWithoutRedis } from './helpers/redis.js';
import { member, resumeOn } from './helpers/resume.js';
import { until } from './helpers/until.js';

describe("a close whose write the gateway's Redis connection lost (Redis)", { skip: skipWithoutRedis }, () => {
  const env = relayedClusterPerSuite(1);

  it('is written once the connection is back: a kicked session ends, and a resume of it gets no room back', async () => {
    const { cluster, relay, redis } = env;
    const { client, since } = await member({ gatewayUrl: cluster.gatewayUrls[0], logicUrl: cluster.logicUrl }, ['kicked-out']);
    const broker = cluster.gateways[0].node.broker as RedisBroker;
    const commands = `roomcast:commands:${broker.processId}`;
    const [connKey, sessionKey, kickedKey] = [broker.names.connKey(client.wsId), broker.names.sessionKey(client.wsId), broker.names.kickedKey(client.wsId)];
    // the gateway's write of the close (its conn key and session, not the registry refresh, which names the kicked key too)
    const closeWrite = relay.hold((name, text) => name === commands && text.includes(connKey) && text.includes(sessionKey) && !text.includes(kickedKey));
    const kicked = await post(cluster.logicUrl, '/conn/kick', { wsId: client.wsId });
    assert.deepEqual(kicked.body.data, { wsId: client.wsId, kicked: true }, kicked.text);
    assert.equal(await client.closeCode(5000), CloseCode.kicked);
    await closeWrite.held;
    await redis.killClient(commands);
    closeWrite.release();
    await until('the kicked session gone from Redis', async () => ((await redis.command(['EXISTS', connKey, sessionKey])) === 0 ? true : undefined));
    assert.equal((await call(cluster.logicUrl, `/conns/${client.wsId}`)).status, 404);
    const { client: again, end } = await resumeOn(cluster.gatewayUrls[0], client.welcome!.resume as string, since);
    assert.equal(end.op, 'resumed', JSON.stringify(end));
    assert.equal(end.recovered, false);
    assert.deepEqual(Object.keys(end.streams as Record<string, unknown>), ['*']);
    await again.closeAndWait();
  });
});
