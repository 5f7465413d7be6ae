/**
 * The bench's count of frames no server may send (protocolErrors): its own
 * client code, in its own worker process, against servers that send them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { speedChecks } from '../bench/report.js';
import { Worker } from '../bench/workers.js';
import { rawWebSocketServer, runTargetWithPreload } from './helpers/bench.js';
import { until } from './helpers/until.js';

/** A server-to-client frame of up to 125 bytes, with the first header byte and the mask bit as given. */
function serverFrame(firstByte: number, text: string, masked = false): Buffer {
  const payload = Buffer.from(text);
  // a zero mask key leaves the payload readable: only the mask bit says it is wrong
  return Buffer.concat([Buffer.from([firstByte, (masked ? 0x80 : 0) | payload.length]), masked ? Buffer.alloc(4) : Buffer.alloc(0), payload]);
}

/** A push as the bench clients recognise it (a `~<µs>` marker near the payload start). */
const PUSH = '{"type":2,"data":"~1"}';

/** Three frames no server may send, each carrying a push: masked, of a reserved opcode (0x3), with RSV1 set and no extension agreed. */
const BAD_FRAMES = Buffer.concat([serverFrame(0x81, PUSH, true), serverFrame(0x83, PUSH), serverFrame(0xc1, PUSH)]);
const BAD_PER_CONNECTION = 3;

/** Welcomes each client as roomcast does, then sends the bad frames and one good push; the client's PINGs go unanswered. */
function misbehavingServer(): ReturnType<typeof rawWebSocketServer> {
  let opened = 0;
  return rawWebSocketServer((socket) => {
    const wsId = `w${++opened}`;
    socket.write(Buffer.concat([serverFrame(0x81, JSON.stringify({ type: 0, op: 'welcome', data: wsId, wsId })), BAD_FRAMES, serverFrame(0x81, PUSH)]));
  });
}

describe('the bench and frames no server may send', () => {
  it('a bench client counts each masked, reserved-opcode or RSV frame as a protocol error, and none of them as a push', async () => {
    const server = await misbehavingServer();
    const worker = new Worker();
    try {
      const deadline = Date.now() + 20_000;
      const connected = await worker.request(
        { op: 'connect', gatewayUrl: server.url, protocol: 'roomcast', count: 2, sourceAddresses: ['127.0.0.1'], inFlight: 2, timeoutMs: 10_000 },
        deadline,
      );
      assert.deepEqual(connected.wsIds.slice().sort(), ['w1', 'w2']);
      // each connection's good push comes after its bad frames: once both are counted, so is every bad frame
      const progress = await until('the good push of each connection counted', async () => {
        const p = await worker.request({ op: 'progress' }, deadline);
        return p.pushFrames >= 2 ? p : undefined;
      });
      assert.equal(progress.pushFrames, 2, 'a bad frame that carries a push marker is not a push');
      assert.equal(progress.protocolErrors, 2 * BAD_PER_CONNECTION);
      assert.equal(progress.closedEarly, 0);
    } finally {
      await worker.stop();
      await server.close();
    }
  });

  it('a run whose server sends them reports them as an error of the run, and fails its complete check', async () => {
    // roomcast, writing the bad frames in front of every welcome (a preload module in the server process)
    const preload = `import { subscribe } from 'node:diagnostics_channel';
const bad = Buffer.from('${BAD_FRAMES.toString('base64')}', 'base64');
subscribe('net.server.socket', ({ socket }) => {
  const write = socket.write;
  socket.write = function (chunk, ...rest) {
    const welcome = Buffer.isBuffer(chunk) && chunk.includes('"op":"welcome"');
    return write.call(this, welcome ? Buffer.concat([bad, chunk]) : chunk, ...rest);
  };
});
`;
    const { result: r } = await runTargetWithPreload(preload, ['--scenarios', 'idle', '--targets', 'roomcast', '--idle-conns', '20', '--settle', '0']);
    assert.equal(r.connected, 20);
    assert.equal(r.protocolErrors, 20 * BAD_PER_CONNECTION);
    assert.deepEqual(r.errors, [`the server sent ${20 * BAD_PER_CONNECTION} frames no server may send (masked, of a reserved opcode, or with RSV bits set)`]);
    assert.deepEqual(
      speedChecks([r]).find((c) => c.what === 'idle complete'),
      { what: 'idle complete', measured: `20/20 connected, ${20 * BAD_PER_CONNECTION} frames no server may send`, met: false },
    );
  });
});
