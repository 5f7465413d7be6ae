/**
 * The bench's count of frames no server may send (protocolErrors) and of
 * malformed control frames (malformedFrames): its own client code, in its own
 * worker process, against servers that send them.
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

/** A preload module that makes roomcast write `frames` before or after every welcome it writes. */
function writingBesideWelcomes(frames: Buffer, where: 'before' | 'after'): string {
  return `import { subscribe } from 'node:diagnostics_channel';
const frames = Buffer.from('${frames.toString('base64')}', 'base64');
subscribe('net.server.socket', ({ socket }) => {
  const write = socket.write;
  socket.write = function (chunk, ...rest) {
    const welcome = Buffer.isBuffer(chunk) && chunk.includes('"op":"welcome"');
    return write.call(this, welcome ? Buffer.concat(${where === 'before' ? '[frames, chunk]' : '[chunk, frames]'}) : chunk, ...rest);
  };
});
`;
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
    const { result: r } = await runTargetWithPreload(writingBesideWelcomes(BAD_FRAMES, 'before'), ['--scenarios', 'idle', '--targets', 'roomcast', '--idle-conns', '20', '--settle', '0']);
    assert.equal(r.connected, 20);
    assert.equal(r.protocolErrors, 20 * BAD_PER_CONNECTION);
    assert.deepEqual(r.errors, [`the server sent ${20 * BAD_PER_CONNECTION} frames no server may send (masked, of a reserved opcode, or with RSV bits set)`]);
    assert.deepEqual(
      speedChecks([r]).find((c) => c.what === 'idle complete'),
      { what: 'idle complete', measured: `20/20 connected, ${20 * BAD_PER_CONNECTION} frames no server may send`, met: false },
    );
  });
});

/** A welcome whose JSON breaks off. */
const BROKEN_WELCOME = '{"type":0,"op":"welcome","wsId":';

describe('the bench and malformed control frames', () => {
  it('a bench client that reads one (bad JSON, or JSON not an object) counts it and goes on; a connection waiting for its welcome fails at once, naming it', async () => {
    let opened = 0;
    const server = await rawWebSocketServer((socket) => {
      opened++;
      if (opened === 1) return void socket.write(serverFrame(0x81, BROKEN_WELCOME));
      const welcome = serverFrame(0x81, JSON.stringify({ type: 0, op: 'welcome', data: 'w2', wsId: 'w2', resume: 't', seq: 0, epoch: 'e' }));
      // after the welcome: a joined frame that breaks off, and one in an array, not an object; then a good push
      socket.write(Buffer.concat([welcome, serverFrame(0x81, '{"op":"joined","room":'), serverFrame(0x81, '[{"op":"joined"}]'), serverFrame(0x81, PUSH)]));
    });
    const worker = new Worker();
    try {
      const deadline = Date.now() + 30_000;
      const started = Date.now();
      // one at a time, so the first connection is the one whose welcome breaks off; trackSessions: every control frame is read
      const connected = await worker.request(
        { op: 'connect', gatewayUrl: server.url, protocol: 'roomcast', count: 2, sourceAddresses: ['127.0.0.1'], inFlight: 1, timeoutMs: 20_000, trackSessions: true },
        deadline,
      );
      assert.ok(Date.now() - started < 5000, `connect answered after ${Date.now() - started} ms: the broken welcome was waited on until the timeout`);
      assert.deepEqual(connected.wsIds, ['w2']);
      assert.equal(connected.failed, 1);
      assert.match(connected.firstError ?? '', /-> 127\.0\.0\.1:\d+: a control frame is not JSON \(.+\): "\{\\"type\\":0,\\"op\\":\\"welcome\\",\\"wsId\\":"$/);
      const progress = await until('the good push counted', async () => {
        const p = await worker.request({ op: 'progress' }, deadline);
        return p.pushFrames >= 1 ? p : undefined;
      });
      assert.equal(progress.pushFrames, 1);
      assert.equal(progress.malformedFrames, 3, 'the broken welcome, the broken joined frame and the array');
      assert.match(progress.firstMalformed ?? '', /^a control frame is not JSON/);
      assert.equal(progress.protocolErrors, 0);
      assert.equal(progress.closedEarly, 0);
    } finally {
      await worker.stop();
      await server.close();
    }
  });

  it('a run whose server sends them reports them as an error of the run, naming the first, and fails its complete check', async () => {
    const { result: r, seconds } = await runTargetWithPreload(writingBesideWelcomes(serverFrame(0x81, BROKEN_WELCOME), 'after'), ['--scenarios', 'idle', '--targets', 'roomcast', '--idle-conns', '20', '--settle', '0']);
    assert.equal(r.connected, 20);
    assert.equal(r.malformedFrames, 20);
    assert.equal(r.errors.length, 1, r.errors.join('; '));
    assert.match(r.errors[0], /^the server sent 20 malformed control frames, first: a control frame is not JSON \(.+\): "\{\\"type\\":0,\\"op\\":\\"welcome\\",\\"wsId\\":"$/);
    assert.ok(seconds < 60, `the run took ${seconds} s`);
    assert.deepEqual(speedChecks([r]).find((c) => c.what === 'idle complete'), { what: 'idle complete', measured: '20/20 connected, 20 malformed control frames', met: false });
  });
});

describe('the bench resuming against a server that gave no resume token', () => {
  it('fails that resume, naming what is missing, and the client worker lives on', async () => {
    // a welcome as roomcast without history writes it: no `resume` token, no `seq`
    const server = await rawWebSocketServer((socket) => void socket.write(serverFrame(0x81, JSON.stringify({ type: 0, op: 'welcome', data: 'w1', wsId: 'w1' }))));
    const worker = new Worker();
    try {
      const deadline = Date.now() + 30_000;
      const connected = await worker.request(
        { op: 'connect', gatewayUrl: server.url, protocol: 'roomcast', count: 1, sourceAddresses: ['127.0.0.1'], inFlight: 1, timeoutMs: 10_000, trackSessions: true },
        deadline,
      );
      assert.deepEqual(connected.wsIds, ['w1']);
      await worker.request({ op: 'drop' }, deadline);
      const started = Date.now();
      const outcome = await worker.request({ op: 'resume', inFlight: 1, timeoutMs: 20_000 }, deadline);
      assert.ok(Date.now() - started < 5000, `resume answered after ${Date.now() - started} ms: the failed resume was waited on until the timeout`);
      assert.deepEqual({ resumed: outcome.resumed, failed: outcome.failed }, { resumed: 0, failed: 1 });
      assert.equal(outcome.firstError, 'w1: cannot resume: no welcome with a resume token and a * position was read');
      const progress = await worker.request({ op: 'progress' }, deadline);
      assert.equal(progress.closedEarly, 0);
    } finally {
      await worker.stop();
      await server.close();
    }
  });
});
