/** What clients that bend the protocol's edges get from the gateway, over real sockets. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient, isPush } from './helpers/client.js';
import { post } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';
import { dropConnection } from './helpers/resume.js';
import { serverPerSuite } from './helpers/server.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';
import { until } from './helpers/until.js';

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

describe('auth frames sent before the welcome (--auth required)', () => {
  const server = serverPerSuite({ auth: 'required', jwtSecret: JWT_SECRET });

  it('a second one that fails, once the first let the connection in, is answered forbidden like any refresh: the connection stays', async () => {
    const [good, other] = await Promise.all([signToken({ sub: 'alice' }), signToken({ sub: 'bob' })]);
    for (const bad of ['not-a-jwt', other]) {
      const client = await RawClient.connect(server.gatewayUrl);
      client.sendTexts([JSON.stringify({ op: 'auth', token: good, id: 1 }), JSON.stringify({ op: 'auth', token: bad, id: 2 })]);
      await client.welcome();
      await until('an answer to the second auth frame', () => (client.json().some((f) => f.id === 2) || client.closeCode !== undefined ? true : undefined));
      assert.equal(client.closeCode, undefined, `closed with ${client.closeCode} for the second auth frame (${bad})`);
      const answers = client.json().filter((f) => f.id !== undefined);
      assert.deepEqual(
        answers.map((f) => [f.id, f.op, f.code]),
        [
          [1, 'reply', undefined],
          [2, 'error', 'forbidden'],
        ],
      );
      client.sendText('{"type":1,"data":"PING"}');
      await until('a PONG after the refused auth frame', () => (client.json().some((f) => f.data === 'PONG') ? true : undefined));
      client.socket.destroy();
    }
  });
});
