import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { TestClient, isPush, type Frame } from './helpers/client.js';
import { call, post, postJson } from './helpers/http.js';
import { parsePrometheus, valueOf } from './helpers/prometheus.js';
import { serverPerSuite } from './helpers/server.js';
import { until, untilLength, within } from './helpers/until.js';

describe('gateway frames', () => {
  const server = serverPerSuite();

  it('sends a welcome frame carrying the wsId in data and wsId', async () => {
    const client = await TestClient.connect(server.gatewayUrl);
    assert.match(client.wsId, /^[0-9a-f-]{36}$/);
    assert.equal(client.welcome?.data, client.wsId);
    await client.closeAndWait();
  });

  it('answers the seed heartbeat {"type":1,"data":"PING"} with {"type":1,"data":"PONG"}', async () => {
    const client = await TestClient.connect(server.gatewayUrl);
    assert.deepEqual(await client.ping('PING'), { type: 1, data: 'PONG' });
    assert.deepEqual(await client.ping('anything at all'), { type: 1, data: 'PONG' });
    assert.deepEqual(await client.ping(42), { type: 1, data: 'PONG' });
    await client.closeAndWait();
  });

  it('sends the welcome as the first frame: type 0, op, data = wsId, the heartbeat in ms, a resume token and where all stands', async () => {
    const ws = new WebSocket(server.gatewayUrl);
    const first = await within(
      new Promise<Frame>((resolve) => ws.once('message', (data: Buffer) => resolve(JSON.parse(data.toString()) as Frame))),
      20_000,
      'the first frame (the welcome)',
    );
    ws.close();
    assert.deepEqual(Object.keys(first).sort(), ['data', 'epoch', 'heartbeat', 'op', 'resume', 'seq', 'type', 'wsId']);
    assert.equal(first.type, 0);
    assert.equal(first.op, 'welcome');
    assert.equal(first.data, first.wsId);
    assert.equal(first.heartbeat, 10_000);
    assert.ok(String(first.resume).startsWith(`${first.wsId}.`));
    assert.equal(typeof first.epoch, 'string');
    assert.equal(typeof first.seq, 'number');
  });

  it('accepts a binary frame whose bytes are a JSON object', async () => {
    const client = await TestClient.connect(server.gatewayUrl);
    const pong = client.next((f) => f.type === 1);
    client.ws.send(Buffer.from('{"type":1,"data":"PING"}'), { binary: true });
    assert.deepEqual(await pong, { type: 1, data: 'PONG' });
    await client.closeAndWait();
  });

  it('answers a binary frame that is not UTF-8 with bad_frame, as a text frame is held to UTF-8 (1007), and goes on', async () => {
    const client = await TestClient.connect(server.gatewayUrl);
    const error = client.next((f) => f.type === 0 && f.op === 'error');
    // a room id with a byte no UTF-8 has: read with U+FFFD in its place it would be a bad room, not a bad frame
    client.ws.send(Buffer.concat([Buffer.from('{"op":"join","room":"a'), Buffer.from([0xff]), Buffer.from('"}')]), { binary: true });
    assert.deepEqual(await error, { type: 0, op: 'error', code: 'bad_frame', message: 'frame is not valid UTF-8: a binary frame must hold a JSON object in UTF-8' });
    const pong = client.next((f) => f.type === 1);
    client.send({ type: 1, data: 'PING' });
    assert.deepEqual(await pong, { type: 1, data: 'PONG' });
    await client.closeAndWait();
  });

  it('ignores a frame with no op and a type other than 1, and unknown fields', async () => {
    const client = await TestClient.connect(server.gatewayUrl);
    client.send({ type: 5, data: 'hello' });
    client.send({ type: 1, data: 'PING', extra: { nested: true } });
    assert.deepEqual(await client.next(() => true), { type: 1, data: 'PONG' });
    await client.closeAndWait();
  });

  it('delivers push/all with seq and no room, and push/room with room and seq', async () => {
    const a = await TestClient.connect(server.gatewayUrl);
    const joined = await post(server.logicUrl, '/room/join', { id: 'news', wsId: a.wsId });
    assert.equal(joined.status, 200);
    const joinedFrame = await a.next((f) => f.op === 'joined');
    assert.deepEqual(joinedFrame, { type: 0, op: 'joined', room: 'news', seq: 0, epoch: joinedFrame.epoch });
    assert.match(String(joinedFrame.epoch), /^[A-Za-z0-9_-]{8}$/);

    const all = await post(server.logicUrl, '/push/all', { val: 'to everyone', tag: 3 });
    const pushAll = await a.next(isPush);
    assert.deepEqual(pushAll, { type: 3, data: 'to everyone', seq: all.body.data?.seq });

    const room = await post(server.logicUrl, '/push/room', { val: 'to news', tag: 7, id: 'news' });
    assert.equal(room.body.data?.room, 'news');
    assert.deepEqual(await a.next(isPush), { type: 7, data: 'to news', room: 'news', seq: room.body.data?.seq });
    await a.closeAndWait();
  });

  it('push/conn reaches only that connection, with no room and no seq', async () => {
    const a = await TestClient.connect(server.gatewayUrl);
    const b = await TestClient.connect(server.gatewayUrl);
    const answer = await post(server.logicUrl, '/push/conn', { wsId: a.wsId, val: 'just you', tag: 9 });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body.data, { wsId: a.wsId, delivered: true });
    assert.deepEqual(await a.next(isPush), { type: 9, data: 'just you' });
    await b.ping();
    assert.equal(b.frames.filter(isPush).length, 0);
    await Promise.all([a.closeAndWait(), b.closeAndWait()]);
  });

  it('sends joined and left frames only when membership changes', async () => {
    const a = await TestClient.connect(server.gatewayUrl);
    assert.equal((await post(server.logicUrl, '/room/join', { id: 'r1', wsId: a.wsId })).body.data?.changed, true);
    assert.equal((await post(server.logicUrl, '/room/join', { id: 'r1', wsId: a.wsId })).body.data?.changed, false);
    assert.equal((await post(server.logicUrl, '/room/leave', { id: 'r1', wsId: a.wsId })).body.data?.changed, true);
    assert.equal((await post(server.logicUrl, '/room/leave', { id: 'r1', wsId: a.wsId })).body.data?.changed, false);
    await a.ping();
    const membership = a.frames.filter((f) => f.op === 'joined' || f.op === 'left').map((f) => `${f.op} ${f.room}`);
    assert.deepEqual(membership, ['joined r1', 'left r1']);
    await a.closeAndWait();
  });

  it('refuses client join and leave ops with forbidden unless --allow-client-join is set', async () => {
    const a = await TestClient.connect(server.gatewayUrl);
    a.send({ op: 'join', room: 'lobby', id: 1 });
    const error = await a.next((f) => f.op === 'error');
    assert.equal(error.code, 'forbidden');
    assert.equal(error.id, 1);
    assert.match(String(error.message), /--allow-client-join/);
    a.send({ op: 'leave', room: 'lobby', id: 'two' });
    assert.equal((await a.next((f) => f.op === 'error')).id, 'two');
    await a.closeAndWait();
  });

  it('answers an unknown op with unknown_op and keeps the connection', async () => {
    const a = await TestClient.connect(server.gatewayUrl);
    a.send({ op: 'dance', id: 5 });
    assert.deepEqual(await a.next((f) => f.op === 'error'), { type: 0, op: 'error', id: 5, code: 'unknown_op', message: 'unknown op "dance"' });
    assert.deepEqual(await a.ping(), { type: 1, data: 'PONG' });
    await a.closeAndWait();
  });

  it('kicks a connection with close code 4003 and answers 404 for it afterwards', async () => {
    const a = await TestClient.connect(server.gatewayUrl);
    const kicked = await post(server.logicUrl, '/conn/kick', { wsId: a.wsId });
    assert.deepEqual(kicked.body, { code: 0, msg: 'ok', data: { wsId: a.wsId, kicked: true } });
    assert.equal(await a.closeCode(20_000), 4003);
    const again = await post(server.logicUrl, '/conn/kick', { wsId: a.wsId });
    assert.equal(again.status, 404);
  });

  it('a kick within the first second, before the client has sent anything, still delivers what was pushed before it, then 4003', async () => {
    // until its first frame a client may still resume, so its live frames wait; the kick must not drop them
    const a = await TestClient.connect(server.gatewayUrl, { quiet: true });
    assert.equal((await post(server.logicUrl, '/room/join', { id: 'kick-early', wsId: a.wsId })).status, 200);
    assert.equal((await post(server.logicUrl, '/push/room', { id: 'kick-early', val: 'before the kick', tag: 3 })).status, 200);
    assert.equal((await post(server.logicUrl, '/push/all', { val: 'to all before the kick', tag: 4 })).status, 200);
    assert.equal((await post(server.logicUrl, '/conn/kick', { wsId: a.wsId })).status, 200);
    assert.equal(await a.closeCode(20_000), 4003);
    assert.deepEqual(
      a.frames.map((f) => f.op ?? f.data),
      ['joined', 'before the kick', 'to all before the kick'],
    );
  });

  it('removes a closed connection from every room at once', async () => {
    const a = await TestClient.connect(server.gatewayUrl);
    const b = await TestClient.connect(server.gatewayUrl);
    for (const id of ['x1', 'x2', 'x3']) {
      await post(server.logicUrl, '/room/join', { id, wsId: a.wsId });
      await post(server.logicUrl, '/room/join', { id, wsId: b.wsId });
    }
    await a.closeAndWait();
    for (const id of ['x1', 'x2', 'x3']) {
      const room = await fetch(`${server.logicUrl}/rooms/${id}`).then((r) => r.json() as Promise<{ data: { members: number; wsIds: string[] } }>);
      assert.equal(room.data.members, 1);
      assert.deepEqual(room.data.wsIds, [b.wsId]);
    }
    assert.equal((await post(server.logicUrl, '/room/join', { id: 'x1', wsId: a.wsId })).status, 404);
    await b.closeAndWait();
  });

  it('sends every frame as a text frame holding one JSON object: welcome, PONG, joined, pushes, left, error', async () => {
    const ws = new WebSocket(server.gatewayUrl);
    const received: { text: string; isBinary: boolean }[] = [];
    ws.on('message', (data: Buffer, isBinary: boolean) => received.push({ text: data.toString(), isBinary }));
    await within(new Promise((resolve) => ws.once('open', resolve)), 20_000, 'the handshake');
    await until('the welcome', () => received[0]);
    const wsId = (JSON.parse(received[0].text) as Frame).wsId as string;
    ws.send('{"type":1,"data":"PING"}');
    await untilLength('frames (the PONG)', received, 2);
    await post(server.logicUrl, '/room/join', { id: 'text-frames', wsId });
    await post(server.logicUrl, '/push/room', { val: 'to the room', tag: 2, id: 'text-frames' });
    await post(server.logicUrl, '/push/all', { val: 'to all', tag: 2 });
    await post(server.logicUrl, '/push/conn', { val: 'to you', tag: 2, wsId });
    await post(server.logicUrl, '/room/leave', { id: 'text-frames', wsId });
    ws.send('{"op":"dance"}');
    await untilLength('frames', received, 8);
    ws.close();
    const frames = received.map(({ text, isBinary }) => {
      assert.equal(isBinary, false, `sent as a binary frame: ${text}`);
      const frame = JSON.parse(text) as unknown;
      assert.ok(typeof frame === 'object' && frame !== null && !Array.isArray(frame), `not a JSON object: ${text}`);
      return frame as Frame;
    });
    assert.deepEqual(
      frames.map((f) => f.op ?? f.data),
      ['welcome', 'PONG', 'joined', 'to the room', 'to all', 'to you', 'left', 'error'],
    );
  });

  it('answers an op that had no id, and a frame that is not JSON, with an error frame that has no id', async () => {
    const a = await TestClient.connect(server.gatewayUrl);
    a.send({ op: 'dance' });
    assert.deepEqual(await a.next((f) => f.op === 'error'), { type: 0, op: 'error', code: 'unknown_op', message: 'unknown op "dance"' });
    a.send('not json');
    const badFrame = await a.next((f) => f.op === 'error');
    assert.deepEqual(Object.keys(badFrame).sort(), ['code', 'message', 'op', 'type']);
    assert.equal(badFrame.code, 'bad_frame');
    assert.equal(badFrame.type, 0);
    a.send({ op: 'join', room: 'no-id' });
    assert.deepEqual(Object.keys(await a.next((f) => f.op === 'error')).sort(), ['code', 'message', 'op', 'type']);
    await a.closeAndWait();
  });

  it('takes tags from 2 to 2147483647 and room ids of 128 characters of the whole alphabet; the joined seq is the room\'s last', async () => {
    const a = await TestClient.connect(server.gatewayUrl);
    const room = 'Az09_.:@-'.repeat(15).slice(0, 127) + 'z';
    assert.equal(room.length, 128);
    const pushed = await post(server.logicUrl, '/push/room', { val: 'before anyone', tag: 2, id: room });
    assert.equal(pushed.status, 200, pushed.text);
    assert.deepEqual(Object.keys(pushed.body.data ?? {}).sort(), ['id', 'room', 'seq']);
    assert.equal(pushed.body.data?.room, room);
    assert.equal((await post(server.logicUrl, '/room/join', { id: room, wsId: a.wsId })).status, 200);
    const joined = await a.next((f) => f.op === 'joined');
    assert.deepEqual(joined, { type: 0, op: 'joined', room, seq: pushed.body.data?.seq, epoch: joined.epoch });
    for (const tag of [2, 2147483647]) {
      const answer = await postJson(server.logicUrl, '/push/room', { val: `tag ${tag}`, tag, id: room });
      assert.equal(answer.status, 200, answer.text);
      assert.deepEqual(await a.next(isPush), { type: tag, data: `tag ${tag}`, room, seq: answer.body.data?.seq });
    }
    assert.equal(a.frames.filter((f) => f.data === 'before anyone').length, 0, 'a push to a room with no members reaches no one');
    await a.closeAndWait();
  });

  it('takes an inbound message of exactly 64 KiB by default, and closes one a byte over with 1009', async () => {
    const a = await TestClient.connect(server.gatewayUrl);
    const frameOf = (bytes: number): string => {
      const shell = '{"type":1,"data":""}';
      return `{"type":1,"data":"${'x'.repeat(bytes - shell.length)}"}`;
    };
    assert.equal(Buffer.byteLength(frameOf(64 * 1024)), 64 * 1024);
    const pong = a.next((f) => f.type === 1);
    a.send(frameOf(64 * 1024));
    assert.deepEqual(await pong, { type: 1, data: 'PONG' });
    a.send(frameOf(64 * 1024 + 1));
    assert.equal(await a.closeCode(20_000), 1009);
  });

  it("reports the p99 of the event loop's delay over the last 10 s to every scrape alike: reading it does not reset it", async () => {
    const delay = async (): Promise<number> => {
      const res = await fetch(`${server.logicUrl}/metrics`);
      return valueOf(parsePrometheus(await res.text()), 'roomcast_node_event_loop_delay_p99_seconds');
    };
    await delay();
    // the event loop stalls 40 ms at a time for 1.5 s: far more than 1% of its turns in any 10 s
    const stallsEnd = Date.now() + 1500;
    while (Date.now() < stallsEnd) {
      const stallEnd = Date.now() + 40;
      while (Date.now() < stallEnd) {
        // busy: nothing else runs
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    // at the latest once the window holding the stalls has closed
    await until('the stalls reported', async () => ((await delay()) >= 0.02 ? true : undefined), 12_000);
    const scrapes = [await delay(), await delay(), await delay()];
    assert.ok(
      scrapes.every((p99) => p99 >= 0.02),
      `every scrape sees the stalls: ${scrapes.join(', ')}`,
    );
  });
});

describe('client join (--allow-client-join)', () => {
  const server = serverPerSuite({ allowClientJoin: true });

  it('lets a client join and leave, with joined/left frames and replies echoing id', async () => {
    const a = await TestClient.connect(server.gatewayUrl);
    a.send({ op: 'join', room: 'lobby', id: 1 });
    const joined = await a.next((f) => f.op === 'joined');
    assert.deepEqual(joined, { type: 0, op: 'joined', room: 'lobby', seq: 0, epoch: joined.epoch });
    assert.deepEqual(await a.next((f) => f.op === 'reply'), { type: 0, op: 'reply', id: 1, room: 'lobby', changed: true });
    a.send({ op: 'join', room: 'lobby', id: 2 });
    assert.deepEqual(await a.next((f) => f.op === 'reply'), { type: 0, op: 'reply', id: 2, room: 'lobby', changed: false });

    await post(server.logicUrl, '/push/room', { val: 'hi', tag: 2, id: 'lobby' });
    assert.equal((await a.next(isPush)).data, 'hi');

    a.send({ op: 'leave', room: 'lobby', id: 3 });
    assert.deepEqual(await a.next((f) => f.op === 'left'), { type: 0, op: 'left', room: 'lobby' });
    assert.deepEqual(await a.next((f) => f.op === 'reply'), { type: 0, op: 'reply', id: 3, room: 'lobby', changed: true });
    await a.closeAndWait();
  });

  it('applies a leave sent right after a join of a room not open yet after the join: joined, left, and in no room', async () => {
    const a = await TestClient.connect(server.gatewayUrl);
    const rooms = Array.from({ length: 20 }, (_, i) => `opening-${i}`);
    for (const [i, room] of rooms.entries()) {
      a.send({ op: 'join', room, id: 2 * i });
      a.send({ op: 'leave', room, id: 2 * i + 1 });
    }
    const replies = await a.collect((f) => f.op === 'reply', 40);
    for (const [i, room] of rooms.entries()) {
      assert.deepEqual(replies.find((r) => r.id === 2 * i), { type: 0, op: 'reply', id: 2 * i, room, changed: true });
      assert.deepEqual(replies.find((r) => r.id === 2 * i + 1), { type: 0, op: 'reply', id: 2 * i + 1, room, changed: true }, `the leave of ${room}`);
    }
    const info = await call(server.logicUrl, `/conns/${a.wsId}`);
    assert.deepEqual(info.body.data?.rooms, []);
    for (const room of rooms) {
      const announced = a.frames.filter((f) => (f.op === 'joined' || f.op === 'left') && f.room === room).map((f) => f.op);
      assert.deepEqual(announced, ['joined', 'left'], room);
    }
    await a.closeAndWait();
  });

  it('answers a join with a missing or invalid room with bad_request naming room', async () => {
    const a = await TestClient.connect(server.gatewayUrl);
    a.send({ op: 'join', id: 1 });
    assert.deepEqual(await a.next((f) => f.op === 'error'), { type: 0, op: 'error', id: 1, code: 'bad_request', message: 'room is required' });
    a.send({ op: 'join', room: 'no spaces', id: 2 });
    const invalid = await a.next((f) => f.op === 'error');
    assert.equal(invalid.code, 'bad_request');
    assert.match(String(invalid.message), /^room must be/);
    a.send({ op: 'join', room: 12, id: 3 });
    assert.equal((await a.next((f) => f.op === 'reply')).room, '12');
    await a.closeAndWait();
  });
});

describe('delivery order', () => {
  const server = serverPerSuite();

  it('delivers 500 room pushes to 3 members in the order they were accepted', async () => {
    const members = await Promise.all([1, 2, 3].map(() => TestClient.connect(server.gatewayUrl)));
    for (const m of members) await post(server.logicUrl, '/room/join', { id: 'ordered', wsId: m.wsId });
    const seqs: number[] = [];
    // 10 pushes in flight at a time: the seq of each answer is its acceptance order
    for (let i = 0; i < 500; i += 10) {
      const batch = await Promise.all(
        Array.from({ length: 10 }, (_, j) => post(server.logicUrl, '/push/room', { val: `m${i + j}`, tag: 2, id: 'ordered' })),
      );
      for (const answer of batch) {
        assert.equal(answer.status, 200);
        seqs.push(answer.body.data?.seq as number);
      }
    }
    seqs.sort((x, y) => x - y);
    for (const m of members) {
      const got = await m.collect(isPush, 500);
      assert.deepEqual(
        got.map((f) => f.seq),
        seqs,
      );
      assert.equal(new Set(got.map((f) => f.data)).size, 500);
    }
    await Promise.all(members.map((m) => m.closeAndWait()));
  });
});
