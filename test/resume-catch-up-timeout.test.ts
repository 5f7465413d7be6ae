/** A resume whose replay is ahead of its node for longer than the node waits for it (PROTOCOL.md §4: no duplicates). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient, isPush } from './helpers/client.js';
import { post } from './helpers/http.js';
import { skipWithoutRedis } from './helpers/redis.js';
import { withNodeBehind } from './helpers/subscriber-away.js';

describe('resume ahead of its node past the catch-up wait', () => {
  it('on Redis, with the subscriber cut past the 2 s the resume waits for its node: resumed comes after the wait, and the replayed pushes the node fans out later do not reach the client again', { skip: skipWithoutRedis }, async () => {
    await withNodeBehind(async ({ cluster, gatewayUrl, client, since, stays, missed, admitClients }) => {
      const again = await TestClient.connect(gatewayUrl, { quiet: true });
      again.send({ op: 'resume', token: client.welcome!.resume, since, id: 1 });
      const end = await again.next((f) => f.op === 'resumed', 5000);
      assert.equal(end.recovered, true);
      await admitClients();
      // the node reads its gap from history and fans the 5 out to its members: the other member gets them once
      assert.deepEqual((await stays.collect(isPush, 5, 10_000)).map((f) => f.seq), missed);
      const live = await post(cluster.logicUrl, '/push/room', { val: 'live', tag: 2, id: 'behind' });
      // a push after it marks the end: a push fanned out again would come before it
      const marker = await post(cluster.logicUrl, '/push/room', { val: 'marker', tag: 2, id: 'behind' });
      await again.collect((f) => f.data === 'marker', 1, 10_000);
      assert.deepEqual(
        again.frames.filter(isPush).map((f) => f.seq),
        [...missed, live.body.data?.seq, marker.body.data?.seq],
        'the replay, then live pushes, nothing twice',
      );
      await Promise.all([again.closeAndWait(), stays.closeAndWait()]);
    });
  });
});
