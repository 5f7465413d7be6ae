/** Joins and leaves by wsId that land while a resume replays (PROTOCOL.md §4): each membership frame once, no push after its `left`. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient, isPush, type Frame } from './helpers/client.js';
import { call, post } from './helpers/http.js';
import { pushToRoom } from './helpers/pushes.js';
import { awayMember, resumesEnded, resumeUntilReplaying, type Position } from './helpers/resume.js';
import { withServer, type TestServer } from './helpers/server.js';

/** Large pushes: 200 of them pass what the kernel buffers for a client that stops reading, so the replay waits for it. */
const LARGE_VAL = 'v'.repeat(40 * 1024);

const shown = (f: Frame): string => (isPush(f) ? `push ${f.room ?? '*'} ${f.seq}` : `${f.op} ${f.room ?? ''}`.trim());

/** A new connection that sends the resume and stops reading once the replay has begun: the replay waits for it. */
async function stalledResume(server: TestServer, client: TestClient, since: Record<string, Position>, rooms: string[]): Promise<TestClient> {
  const again = await TestClient.connect(server.gatewayUrl, { quiet: true });
  await resumeUntilReplaying(again, client.welcome!.resume as string, since);
  // the connection holds the session and its rooms, and the replay has not ended
  const info = await call(server.logicUrl, `/conns/${client.wsId}`);
  assert.deepEqual([info.body.data?.state, info.body.data?.rooms], ['connected', rooms], info.text);
  assert.equal(await resumesEnded(server), 0, 'no resume has ended yet');
  return again;
}

describe('membership changes by wsId during a resume', () => {
  it('a leave by wsId while the replay waits for the client: every missed push once, then resumed, then one left, and nothing of the room after it', async () => {
    await withServer({}, async (server) => {
      const { client, since } = await awayMember(server, ['stay', 'quit']);
      const missed = await pushToRoom(server.logicUrl, 'quit', 200, 1, LARGE_VAL);
      const again = await stalledResume(server, client, since, ['stay', 'quit']);
      const left = await post(server.logicUrl, '/room/leave', { id: 'quit', wsId: client.wsId });
      assert.deepEqual(left.body.data?.changed, true, left.text);
      const after = await post(server.logicUrl, '/push/room', { val: 'after the leave', tag: 3, id: 'quit' });
      assert.equal(after.status, 200);
      assert.equal(await resumesEnded(server), 0, 'the leave and the push came while the replay waited for the client');
      again.ws.resume();
      await again.collect((f) => f.op === 'resumed', 1, 15_000);
      // anything sent twice would be in by the time the PONG is
      await again.ping();
      const got = again.frames.map(shown);
      assert.deepEqual(got, [...missed.map((seq) => `push quit ${seq}`), 'resumed', 'left quit']);
      await again.closeAndWait();
    });
  });

  it('a join by wsId while the replay waits for the client: one joined after resumed, then the pushes to the room accepted after the join, each once', async () => {
    await withServer({}, async (server) => {
      const { client, since } = await awayMember(server, ['stay']);
      const missed = await pushToRoom(server.logicUrl, 'stay', 200, 1, LARGE_VAL);
      const again = await stalledResume(server, client, since, ['stay']);
      const joined = await post(server.logicUrl, '/room/join', { id: 'late', wsId: client.wsId });
      assert.deepEqual(joined.body.data?.changed, true, joined.text);
      const after = await post(server.logicUrl, '/push/room', { val: 'after the join', tag: 3, id: 'late' });
      assert.equal(await resumesEnded(server), 0, 'the join and the push came while the replay waited for the client');
      again.ws.resume();
      await again.collect((f) => f.op === 'resumed', 1, 15_000);
      await again.ping();
      const got = again.frames.map(shown);
      assert.deepEqual(got, [...missed.map((seq) => `push stay ${seq}`), 'resumed', 'joined late', `push late ${after.body.data?.seq}`]);
      assert.equal(again.frames.find((f) => f.op === 'resumed')?.recovered, true);
      await again.closeAndWait();
    });
  });
});
