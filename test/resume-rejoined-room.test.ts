/**
 * A room the session left and joined again (by wsId) while its client was away: the resume replays the room
 * from that join (REFERENCE.md §7: "a room joined while away is replayed from the moment it was joined"), not
 * from the client's position, which would hand it a push made while the session was out of the room (found by
 * bench/soak.ts --engine memory: a client that stopped reading, dropped, was made to leave and rejoin a room).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPush } from './helpers/client.js';
import { post } from './helpers/http.js';
import { processClusterPerSuite } from './helpers/process.js';
import { skipWithoutRedis } from './helpers/redis.js';
import { awayMember, resumeOn } from './helpers/resume.js';
import { withServer } from './helpers/server.js';

async function rejoinedWhileAway(server: { gatewayUrl: string; logicUrl: string }, resumeUrl: string): Promise<void> {
  const { client, since } = await awayMember(server, ['back']);
  const left = await post(server.logicUrl, '/room/leave', { id: 'back', wsId: client.wsId });
  assert.equal(left.body.data?.changed, true, left.text);
  const whileOut = await post(server.logicUrl, '/push/room', { val: 'while out of the room', tag: 2, id: 'back' });
  assert.equal(whileOut.status, 200, whileOut.text);
  const joined = await post(server.logicUrl, '/room/join', { id: 'back', wsId: client.wsId });
  assert.equal(joined.body.data?.changed, true, joined.text);
  const afterJoin = await post(server.logicUrl, '/push/room', { val: 'after the join', tag: 2, id: 'back' });
  assert.equal(afterJoin.status, 200, afterJoin.text);
  const { client: again, frames, end } = await resumeOn(resumeUrl, client.welcome!.resume as string, since);
  try {
    assert.equal(end.op, 'resumed', JSON.stringify(end));
    const all = [...frames, ...(await again.ping().then(() => again.frames))];
    const vals = all.filter((f) => isPush(f) && f.room === 'back').map((f) => f.data);
    assert.ok(!vals.includes('while out of the room'), `a push made while the session was out of the room reached it: ${JSON.stringify(vals)}`);
    assert.ok(vals.includes('after the join'), `the push after the join was not replayed: ${JSON.stringify(vals)}`);
  } finally {
    await again.closeAndWait();
  }
}

describe('resume of a session that left a room and joined it again while away', () => {
  it('memory engine: replayed from the join, without the push made while it was out', async () => {
    await withServer({}, (server) => rejoinedWhileAway(server, server.gatewayUrl));
  });

  describe('real processes on Redis', { skip: skipWithoutRedis }, () => {
    const cluster = processClusterPerSuite();
    it('resumed on the other gateway: replayed from the join, without the push made while it was out', async () => {
      await rejoinedWhileAway({ gatewayUrl: cluster.gateways[0].gatewayUrl, logicUrl: cluster.logic.logicUrl }, cluster.gateways[1].gatewayUrl);
    });
    it('resumed on the same gateway: replayed from the join, without the push made while it was out', async () => {
      await rejoinedWhileAway({ gatewayUrl: cluster.gateways[0].gatewayUrl, logicUrl: cluster.logic.logicUrl }, cluster.gateways[0].gatewayUrl);
    });
  });
});
