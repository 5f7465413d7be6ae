import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { TestClient, isPush } from './helpers/client.js';
import { call, post } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';
import { serverPerSuite, withServer } from './helpers/server.js';
import { stallFor, within } from './helpers/until.js';

describe('slow consumers', () => {
  const server = serverPerSuite();

  it('closes a client that stopped reading with 4000 and never delays the healthy member or a push call', async () => {
    const healthy = await TestClient.connect(server.gatewayUrl);
    const slow = await RawClient.connect(server.gatewayUrl);
    const slowId = await slow.welcome();
    await post(server.logicUrl, '/room/join', { id: 'busy', wsId: healthy.wsId });
    await post(server.logicUrl, '/room/join', { id: 'busy', wsId: slowId });
    slow.socket.pause();

    const val = 'x'.repeat(4096);
    let slowestPushMs = 0;
    let next = 0;
    const pusher = async (): Promise<void> => {
      while (next < 2000) {
        next++;
        const started = performance.now();
        const answer = await post(server.logicUrl, '/push/room', { val, tag: 2, id: 'busy' });
        slowestPushMs = Math.max(slowestPushMs, performance.now() - started);
        assert.equal(answer.status, 200);
      }
    };
    await Promise.all(Array.from({ length: 8 }, pusher));

    const received = await healthy.collect(isPush, 2000, 30_000);
    assert.equal(received.length, 2000);
    assert.deepEqual(
      received.map((f) => f.seq),
      Array.from({ length: 2000 }, (_, i) => i + 1),
    );
    assert.ok(slowestPushMs < 1000, `slowest push call took ${slowestPushMs.toFixed(0)} ms`);

    slow.socket.resume();
    await within(slow.ended, 30_000, 'the server to close the slow consumer');
    assert.equal(slow.closeCode, 4000);
    const stats = await call(server.logicUrl, '/stats');
    assert.equal(stats.body.data?.slowConsumerCloses, 1);
    const room = await call(server.logicUrl, '/rooms/busy');
    assert.deepEqual(room.body.data?.wsIds, [healthy.wsId]);
    await healthy.closeAndWait();
  });
});

describe('a push larger than --send-buffer-limit', () => {
  // 20,000 control characters: JSON escapes each in 6 bytes, a frame of some 120 KB against a limit of 16 KiB
  const escapedVal = '\u0001'.repeat(20_000);
  const server = serverPerSuite({ sendBufferLimit: 16 * 1024, maxValSize: 20_000 });

  it('reaches a client that reads, one at a time, without closing it as a slow consumer', async () => {
    const reader = await TestClient.connect(server.gatewayUrl);
    await post(server.logicUrl, '/room/join', { id: 'big', wsId: reader.wsId });
    for (let i = 1; i <= 3; i++) {
      assert.equal((await post(server.logicUrl, '/push/room', { val: escapedVal, tag: 2, id: 'big' })).status, 200);
      const push = await reader.next((f) => isPush(f) && f.seq === i);
      assert.equal(push.data, escapedVal);
    }
    assert.equal(await reader.closeCode(200), 'still open');
    assert.equal((await call(server.logicUrl, '/stats')).body.data?.slowConsumerCloses, 0);
    await reader.closeAndWait();
  });

  it("lets a newcomer's held pushes go before they pass it: a client that reads and sends nothing (the seed's) is not closed for 6 pushes of 4 KB in its first second", async () => {
    const seedClient = await TestClient.connect(server.gatewayUrl, { quiet: true });
    const val = 'x'.repeat(4000);
    for (let i = 0; i < 6; i++) assert.equal((await post(server.logicUrl, '/push/all', { val, tag: 2 })).status, 200);
    const pushes = await seedClient.collect(isPush, 6, 10_000);
    assert.deepEqual(
      pushes.map((f) => f.data === val),
      Array(6).fill(true),
    );
    assert.equal(await seedClient.closeCode(200), 'still open');
    await seedClient.closeAndWait();
  });

  it('still closes a client that stopped reading with 4000 once a frame waits behind it', async () => {
    const slowCloses = async (): Promise<unknown> => (await call(server.logicUrl, '/stats')).body.data?.slowConsumerCloses;
    const before = (await slowCloses()) as number;
    const slow = await RawClient.connect(server.gatewayUrl);
    await post(server.logicUrl, '/room/join', { id: 'stalled', wsId: await slow.welcome() });
    slow.socket.pause();
    for (let i = 0; i < 200 && (await slowCloses()) === before; i++) {
      await post(server.logicUrl, '/push/room', { val: escapedVal, tag: 2, id: 'stalled' });
    }
    assert.equal(await slowCloses(), before + 1);
    slow.socket.resume();
    await within(slow.ended, 30_000, 'the server to close the client that stopped reading');
    assert.equal(slow.closeCode, 4000);
  });
});

describe('handshakes', () => {
  const server = serverPerSuite();

  it('completes 300 concurrent handshakes, each with its own wsId', async () => {
    const clients = await Promise.all(Array.from({ length: 300 }, () => TestClient.connect(server.gatewayUrl)));
    assert.equal(new Set(clients.map((c) => c.wsId)).size, 300);
    const stats = await call(server.logicUrl, '/stats');
    assert.equal(stats.body.data?.connections, 300);
    await post(server.logicUrl, '/push/all', { val: 'all of you', tag: 4 });
    for (const c of clients) assert.equal((await c.next(isPush)).data, 'all of you');
    await Promise.all(clients.map((c) => c.closeAndWait()));
  });

  it('refuses an upgrade on another path with 404', async () => {
    assert.equal(await refusedUpgrade(server.gatewayUrl.replace('/connect', '/elsewhere')), 404);
  });

  it('serves the endpoint on the path --ws-path names, and refuses /connect then', async () => {
    await withServer({ wsPath: '/push/ws' }, async (moved) => {
      assert.equal(new URL(moved.gatewayUrl).pathname, '/push/ws');
      const client = await TestClient.connect(moved.gatewayUrl);
      assert.deepEqual(await client.ping(), { type: 1, data: 'PONG' });
      assert.equal(await refusedUpgrade(moved.gatewayUrl.replace('/push/ws', '/connect')), 404);
      await client.closeAndWait();
    });
  });
});

/** The HTTP status an upgrade request to `url` is refused with. */
async function refusedUpgrade(url: string): Promise<number> {
  const ws = new WebSocket(url);
  const refused = new Promise<number>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => undefined);
  });
  return within(refused, 20_000, `the answer to an upgrade on ${new URL(url).pathname}`);
}

describe('heartbeat', () => {
  const server = serverPerSuite({ heartbeatTimeout: 300 });

  it('closes a client silent for the heartbeat timeout with 4002', async () => {
    const silent = await TestClient.connect(server.gatewayUrl);
    const started = Date.now();
    const closed = await silent.closedWithin();
    assert.equal(closed.code, 4002);
    assert.ok(Date.now() - started >= 250, 'closed before the timeout');
    const stats = await call(server.logicUrl, '/stats');
    assert.equal(stats.body.data?.heartbeatTimeouts, 1);
  });

  it("keeps a client whose PING arrived while the server's process was stalled longer than the timeout", async () => {
    const client = await TestClient.connect(server.gatewayUrl);
    client.send({ type: 1, data: 'PING' });
    // the PING is on its way; the process is busy for 600 ms, twice the timeout, before it reads it
    stallFor(600);
    assert.deepEqual(await client.next((f) => f.type === 1), { type: 1, data: 'PONG' });
    assert.equal(await client.closeCode(150), 'still open');
    await client.closeAndWait();
  });

  it('keeps a client that pings, or answers protocol pings, alive', async () => {
    const pinging = await TestClient.connect(server.gatewayUrl);
    const protocolPonger = await TestClient.connect(server.gatewayUrl);
    for (let i = 0; i < 8; i++) {
      await sleep(100);
      pinging.send({ type: 1, data: 'PING' });
      protocolPonger.ws.pong();
    }
    assert.equal(pinging.ws.readyState, WebSocket.OPEN);
    assert.equal(protocolPonger.ws.readyState, WebSocket.OPEN);
    await Promise.all([pinging.closeAndWait(), protocolPonger.closeAndWait()]);
  });

  it('counts any frame as life, not only PING: ignored, unknown, refused and malformed frames keep a client open; the welcome names the timeout', async () => {
    const client = await TestClient.connect(server.gatewayUrl);
    assert.equal(client.welcome?.heartbeat, 300);
    const lifeSigns: unknown[] = [{ type: 5, data: 'ignored' }, { op: 'dance' }, { op: 'join', room: 'r' }, 'not json'];
    for (let i = 0; i < 8; i++) {
      await sleep(100);
      client.send(lifeSigns[i % lifeSigns.length]);
    }
    assert.equal(client.ws.readyState, WebSocket.OPEN, 'closed although a frame came every 100 ms');
    assert.equal(client.frames.filter((f) => f.type === 1).length, 0, 'no PING was sent');
    assert.equal((await client.closedWithin()).code, 4002, 'the same client silent from then on is closed');
  });
});

describe('inbound limits', () => {
  const server = serverPerSuite({ maxPayload: 1024 });

  it('closes a client whose message is over --max-payload with 1009', async () => {
    const client = await TestClient.connect(server.gatewayUrl);
    client.send({ type: 1, data: 'x'.repeat(2000) });
    assert.equal(await client.closeCode(20_000), 1009);
  });

  it('applies the limit to a whole message reassembled from fragments', async () => {
    const raw = await RawClient.connect(server.gatewayUrl);
    raw.sendFrame(0x1, '{"type":1,"data":"' + 'y'.repeat(600), false);
    raw.sendFrame(0x0, 'y'.repeat(600) + '"}', true);
    await within(raw.ended, 20_000, 'the server to close the connection whose message passed the limit');
    assert.equal(raw.closeCode, 1009);
  });

  it('answers text that is not a JSON object with bad_frame errors, and closes with 4004 after more than 10 in 10 s', async () => {
    const client = await TestClient.connect(server.gatewayUrl);
    const garbage = ['not json', '[1,2]', '42', 'null', '"str"', '{bad', '', 'true', '{"a":', '}{'];
    for (const text of garbage) client.send(text);
    const errors = await client.collect((f) => f.op === 'error', 10);
    for (const e of errors) assert.equal(e.code, 'bad_frame');
    assert.deepEqual(await client.ping(), { type: 1, data: 'PONG' });
    client.send('one too many');
    assert.equal(await client.closeCode(20_000), 4004);
    const stats = await call(server.logicUrl, '/stats');
    assert.equal(stats.body.data?.malformedCloses, 1);
  });

  it('counts one close for a client whose bad frames go on past the one that closed it (one write of 15)', async () => {
    const closes = async (): Promise<number> => (await call(server.logicUrl, '/stats')).body.data?.malformedCloses as number;
    const before = await closes();
    const raw = await RawClient.connect(server.gatewayUrl);
    await raw.welcome();
    raw.sendTexts(Array.from({ length: 15 }, () => 'bad'));
    await within(raw.ended, 20_000, 'the server to close the client with 4004');
    assert.equal(raw.closeCode, 4004);
    assert.equal(await closes(), before + 1);
  });

  it('counts malformed frames in a sliding 10 s window: 11 within any 10 s close with 4004, even across the 10 s mark', async () => {
    const client = await TestClient.connect(server.gatewayUrl);
    client.send('bad');
    // wait 9.5 s, pinging so the heartbeat timeout stays away
    for (let waited = 0; waited < 9500; waited += 1900) {
      await sleep(1900);
      await client.ping();
    }
    for (let i = 0; i < 9; i++) client.send('bad');
    assert.equal((await client.collect((f) => f.code === 'bad_frame', 10)).length, 10);
    assert.deepEqual(await client.ping(), { type: 1, data: 'PONG' }, '10 within 10 s is not more than the limit');
    await sleep(700);
    // the first bad frame is now over 10 s old: a window that resets would let all 10 of these through
    for (let i = 0; i < 10; i++) client.send('bad');
    assert.equal(await client.closeCode(20_000), 4004);
    assert.ok(client.frames.filter((f) => f.code === 'bad_frame').length < 20, 'closed before the second burst was all answered');
  });
});
