/**
 * POST /conn/kick when the session changes under it: a connection whose close
 * handshake is under way, and (on Redis, where logic and gateways are separate
 * processes) a session that a resume takes, or that ends, between the moment
 * the logic finds it away and the moment it ends it.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { RedisBroker } from '../src/broker/redis/broker.js';
import { CloseCode } from '../src/protocol/close-codes.js';
import { relayedClusterPerSuite, type TestCluster } from './helpers/cluster.js';
import { onEachEngine } from './helpers/engine-suite.js';
import { call, post } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import type { RedisRelay } from './helpers/redis-relay.js';
import { dropConnection, member, resumeOn, type Position } from './helpers/resume.js';
import { until } from './helpers/until.js';

/** The session's registry entry and session hash, where the engine keeps them in Redis; none on memory. */
async function redisKeysOf(cluster: TestCluster, redis: RedisServer | undefined, wsId: string): Promise<number> {
  if (redis === undefined) return 0;
  const names = (cluster.gateways[0].node.broker as RedisBroker).names;
  return Number(await redis.command(['EXISTS', names.connKey(wsId), names.sessionKey(wsId)]));
}

onEachEngine('a kick while the connection is closing', 1, (suite) => {
  it('ends the session: kicked:true, 404 at once, and once the socket is gone nothing is left to resume', async () => {
    const { cluster, redis } = suite;
    const raw = await RawClient.connect(cluster.gatewayUrls[0]);
    const wsId = await raw.welcome();
    const token = raw.json()[0].resume as string;
    const welcomeAll = { seq: raw.json()[0].seq as number, epoch: raw.json()[0].epoch as string };
    assert.equal((await post(cluster.logicUrl, '/room/join', { id: 'closing', wsId })).status, 200);
    const joined = await until('the joined frame', () => raw.json().find((f) => f.op === 'joined'));
    // the client says it is going away (1001, a close that keeps the session) and reads nothing more,
    // so the server's close frame waits in its socket and the close handshake stays open
    raw.socket.pause();
    raw.sendFrame(0x8, Buffer.from([0x03, 0xe9]));
    await until('the server answering the close frame', () => (raw.socket.readableLength > 0 ? true : undefined));

    const kicked = await post(cluster.logicUrl, '/conn/kick', { wsId });
    assert.deepEqual(kicked.body, { code: 0, msg: 'ok', data: { wsId, kicked: true } }, kicked.text);
    assert.equal((await call(cluster.logicUrl, `/conns/${wsId}`)).status, 404);
    assert.deepEqual((await call(cluster.logicUrl, '/rooms/closing')).body.data?.wsIds, []);

    raw.socket.destroy();
    // a resume of the kicked session gets its wsId back with no room: the session ended with the kick
    const { client: again, end } = await resumeOn(cluster.gatewayUrls[0], token, { '*': welcomeAll, closing: { seq: joined.seq as number, epoch: joined.epoch as string } });
    assert.equal(end.op, 'resumed', JSON.stringify(end));
    assert.equal(end.wsId, wsId);
    assert.equal(end.recovered, false);
    assert.deepEqual(Object.keys(end.streams as Record<string, Position>), ['*']);
    await again.closeAndWait();
    await until('the resumed connection gone', async () => ((await call(cluster.logicUrl, `/conns/${wsId}`)).status === 404 ? true : undefined));
    assert.equal(await redisKeysOf(cluster, redis, wsId), 0, 'neither registry entry nor session hash is left in Redis');
  });
});

describe('a kick racing a resume across processes (Redis)', { skip: skipWithoutRedis }, () => {
  const env = relayedClusterPerSuite(2);
  let gatewayProcesses: string[];
  before(() => {
    gatewayProcesses = env.cluster.gateways.map((g) => (g.node.broker as RedisBroker).processId);
  });

  /** Holds the logic's next command on the session after its lookup (the one that ends it) in the relay. */
  function holdTheEnd(wsId: string): ReturnType<RedisRelay['hold']> {
    const sessionKey = (env.cluster.gateways[0].node.broker as RedisBroker).names.sessionKey(wsId);
    return env.relay.hold(
      (name, text) => name.startsWith('roomcast:commands:') && !gatewayProcesses.some((id) => name.endsWith(id)) && text.includes(sessionKey) && !text.includes('HGETALL'),
    );
  }

  /** A session away on node 0, and a kick of it held just before it ends the session. */
  async function kickHeld(room: string): Promise<{ wsId: string; token: string; since: Record<string, Position>; kick: ReturnType<typeof post>; release(): void }> {
    const { client, since } = await member({ gatewayUrl: env.cluster.gatewayUrls[0], logicUrl: env.cluster.logicUrl }, [room]);
    await dropConnection(env.cluster, client);
    const hold = holdTheEnd(client.wsId);
    const kick = post(env.cluster.logicUrl, '/conn/kick', { wsId: client.wsId });
    await hold.held;
    return { wsId: client.wsId, token: client.welcome!.resume as string, since, kick, release: () => hold.release() };
  }

  it('a resume that takes the session before the kick ends it is kicked in turn: 4003 for the resumed connection, kicked:true, nothing left', async () => {
    const race = await kickHeld('race-resume');
    const { client: resumed, end } = await resumeOn(env.cluster.gatewayUrls[1], race.token, race.since);
    assert.equal(end.op, 'resumed', JSON.stringify(end));
    assert.equal(end.recovered, true);
    race.release();
    const kicked = await race.kick;
    assert.deepEqual(kicked.body, { code: 0, msg: 'ok', data: { wsId: race.wsId, kicked: true } }, kicked.text);
    assert.equal(await resumed.closeCode(5000), CloseCode.kicked, 'the kick reaches the connection that resumed the session');
    await until('the kicked session gone', async () => ((await call(env.cluster.logicUrl, `/conns/${race.wsId}`)).status === 404 ? true : undefined));
    assert.equal(await redisKeysOf(env.cluster, env.redis, race.wsId), 0);
  });

  it('a session that ends by itself before the kick ends it (resumed, then closed normally) answers kicked:false and leaves nothing', async () => {
    const race = await kickHeld('race-ended');
    const { client: resumed, end } = await resumeOn(env.cluster.gatewayUrls[1], race.token, race.since);
    assert.equal(end.op, 'resumed', JSON.stringify(end));
    await resumed.closeAndWait();
    await until('the session ended by its client', async () => ((await redisKeysOf(env.cluster, env.redis, race.wsId)) === 0 ? true : undefined));
    race.release();
    const kicked = await race.kick;
    assert.deepEqual(kicked.body, { code: 0, msg: 'ok', data: { wsId: race.wsId, kicked: false } }, kicked.text);
    assert.equal((await call(env.cluster.logicUrl, `/conns/${race.wsId}`)).status, 404);
    assert.equal(await redisKeysOf(env.cluster, env.redis, race.wsId), 0);
  });
});
