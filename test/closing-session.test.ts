/**
 * A connection the server is closing with a code that keeps its session (4000
 * here: the client stopped reading) is, to the logic API, a session away
 * (REFERENCE.md §7, "Sessions"): while the close handshake is under way a push to
 * it answers 200 `delivered:false` and `GET /conns/:wsId` says `away` with its
 * rooms, on both engines, rather than 404 (a wsId that is gone). Found by the soak
 * on the memory engine (bench/soak.ts --engine memory).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { onEachEngine } from './helpers/engine-suite.js';
import { call, post } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

const BIG_VAL = 'x'.repeat(16 * 1024);

onEachEngine('a connection being closed with 4000', 1, (suite) => {
  it('is a session away while its close handshake is under way: a push answers delivered:false, GET /conns says away', async () => {
    const { gatewayUrls, logicUrl } = suite.cluster;
    const slow = await RawClient.connect(gatewayUrls[0]);
    try {
      const wsId = await slow.welcome();
      assert.equal((await post(logicUrl, '/room/join', { id: 'closing-room', wsId })).status, 200);
      // it reads nothing from now on, so the close handshake the server starts cannot finish (until the server's grace ends it)
      slow.socket.pause();
      let answer = await post(logicUrl, '/push/conn', { wsId, val: BIG_VAL, tag: 2 });
      for (let i = 0; i < 2000 && answer.status === 200 && answer.body.data?.delivered === true; i++) {
        answer = await post(logicUrl, '/push/conn', { wsId, val: BIG_VAL, tag: 2 });
      }
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.body.data?.delivered, false, answer.text);
      const info = await call(logicUrl, `/conns/${wsId}`);
      assert.equal(info.status, 200, info.text);
      assert.equal(info.body.data?.state, 'away', info.text);
      assert.deepEqual(info.body.data?.rooms, ['closing-room'], info.text);
      assert.equal((await call(logicUrl, '/stats')).body.data?.slowConsumerCloses, 1);
    } finally {
      slow.socket.destroy();
    }
  });
}, { sendBufferLimit: 65536 });
