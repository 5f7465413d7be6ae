/**
 * A resume whose broker fails once the session is restored: the connection has
 * taken back the session's wsId and rooms, and reading what the streams hold
 * (to replay what it missed) fails. The gateway answers `resumed` with
 * recovered:false and no streams, and the connection keeps the session and its
 * rooms; the client keeps its positions, so its next resume takes the same
 * session back with what was pushed meanwhile. The failure is a relay in front
 * of Redis holding the gateway's history read of the room past the broker's
 * command deadline.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RoomcastClient } from '../client/node.js';
import type { RedisBroker } from '../src/broker/redis/broker.js';
import { HISTORY } from '../src/broker/redis/scripts.js';
import { isPush } from './helpers/client.js';
import { nodeOf, relayedClusterPerSuite, type RelayedCluster } from './helpers/cluster.js';
import { call, post } from './helpers/http.js';
import type { Hold } from './helpers/redis-relay.js';
import { skipWithoutRedis } from './helpers/redis.js';
import { assertResumed, dropConnection, member, resumeOn, type Position } from './helpers/resume.js';
import { nextEvent, record } from './helpers/sdk.js';
import { TcpRelay } from './helpers/tcp-relay.js';

const ROOM = 'read-fails';

/** Holds the gateway's next read of the room's history until released: past the 500 ms command deadline, the read fails. */
function holdHistoryRead({ cluster, relay }: RelayedCluster): Hold {
  const broker = cluster.gateways[0].node.broker as RedisBroker;
  const historyKey = broker.names.historyKey(ROOM);
  return relay.hold((name, text) => name === `roomcast:commands:${broker.processId}` && text.includes(HISTORY.sha) && text.includes(historyKey));
}

async function pushToRoom(cluster: RelayedCluster['cluster'], val: string): Promise<number> {
  const answer = await post(cluster.logicUrl, '/push/room', { id: ROOM, tag: 2, val });
  assert.equal(answer.status, 200, answer.text);
  return answer.body.data?.seq as number;
}

async function assertConnectedIn(cluster: RelayedCluster['cluster'], wsId: string): Promise<void> {
  const info = await call(cluster.logicUrl, `/conns/${wsId}`);
  assert.equal(info.body.data?.state, 'connected', info.text);
  assert.deepEqual(info.body.data?.rooms, [ROOM], info.text);
}

describe('a resume whose broker fails while it reads the streams (Redis)', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  const env = relayedClusterPerSuite(1, { commandTimeoutMs: 500 });

  it('answers resumed with recovered:false and no streams, keeps the wsId and rooms; the next resume takes the session back, recovered:true', async () => {
    const { cluster } = env;
    const { client: first, since } = await member(nodeOf(cluster, 0), [ROOM]);
    const wsId = first.wsId;
    await dropConnection(cluster, first);
    await pushToRoom(cluster, 'while away');

    const read = holdHistoryRead(env);
    let resumed: Awaited<ReturnType<typeof resumeOn>>;
    try {
      resumed = await resumeOn(cluster.gatewayUrls[0], first.welcome!.resume as string, since);
      await read.held;
    } finally {
      read.release();
    }
    const { frames, end } = resumed;
    let resuming = resumed.client;
    // the connection now goes by the session's wsId, not its welcome's
    resuming.wsId = wsId;
    try {
      assertResumed(end, { wsId, recovered: false });
      assert.deepEqual(end.streams, {}, JSON.stringify(end));
      assert.deepEqual(frames.filter(isPush), [], 'nothing replayed');
      await assertConnectedIn(cluster, wsId);
      const seq = await pushToRoom(cluster, 'after the failure');
      const live = await resuming.next((f) => isPush(f) && f.room === ROOM);
      assert.deepEqual([live.data, live.seq], ['after the failure', seq]);

      // Redis answers again: resumed from where the client got to, it misses nothing
      await dropConnection(cluster, resuming);
      const missed = await pushToRoom(cluster, 'away again');
      const again = await resumeOn(cluster.gatewayUrls[0], end.resume as string, { ...since, [ROOM]: { seq, epoch: since[ROOM].epoch } });
      resuming = again.client;
      resuming.wsId = wsId;
      assertResumed(again.end, { wsId, recovered: true });
      assert.deepEqual((again.end.streams as Record<string, Position>)[ROOM], { seq: missed, epoch: since[ROOM].epoch });
      assert.deepEqual(
        again.frames.filter(isPush).map((f) => [f.data, f.seq]),
        [['away again', missed]],
      );
      await assertConnectedIn(cluster, wsId);
    } finally {
      await resuming.closeAndWait();
    }
  });

  it('the SDK keeps its positions: its next resume takes the same session back, with its room and what was pushed meanwhile', async () => {
    const { cluster } = env;
    let admitting = true;
    const gatewayPort = Number(new URL(cluster.gatewayUrls[0]).port);
    const toGateway = await TcpRelay.start(() => gatewayPort, { admits: () => admitting });
    const client = new RoomcastClient(`ws://127.0.0.1:${toGateway.port}/connect`, { reconnect: { initialDelayMs: 20, maxDelayMs: 20 } });
    const messages = record(client, 'message');
    const left = record(client, 'left');
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      const wsId = client.wsId!;
      const joined = nextEvent(client, 'joined');
      assert.equal((await post(cluster.logicUrl, '/room/join', { id: ROOM, wsId })).status, 200);
      await joined;

      const read = holdHistoryRead(env);
      try {
        const resumed = nextEvent(client, 'state', (s) => s.state === 'connected');
        toGateway.destroyLinks();
        assert.deepEqual(await resumed, { state: 'connected', wsId, recovered: false });
        await read.held;
      } finally {
        read.release();
      }
      assert.deepEqual([...client.rooms], [ROOM]);
      assert.equal(client.positions.get(ROOM)?.epoch !== undefined, true, `the room's position: ${JSON.stringify(client.positions.get(ROOM))}`);
      await pushToRoom(cluster, 'after the failure');
      await nextEvent(client, 'message', (m) => m.data === 'after the failure');

      // away again, while something is pushed to the room
      admitting = false;
      toGateway.destroyLinks();
      await nextEvent(client, 'state', (s) => s.state === 'reconnecting');
      await pushToRoom(cluster, 'while away');
      const back = nextEvent(client, 'state', (s) => s.state === 'connected');
      admitting = true;
      assert.deepEqual(await back, { state: 'connected', wsId, recovered: true });
      assert.deepEqual(
        messages.map((m) => m.data),
        ['after the failure', 'while away'],
      );
      assert.deepEqual([...client.rooms], [ROOM]);
      assert.deepEqual(left, []);
      await assertConnectedIn(cluster, wsId);
    } finally {
      client.close();
      await toGateway.close();
    }
  });
});
