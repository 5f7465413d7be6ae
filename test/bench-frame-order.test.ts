/**
 * The bench's completeness counts each push frame once per connection and
 * flags frames that came twice, out of order, without a seq or to the wrong
 * room: its own client code, in its own worker process, against servers that
 * send such frames, and a whole run against roomcast made to send them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClientProtocol, ConnectOrder } from '../bench/messages.js';
import { speedChecks } from '../bench/report.js';
import { tallyFrames } from '../bench/tally.js';
import { Worker } from '../bench/workers.js';
import { rawWebSocketServer, runTargetWithPreload } from './helpers/bench.js';
import { until } from './helpers/until.js';

function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  return Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
}

const push = (seq: number | undefined): string => `{"type":3,"data":"~1~xx","room":"r"${seq === undefined ? '' : `,"seq":${seq}`}}`;
const socketIoPush = (seq: number): string => `42["push",{"type":3,"data":"~1~xx","room":"r","seq":${seq}}]`;

/**
 * What each connection is sent, by the order it connects in: roomcast's
 * frames on /connect, Socket.IO's on /socket.io/. Warm-up pushes (`~w`) carry
 * seqs of the same stream as the measured ones.
 */
const SCRIPTS: Record<string, string[][]> = {
  roomcast: [
    [push(1), push(2), push(2), push(3)], // a duplicate
    [push(1), push(3), push(2)], // 2 after 3
    [push(undefined)], // no seq
    ['{"type":3,"data":"~w~","seq":7}', push(8), '{"type":3,"data":"~w~","seq":7}'], // a warm-up frame twice
    [push(17), push(3), push(3)], // far below the first seq: late, then a duplicate
  ],
  socketio: [[socketIoPush(4), socketIoPush(5), socketIoPush(5), socketIoPush(6)]],
};

/** Welcomes each client as its protocol does, then sends it its script. */
function scriptedServer(): ReturnType<typeof rawWebSocketServer> {
  const connected = { roomcast: 0, socketio: 0 };
  return rawWebSocketServer(
    (socket, head) => {
      if (head.startsWith('GET /socket.io/')) {
        socket.write(textFrame('0{"sid":"e","upgrades":[],"pingInterval":25000,"pingTimeout":20000}'));
        socket.write(textFrame(`40{"sid":"s${connected.socketio + 1}"}`));
        return;
      }
      const n = connected.roomcast++;
      const welcome = textFrame(JSON.stringify({ type: 0, op: 'welcome', data: `w${n}`, wsId: `w${n}` }));
      socket.write(Buffer.concat([welcome, ...SCRIPTS.roomcast[n].map(textFrame)]));
    },
    (socket, chunk) => {
      // Socket.IO's client joins the namespace with `40` (masked: its payload is not read, only its short length)
      if (chunk.length === 8 && (chunk[1] & 0x7f) === 2) socket.write(Buffer.concat(SCRIPTS.socketio[connected.socketio++].map(textFrame)));
    },
  );
}

/** `count` connections, one handshake at a time, so the scripts go to them in order. */
function connectOrder(gatewayUrl: string, protocol: ClientProtocol, count: number): ConnectOrder {
  return { op: 'connect', gatewayUrl, protocol, count, sourceAddresses: ['127.0.0.1'], inFlight: 1, timeoutMs: 10_000 };
}

describe('the bench and push frames that came twice, out of order, without a seq or to the wrong room', () => {
  it('a bench client counts each seq once per connection, and counts duplicates, late frames and frames without a seq apart', async () => {
    const server = await scriptedServer();
    const worker = new Worker();
    const deadline = Date.now() + 20_000;
    try {
      const connected = await worker.request(connectOrder(server.url, 'roomcast', 5), deadline);
      assert.deepEqual(connected.wsIds, ['w0', 'w1', 'w2', 'w3', 'w4']);
      const progress = await until('every scripted frame counted', async () => {
        const p = await worker.request({ op: 'progress' }, deadline);
        return p.pushFrames + p.warmupFrames + p.duplicates >= 14 ? p : undefined;
      });
      assert.deepEqual(
        { pushFrames: progress.pushFrames, warmupFrames: progress.warmupFrames, duplicates: progress.duplicates, outOfOrder: progress.outOfOrder, unsequenced: progress.unsequenced },
        { pushFrames: 10, warmupFrames: 1, duplicates: 3, outOfOrder: 2, unsequenced: 1 },
      );
      const report = await worker.request({ op: 'report' }, deadline);
      assert.deepEqual(report.framesPerConnection, [3, 3, 1, 1, 2]);
      // w1 was sent 3 frames where its room got 2: one is no delivery; w2 should have had 2 and got 1
      assert.deepEqual(tallyFrames(report.framesPerConnection, (i) => [3, 2, 2, 1, 2][i]), { deliveries: 9, extra: 1 });
    } finally {
      await worker.stop();
    }
    const socketIoWorker = new Worker();
    try {
      assert.deepEqual((await socketIoWorker.request(connectOrder(server.url, 'socketio', 1), deadline)).wsIds, ['s1']);
      const progress = await until('the Socket.IO frames counted', async () => {
        const p = await socketIoWorker.request({ op: 'progress' }, deadline);
        return p.pushFrames + p.duplicates >= 4 ? p : undefined;
      });
      assert.deepEqual({ pushFrames: progress.pushFrames, duplicates: progress.duplicates, unsequenced: progress.unsequenced }, { pushFrames: 3, duplicates: 1, unsequenced: 0 });
    } finally {
      await socketIoWorker.stop();
      await server.close();
    }
  });

  it('a run whose server sends one connection every push twice and another none is incomplete, with the duplicates named', async () => {
    // roomcast with a preload module: the first bench client's push frames written twice, the second's not at all
    const preload = `import { subscribe } from 'node:diagnostics_channel';
let clients = 0;
subscribe('net.server.socket', ({ socket }) => {
  if (socket.remoteAddress === '127.0.0.1') return; // the pushes and joins; bench clients come from 127.0.0.2-9
  const which = clients++;
  if (which > 1) return;
  const write = socket.write;
  socket.write = function (chunk, ...rest) {
    const pushes = Buffer.isBuffer(chunk) && chunk.includes('"data":"~');
    if (pushes && which === 1) return true;
    if (pushes) write.call(this, chunk);
    return write.call(this, chunk, ...rest);
  };
});
`;
    // spread over 127.0.0.2-9 (a run this small would otherwise come from 127.0.0.1, as the pushes do)
    const flags = ['--scenarios', 'fanout', '--targets', 'roomcast', '--fanout-conns', '12', '--fanout-pushes', '10', '--drain-timeout', '1', '--settle', '0', '--source-addresses', '127.0.0.2-127.0.0.9'];
    const { result: r } = await runTargetWithPreload(preload, flags);
    assert.equal(r.connected, 12);
    // 10 warm-up and 10 measured frames twice to one connection, none to another: 120 frames arrived, 110 of them once
    assert.equal(r.duplicateFrames, 20);
    assert.equal(r.deliveries, 110);
    assert.equal(r.completeness, 110 / 120);
    assert.equal(r.outOfOrderFrames, 0);
    assert.ok(r.errors.includes('20 push frames were duplicates (a seq their connection had received already)'), r.errors.join('; '));
    assert.ok(r.errors.includes('pushing: no frame arrived for 1 s, 10 missing'), r.errors.join('; '));
    const check = speedChecks([r]).find((c) => c.what === 'fanout complete');
    assert.deepEqual(check, { what: 'fanout complete', measured: '91.67%, 20 duplicate frames', met: false });
  });
});
