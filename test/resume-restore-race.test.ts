/**
 * Leaves by wsId that land while a resume puts its connection back in its
 * rooms (Redis): the resume is held at its SUBSCRIBE to the second room, by a
 * relay in front of Redis, once it has entered the first.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RedisBroker } from '../src/broker/redis/broker.js';
import { TestClient, isPush } from './helpers/client.js';
import { nodeOf, relayedClusterPerSuite } from './helpers/cluster.js';
import { call, post } from './helpers/http.js';
import { skipWithoutRedis } from './helpers/redis.js';
import { dropConnection, member } from './helpers/resume.js';
import { until } from './helpers/until.js';

describe('a leave by wsId while a resume restores the rooms (Redis)', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  const env = relayedClusterPerSuite(2);

  /** A session away from node 0 in both rooms, with one push to each meanwhile, resumed on node 1 and held at the SUBSCRIBE to the second room. */
  async function heldResume(FIRST: string, SECOND: string): Promise<{ wsId: string; resuming: TestClient; release(): void; missed: Map<string, number>; bystander: TestClient }> {
    const { client: bystander } = await member(nodeOf(env.cluster, 1), [FIRST]);
    const { client, since } = await member(nodeOf(env.cluster, 0), [FIRST, SECOND]);
    await dropConnection(env.cluster, client);
    const missed = new Map<string, number>();
    for (const room of [FIRST, SECOND]) missed.set(room, (await post(env.cluster.logicUrl, '/push/room', { val: `missed in ${room}`, tag: 2, id: room })).body.data?.seq as number);
    const node1 = env.cluster.gateways[1].node.broker as RedisBroker;
    const subscribe = env.relay.hold((name, text) => name === `roomcast:subscriber:${node1.processId}` && text.includes(node1.names.roomChannel(SECOND)));
    const resuming = await TestClient.connect(env.cluster.gatewayUrls[1], { quiet: true });
    resuming.send({ op: 'resume', token: client.welcome!.resume, since, id: 1 });
    await subscribe.held;
    await until('node 1 to put the connection back in the first room only', async () => {
      const info = await call(env.cluster.logicUrl, `/conns/${client.wsId}`);
      return info.body.data?.state === 'connected' && JSON.stringify(info.body.data?.rooms) === JSON.stringify([FIRST]) ? true : undefined;
    });
    return { wsId: client.wsId, resuming, release: () => subscribe.release(), missed, bystander };
  }

  it('a leave of a room not restored yet is in effect: the resume does not put the connection back in it, and sends its left', async () => {
    const [FIRST, SECOND] = ['unrestored-first', 'unrestored-second'];
    const { wsId, resuming, release, missed, bystander } = await heldResume(FIRST, SECOND);
    // the leave goes to node 1 as a request PUBLISHed on Redis: once Redis answered that, the request is on node 1's
    // subscriber connection, ahead of the answer to the SUBSCRIBE held back, so node 1 has it while the room still opens
    const published = env.relay.answered((_name, words) => words.some((word) => word.includes('"op":"leave"') && word.includes(wsId) && word.includes(SECOND)));
    const leaving = post(env.cluster.logicUrl, '/room/leave', { id: SECOND, wsId });
    await published;
    // asked of node 1 after the leave: the connection is not back in the room yet
    assert.deepEqual((await call(env.cluster.logicUrl, `/conns/${wsId}`)).body.data?.rooms, [FIRST]);
    release();
    const left = await leaving;
    assert.equal(left.status, 200, left.text);
    await resuming.collect((f) => f.op === 'resumed', 1, 10_000);
    assert.deepEqual(left.body.data?.changed, true, `the leave took effect: ${left.text}`);
    const after = await post(env.cluster.logicUrl, '/push/room', { val: 'after the leave', tag: 3, id: SECOND });
    assert.equal(after.status, 200);
    await resuming.ping();
    assert.deepEqual((await call(env.cluster.logicUrl, `/conns/${wsId}`)).body.data?.rooms, [FIRST]);
    const got = resuming.frames.map((f) => (isPush(f) ? `push ${f.room} ${f.seq}` : `${f.op} ${f.room ?? f.recovered}`));
    assert.deepEqual(got.filter((f) => f.startsWith(`push ${SECOND}`) && f !== `push ${SECOND} ${missed.get(SECOND)}`), [], 'nothing of the room after its leave');
    assert.equal(got.filter((f) => f === `left ${SECOND}`).length, 1, got.join(', '));
    await Promise.all([resuming.closeAndWait(), bystander.closeAndWait()]);
  });

  it('a leave of a room already restored: its missed push is still replayed before resumed, recovered:true, then its left once', async () => {
    const [FIRST, SECOND] = ['restored-first', 'restored-second'];
    const { wsId, resuming, release, missed, bystander } = await heldResume(FIRST, SECOND);
    try {
      const left = await post(env.cluster.logicUrl, '/room/leave', { id: FIRST, wsId });
      assert.deepEqual(left.body.data?.changed, true, left.text);
    } finally {
      release();
    }
    await resuming.collect((f) => f.op === 'resumed', 1, 10_000);
    await resuming.ping();
    const got = resuming.frames.map((f) => (isPush(f) ? `push ${f.room} ${f.seq}` : `${f.op} ${f.room ?? f.recovered}`));
    assert.deepEqual(got, [`push ${FIRST} ${missed.get(FIRST)}`, `push ${SECOND} ${missed.get(SECOND)}`, 'resumed true', `left ${FIRST}`]);
    await Promise.all([resuming.closeAndWait(), bystander.closeAndWait()]);
  });
});
