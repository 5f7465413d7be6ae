/**
 * A room the session left (by wsId) while its client was away, after pushes the client never got: the resume
 * must not say recovered:true without them (found by bench/soak.ts: a slow consumer closed with 4000 lost
 * the pushes its queue held, was made to leave the room, and resumed with recovered:true).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPush } from './helpers/client.js';
import { post } from './helpers/http.js';
import { processClusterPerSuite } from './helpers/process.js';
import { skipWithoutRedis } from './helpers/redis.js';
import { assertResumed, awayMember, resumeOn } from './helpers/resume.js';
import { withServer } from './helpers/server.js';

async function leftWhileAway(server: { gatewayUrl: string; logicUrl: string }, resumeUrl: string): Promise<void> {
  const { client, since } = await awayMember(server, ['stay', 'quit']);
  const missed = await post(server.logicUrl, '/push/room', { val: 'missed while a member', tag: 2, id: 'quit' });
  assert.equal(missed.status, 200, missed.text);
  const left = await post(server.logicUrl, '/room/leave', { id: 'quit', wsId: client.wsId });
  assert.equal(left.body.data?.changed, true, left.text);
  const { client: again, frames, end } = await resumeOn(resumeUrl, client.welcome!.resume as string, since);
  try {
    const replayed = frames.some((f) => isPush(f) && f.room === 'quit' && f.seq === missed.body.data?.seq);
    // either the push accepted while it was a member comes back, or the resume owns up to the loss
    if (!replayed) assertResumed(end, { wsId: client.wsId, recovered: false });
    assert.ok(!(await again.ping().then(() => again.frames)).some((f) => isPush(f) && f.room === 'quit'), 'no push of the room after its left frame');
  } finally {
    await again.closeAndWait();
  }
}

describe('resume of a session that left a room while away', () => {
  it('memory engine: the push the client missed before the leave is replayed, or recovered:false', async () => {
    await withServer({}, (server) => leftWhileAway(server, server.gatewayUrl));
  });

  describe('real processes on Redis', { skip: skipWithoutRedis }, () => {
    const cluster = processClusterPerSuite();
    it('resumed on the other gateway: the missed push is replayed, or recovered:false', async () => {
      await leftWhileAway({ gatewayUrl: cluster.gateways[0].gatewayUrl, logicUrl: cluster.logic.logicUrl }, cluster.gateways[1].gatewayUrl);
    });
    it('resumed on the same gateway: the missed push is replayed, or recovered:false', async () => {
      await leftWhileAway({ gatewayUrl: cluster.gateways[0].gatewayUrl, logicUrl: cluster.logic.logicUrl }, cluster.gateways[0].gatewayUrl);
    });
  });
});
