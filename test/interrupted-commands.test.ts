/**
 * Joins and leaves by wsId (POST /room/join, /room/leave) that the
 * connection's close interrupts: one that arrives while the close handshake is
 * under way, and one whose room is still opening when the connection drops.
 * Either way a 2xx answer must hold for the session the connection leaves
 * away: a resume finds the rooms the answers said.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RedisBroker } from '../src/broker/redis/broker.js';
import { relayedClusterPerSuite } from './helpers/cluster.js';
import { onEachEngine } from './helpers/engine-suite.js';
import { call, post } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';
import { skipWithoutRedis } from './helpers/redis.js';
import { dropConnection, member, resumeOn, type Position } from './helpers/resume.js';
import { TestClient } from './helpers/client.js';
import { until } from './helpers/until.js';

/** A raw client in `room` that then says it is going away (1001, which keeps the session) and reads nothing more, so the close handshake stays open. */
async function closingMember(gatewayUrl: string, logicUrl: string, room: string): Promise<{ raw: RawClient; wsId: string; token: string; since: Record<string, Position> }> {
  const raw = await RawClient.connect(gatewayUrl);
  const wsId = await raw.welcome();
  const welcome = raw.json()[0];
  assert.equal((await post(logicUrl, '/room/join', { id: room, wsId })).status, 200);
  const joined = await until('the joined frame', () => raw.json().find((f) => f.op === 'joined'));
  raw.socket.pause();
  raw.sendFrame(0x8, Buffer.from([0x03, 0xe9]));
  await until('the server answering the close frame', () => (raw.socket.readableLength > 0 ? true : undefined));
  const since = { '*': { seq: welcome.seq as number, epoch: welcome.epoch as string }, [room]: { seq: joined.seq as number, epoch: joined.epoch as string } };
  return { raw, wsId, token: welcome.resume as string, since };
}

async function awaySession(logicUrl: string, wsId: string): Promise<{ rooms: string[] }> {
  return until(`session ${wsId} away`, async () => {
    const info = await call(logicUrl, `/conns/${wsId}`);
    return info.body.data?.state === 'away' ? (info.body.data as { rooms: string[] }) : undefined;
  });
}

/** Resumes the session; the streams the resume put it back in, sorted. */
async function resumedStreams(gatewayUrl: string, token: string, since: Record<string, Position>): Promise<string[]> {
  const { client, end } = await resumeOn(gatewayUrl, token, since);
  assert.equal(end.op, 'resumed', JSON.stringify(end));
  await client.closeAndWait();
  return Object.keys(end.streams as Record<string, Position>).sort();
}

function assertChanged(answer: Awaited<ReturnType<typeof post>>, room: string, wsId: string): void {
  assert.deepEqual(answer.body, { code: 0, msg: 'ok', data: { room, wsId, changed: true } }, answer.text);
}

onEachEngine('a join or leave by wsId while the connection is closing', 1, (suite) => {
  it('a leave answered changed:true stays done: the session resumes without the room', async () => {
    const { gatewayUrls, logicUrl } = suite.cluster;
    const member = await closingMember(gatewayUrls[0], logicUrl, 'closing-leave');
    assertChanged(await post(logicUrl, '/room/leave', { id: 'closing-leave', wsId: member.wsId }), 'closing-leave', member.wsId);
    member.raw.socket.destroy();
    assert.deepEqual((await awaySession(logicUrl, member.wsId)).rooms, []);
    assert.deepEqual(await resumedStreams(gatewayUrls[0], member.token, member.since), ['*']);
  });

  it('a join answered changed:true stays done: the session resumes in the room', async () => {
    const { gatewayUrls, logicUrl } = suite.cluster;
    const member = await closingMember(gatewayUrls[0], logicUrl, 'closing-first');
    assertChanged(await post(logicUrl, '/room/join', { id: 'closing-second', wsId: member.wsId }), 'closing-second', member.wsId);
    member.raw.socket.destroy();
    assert.deepEqual((await awaySession(logicUrl, member.wsId)).rooms.sort(), ['closing-first', 'closing-second']);
    assert.deepEqual(await resumedStreams(gatewayUrls[0], member.token, member.since), ['*', 'closing-first', 'closing-second']);
  });
});

describe('a join by wsId whose room is still opening when the connection drops (Redis)', { skip: skipWithoutRedis }, () => {
  const env = relayedClusterPerSuite(1);

  it('goes to the session the connection left away: changed:true, and a resume is back in the room', async () => {
    const { gatewayUrls, logicUrl, gateways } = env.cluster;
    const client = await TestClient.connect(gatewayUrls[0]);
    const since = { '*': { seq: client.welcome!.seq as number, epoch: client.welcome!.epoch as string } };
    const channel = (gateways[0].node.broker as RedisBroker).names.roomChannel('opening');
    // the gateway's SUBSCRIBE to the room waits in the relay: the join is under way, its room opening
    const subscribe = env.relay.hold((name, text) => name.startsWith('roomcast:subscriber:') && text.includes(channel));
    const join = post(logicUrl, '/room/join', { id: 'opening', wsId: client.wsId });
    await subscribe.held;
    client.ws.terminate();
    assert.deepEqual((await awaySession(logicUrl, client.wsId)).rooms, []);
    subscribe.release();
    assertChanged(await join, 'opening', client.wsId);
    assert.deepEqual((await awaySession(logicUrl, client.wsId)).rooms, ['opening']);
    assert.deepEqual(await resumedStreams(gatewayUrls[0], client.welcome!.resume as string, since), ['*', 'opening']);
  });
});

describe('a join or leave by wsId of an away session that a resume takes before the change lands (Redis)', { skip: skipWithoutRedis }, () => {
  const env = relayedClusterPerSuite(2);

  /** Holds the logic's change to the away session (the request after its lookup, HGETALL) in the relay, and resumes the session on node 1 meanwhile. */
  async function overtaken(rooms: string[], change: (wsId: string) => ReturnType<typeof post>): Promise<{ resumed: TestClient; answer: Awaited<ReturnType<typeof post>>; wsId: string }> {
    const { cluster, relay, redis } = env;
    const { client, since } = await awayMemberOf(rooms);
    const names = (cluster.gateways[0].node.broker as RedisBroker).names;
    const gatewayProcesses = cluster.gateways.map((g) => (g.node.broker as RedisBroker).processId);
    const sessionKey = names.sessionKey(client.wsId);
    const hold = relay.hold(
      (name, text) => name.startsWith('roomcast:commands:') && !gatewayProcesses.some((id) => name.endsWith(id)) && text.includes(sessionKey) && !text.includes('HGETALL'),
    );
    const answer = change(client.wsId);
    await hold.held;
    const { client: resumed, end } = await resumeOn(cluster.gatewayUrls[1], client.welcome!.resume as string, since);
    assert.equal(end.op, 'resumed', JSON.stringify(end));
    // the resumed connection's session is written before the held change runs
    await until('the resumed session in Redis', async () => ((await redis.command(['EXISTS', sessionKey])) === 1 ? true : undefined));
    hold.release();
    return { resumed, answer: await answer, wsId: client.wsId };
  }

  async function awayMemberOf(rooms: string[]): Promise<{ client: TestClient; since: Record<string, Position> }> {
    const server = { gatewayUrl: env.cluster.gatewayUrls[0], logicUrl: env.cluster.logicUrl };
    const joined = await member(server, rooms);
    await dropConnection(server, joined.client);
    return joined;
  }

  it('a join answered changed:true reaches the resumed connection: it gets the joined frame', async () => {
    const { resumed, answer, wsId } = await overtaken([], (wsId) => post(env.cluster.logicUrl, '/room/join', { id: 'overtaking-join', wsId }));
    assertChanged(answer, 'overtaking-join', wsId);
    await resumed.next((f) => f.op === 'joined' && f.room === 'overtaking-join');
    assert.deepEqual((await call(env.cluster.logicUrl, `/conns/${wsId}`)).body.data?.rooms, ['overtaking-join']);
    await resumed.closeAndWait();
  });

  it('a leave answered changed:true reaches the resumed connection: it gets the left frame', async () => {
    const { resumed, answer, wsId } = await overtaken(['overtaking-leave'], (wsId) => post(env.cluster.logicUrl, '/room/leave', { id: 'overtaking-leave', wsId }));
    assertChanged(answer, 'overtaking-leave', wsId);
    await resumed.next((f) => f.op === 'left' && f.room === 'overtaking-leave');
    assert.deepEqual((await call(env.cluster.logicUrl, `/conns/${wsId}`)).body.data?.rooms, []);
    await resumed.closeAndWait();
  });
});
