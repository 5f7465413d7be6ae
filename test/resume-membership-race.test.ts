/** Joins and leaves by wsId that land while a resume replays (PROTOCOL.md §4): each membership frame once, no push after its `left`. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { TestClient, isPush, type Frame } from './helpers/client.js';
import { post } from './helpers/http.js';
import { pushToRoom } from './helpers/pushes.js';
import { awayMember } from './helpers/resume.js';
import { withServer } from './helpers/server.js';

/** Large pushes: 200 of them pass what the kernel buffers for a client that stops reading, so the replay waits for it. */
const LARGE_VAL = 'v'.repeat(40 * 1024);

const shown = (f: Frame): string => (isPush(f) ? `push ${f.room ?? '*'} ${f.seq}` : `${f.op} ${f.room ?? ''}`.trim());

/** A new connection that sends the resume and stops reading: the replay waits for it. */
async function stalledResume(gatewayUrl: string, client: TestClient, since: unknown): Promise<TestClient> {
  const again = await TestClient.connect(gatewayUrl, { quiet: true });
  again.ws.pause();
  again.send({ op: 'resume', token: client.welcome!.resume, since, id: 1 });
  await sleep(300);
  return again;
}

describe('membership changes by wsId during a resume', () => {
  it('a leave by wsId while the replay waits for the client: every missed push once, then resumed, then one left, and nothing of the room after it', async () => {
    await withServer({}, async (server) => {
      const { client, since } = await awayMember(server, ['stay', 'quit']);
      const missed = await pushToRoom(server.logicUrl, 'quit', 200, 1, LARGE_VAL);
      const again = await stalledResume(server.gatewayUrl, client, since);
      const left = await post(server.logicUrl, '/room/leave', { id: 'quit', wsId: client.wsId });
      assert.deepEqual(left.body.data?.changed, true, left.text);
      const after = await post(server.logicUrl, '/push/room', { val: 'after the leave', tag: 3, id: 'quit' });
      assert.equal(after.status, 200);
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
      const again = await stalledResume(server.gatewayUrl, client, since);
      const joined = await post(server.logicUrl, '/room/join', { id: 'late', wsId: client.wsId });
      assert.deepEqual(joined.body.data?.changed, true, joined.text);
      const after = await post(server.logicUrl, '/push/room', { val: 'after the join', tag: 3, id: 'late' });
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
