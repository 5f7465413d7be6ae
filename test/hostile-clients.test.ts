/** What clients that bend the protocol's edges get from the gateway, over real sockets. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient, isPush } from './helpers/client.js';
import { post } from './helpers/http.js';
import { dropConnection } from './helpers/resume.js';
import { serverPerSuite } from './helpers/server.js';

describe('room ids that name Object.prototype members', () => {
  const server = serverPerSuite({ resumeSecret: 'test-secret' });

  for (const room of ['__proto__', 'constructor']) {
    it(`a session in room ${room} resumes it: replayed, and named in the resumed frame's streams`, async () => {
      const client = await TestClient.connect(server.gatewayUrl);
      assert.equal((await post(server.logicUrl, '/room/join', { id: room, wsId: client.wsId })).status, 200);
      const joined = await client.next((f) => f.op === 'joined' && f.room === room);
      const all = { seq: client.welcome!.seq, epoch: client.welcome!.epoch };
      await dropConnection(server, client);
      const seqs: unknown[] = [];
      for (let i = 0; i < 3; i++) seqs.push((await post(server.logicUrl, '/push/room', { val: `m${i}`, tag: 3, id: room })).body.data?.seq);

      const again = await TestClient.connect(server.gatewayUrl, { quiet: true });
      // written as text: an object literal would take "__proto__" as its prototype, not as a field
      again.send(
        `{"op":"resume","token":${JSON.stringify(client.welcome!.resume)},"since":{"*":${JSON.stringify(all)},` +
          `${JSON.stringify(room)}:{"seq":${joined.seq as number},"epoch":${JSON.stringify(joined.epoch)}}}}`,
      );
      const end = await again.next((f) => f.op === 'resumed' || f.op === 'error');
      assert.equal(end.op, 'resumed', JSON.stringify(end));
      assert.equal(end.recovered, true);
      assert.deepEqual(
        again.frames.filter(isPush).map((f) => f.seq),
        seqs,
      );
      const streams = end.streams as Record<string, unknown>;
      assert.ok(Object.hasOwn(streams, room), `streams names ${Object.keys(streams).join(', ')}, not ${room}`);
      assert.deepEqual(streams[room], { seq: seqs.at(-1), epoch: joined.epoch });
      await again.closeAndWait();
    });
  }
});
