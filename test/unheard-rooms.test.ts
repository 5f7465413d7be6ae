/**
 * A resume whose session is in rooms its client never heard it joined (no
 * `joined` frame reached the client, so its `since` does not name them):
 * joined by wsId while the session was away, or while its old connection was
 * still open on the server but no longer reaching the client (a takeover).
 * PROTOCOL.md §4: the client gets every message it missed, in order, and
 * `recovered:true` when nothing was lost, so each such room is announced and
 * replayed from the moment the session joined it.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { isPush, type Frame } from './helpers/client.js';
import { post } from './helpers/http.js';
import { onEachEngine } from './helpers/engine-suite.js';
import { dropConnection, member, resumeOn, type Position } from './helpers/resume.js';

/** Each frame as one line: `joined room seq`, `push room seq`, `left room`. */
function ops(frames: Frame[]): string[] {
  return frames.map((f) => (f.op === undefined ? `push ${f.room ?? '*'} ${f.seq}` : `${f.op} ${f.room} ${f.seq ?? ''}`.trim()));
}

async function pushTo(logicUrl: string, room: string, val: string): Promise<number> {
  const answer = await post(logicUrl, '/push/room', { val, tag: 2, id: room });
  assert.equal(answer.status, 200, answer.text);
  return answer.body.data?.seq as number;
}

onEachEngine('rooms the client never heard it joined', 2, (suite) => {
  const nodeA = (): { gatewayUrl: string; logicUrl: string } => ({ gatewayUrl: suite.cluster.gatewayUrls[0], logicUrl: suite.cluster.logicUrl });

  it('joined by wsId while away: announced with its join position and replayed from it on another node, recovered:true', async () => {
    const { client, since } = await member(nodeA(), ['away-known']);
    await dropConnection(suite.cluster, client);
    const before = await pushTo(suite.cluster.logicUrl, 'away-new', 'before the join');
    assert.equal((await post(suite.cluster.logicUrl, '/room/join', { id: 'away-new', wsId: client.wsId })).body.data?.changed, true);
    const missed = [await pushTo(suite.cluster.logicUrl, 'away-new', 'n1'), await pushTo(suite.cluster.logicUrl, 'away-known', 'k1'), await pushTo(suite.cluster.logicUrl, 'away-new', 'n2')];

    const { client: again, frames, end } = await resumeOn(suite.cluster.gatewayUrls[1], client.welcome!.resume as string, since);
    assert.equal(end.op, 'resumed', JSON.stringify(end));
    assert.deepEqual(ops(frames), [`joined away-new ${before}`, `push away-new ${missed[0]}`, `push away-known ${missed[1]}`, `push away-new ${missed[2]}`]);
    assert.equal(end.recovered, true);
    assert.deepEqual((end.streams as Record<string, Position>)['away-new'].seq, missed[2]);
    await again.closeAndWait();
  });

  it('joined by wsId while its old connection was open but cut off (a takeover on another node): announced and replayed from the join, recovered:true', async () => {
    const { client: old, since } = await member(nodeA(), ['open-known']);
    // the server still sees the old connection: the joined frame and the pushes go to it, and never reach the client
    const before = await pushTo(suite.cluster.logicUrl, 'open-new', 'before the join');
    assert.equal((await post(suite.cluster.logicUrl, '/room/join', { id: 'open-new', wsId: old.wsId })).body.data?.changed, true);
    const missed = [await pushTo(suite.cluster.logicUrl, 'open-new', 'n1'), await pushTo(suite.cluster.logicUrl, 'open-known', 'k1'), await pushTo(suite.cluster.logicUrl, 'open-new', 'n2')];

    const { client: again, frames, end } = await resumeOn(suite.cluster.gatewayUrls[1], old.welcome!.resume as string, since);
    assert.equal(end.op, 'resumed', JSON.stringify(end));
    assert.equal(await old.closeCode(20_000), 4500);
    assert.deepEqual(ops(frames), [`joined open-new ${before}`, `push open-new ${missed[0]}`, `push open-known ${missed[1]}`, `push open-new ${missed[2]}`]);
    assert.equal(end.recovered, true);
    assert.deepEqual((end.streams as Record<string, Position>)['open-new'].seq, missed[2]);
    const live = await pushTo(suite.cluster.logicUrl, 'open-new', 'live');
    assert.equal((await again.next(isPush)).seq, live);
    await again.closeAndWait();
  });

  it('a takeover of a session that took over another one replays a room the first resume announced but the client never got', async () => {
    const { client: old, since } = await member(nodeA(), []);
    await dropConnection(suite.cluster, old);
    const before = await pushTo(suite.cluster.logicUrl, 'twice', 'before the join');
    assert.equal((await post(suite.cluster.logicUrl, '/room/join', { id: 'twice', wsId: old.wsId })).body.data?.changed, true);
    const first = await pushTo(suite.cluster.logicUrl, 'twice', 't1');
    // the first resume announces the room, but its frames never reach the client: it resumes again, from the same since
    const { client: lost, end: lostEnd } = await resumeOn(suite.cluster.gatewayUrls[1], old.welcome!.resume as string, since);
    assert.equal(lostEnd.recovered, true);
    const second = await pushTo(suite.cluster.logicUrl, 'twice', 't2');
    const { client: again, frames, end } = await resumeOn(suite.cluster.gatewayUrls[0], old.welcome!.resume as string, since);
    assert.equal(await lost.closeCode(20_000), 4500);
    assert.deepEqual(ops(frames), [`joined twice ${before}`, `push twice ${first}`, `push twice ${second}`]);
    assert.equal(end.recovered, true);
    await again.closeAndWait();
  });
});
