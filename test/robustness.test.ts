import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestClient, isPush } from './helpers/client.js';
import { call, post } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';
import { serverPerSuite } from './helpers/server.js';
import { within } from './helpers/until.js';

/** What came back for raw bytes sent to a port: the bytes, and whether the server closed the socket (or 2 s passed first). */
interface RawAnswer {
  answer: string;
  closed: boolean;
}

/** Sends raw bytes to host:port, ends its side, and resolves with what comes back until the server closes the socket, or 2 s pass. */
function sendRaw(url: string, bytes: Buffer | string): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let answer = '';
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ answer, closed });
    };
    const timer = setTimeout(() => done(false), 2000);
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('error', () => done(true));
    socket.on('close', () => done(true));
    socket.write(bytes, () => socket.end());
  });
}

/** Splits a stream of HTTP/1.1 responses (each with a Content-Length) into status lines and bodies. */
function splitResponses(stream: string): { status: string; body: string }[] {
  const responses: { status: string; body: string }[] = [];
  let rest = stream;
  while (rest.length > 0) {
    const headEnd = rest.indexOf('\r\n\r\n');
    assert.notEqual(headEnd, -1, `incomplete response: ${rest.slice(0, 200)}`);
    const head = rest.slice(0, headEnd);
    const length = /content-length: *(\d+)/i.exec(head);
    const status = head.split('\r\n')[0];
    if (status.startsWith('HTTP/1.1 101')) return [...responses, { status, body: '' }];
    assert.ok(length, `response without content-length: ${head}`);
    responses.push({ status, body: rest.slice(headEnd + 4, headEnd + 4 + Number(length[1])) });
    rest = rest.slice(headEnd + 4 + Number(length[1]));
  }
  return responses;
}

function garbageRequests(): (Buffer | string)[] {
  const fixed = [
    'GARBAGE\r\n\r\n',
    'GET / HTTP/9.9\r\n\r\n',
    'POST /push/all HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n',
    'POST /push/all HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Type: application/json\r\n\r\n{"a"',
    'POST /push/all HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n',
    'POST /push/room HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n{"__proto__":{"tag":3},"val":1',
    'POST /push/all HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\n%%%%&&&==',
    `GET /${'a'.repeat(20000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    'GET /rooms/%ZZ HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /conns/%00%ff HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /connect HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    'GET /connect HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n',
    `POST /push/all HTTP/1.1\r\nHost: x\r\n${'X-H: v\r\n'.repeat(3000)}\r\n`,
  ];
  const out: (Buffer | string)[] = [];
  for (let i = 0; out.length < 200; i++) out.push(i < fixed.length ? fixed[i] : i % 2 ? randomBytes(1 + (i % 300)) : fixed[i % fixed.length]);
  return out;
}

function garbageFrames(): { opcode: number; payload: Buffer | string; fin?: boolean }[] {
  const frames: { opcode: number; payload: Buffer | string; fin?: boolean }[] = [
    { opcode: 0x1, payload: '{"op":' },
    { opcode: 0x1, payload: '{"op":null}' },
    { opcode: 0x1, payload: '{"op":"join","room":{"x":1}}' },
    { opcode: 0x1, payload: '{"op":"resume","token":5}' },
    { opcode: 0x1, payload: '{"type":1e999}' },
    { opcode: 0x1, payload: '{"__proto__":{"op":"join"}}' },
    { opcode: 0x1, payload: '{"op":"join","id":{"deep":[1,2,3]}}' },
    { opcode: 0x2, payload: randomBytes(64) },
    { opcode: 0x1, payload: '"' + 'z'.repeat(1000) + '"' },
    { opcode: 0x9, payload: 'ping-payload' },
    { opcode: 0xa, payload: 'unsolicited pong' },
  ];
  for (let i = 0; frames.length < 100; i++) {
    frames.push({ opcode: i % 3 === 0 ? 0x2 : 0x1, payload: i % 2 ? randomBytes(i % 50) : JSON.stringify({ op: `op${i}`, id: i, room: 'r'.repeat(i) }) });
  }
  return frames;
}

describe('garbage in', () => {
  const server = serverPerSuite();

  it('survives 200 garbage HTTP requests to both ports, each answered or closed', async () => {
    const requests = garbageRequests();
    for (let i = 0; i < requests.length; i += 20) {
      await Promise.all(
        requests.slice(i, i + 20).map(async (bytes, j) => {
          const port = j % 2 ? 'logic API' : 'gateway';
          const { answer, closed } = await sendRaw(port === 'logic API' ? server.logicUrl : server.gatewayUrl.replace('ws:', 'http:'), bytes);
          assert.ok(closed, `the ${port} left the socket open 2 s after ${JSON.stringify(String(bytes).slice(0, 60))}, having answered ${JSON.stringify(answer.slice(0, 60))}`);
          for (const response of splitResponses(answer)) {
            assert.match(response.status, /^HTTP\/1\.1 \d{3} /);
            if (response.status.startsWith('HTTP/1.1 101')) continue;
            const body = JSON.parse(response.body) as { code: number; msg: string };
            assert.equal(typeof body.msg, 'string', response.body);
          }
        }),
      );
    }
  });

  it('survives 100 garbage frames from one client, then still answers PING and delivers a push', async () => {
    const raws = await Promise.all([1, 2, 3, 4, 5].map(() => RawClient.connect(server.gatewayUrl)));
    const frames = garbageFrames();
    frames.forEach((f, i) => raws[i % raws.length].sendFrame(f.opcode, f.payload, f.fin ?? true));
    // broken framing on the wire, not just bad JSON: a reserved opcode, an unmasked frame; the server must fail both connections
    raws[0].socket.write(Buffer.from([0x8f, 0xff, 0xff, 0xff]));
    raws[1].socket.write(Buffer.from([0x81, 0x05, 0x41, 0x42]));
    await within(Promise.all([raws[0].ended, raws[1].ended]), 5000, 'the server closing the two connections with broken framing');
    // whether the others are closed depends on their frames: give the server a moment with them, then drop them
    await Promise.race([Promise.all(raws.map((r) => r.ended)), sleep(1500)]);
    for (const r of raws) r.socket.destroy();

    const client = await TestClient.connect(server.gatewayUrl);
    assert.deepEqual(await client.ping(), { type: 1, data: 'PONG' });
    const answer = await post(server.logicUrl, '/push/all', { val: 'still here', tag: 2 });
    assert.equal(answer.status, 200);
    assert.equal((await client.next(isPush)).data, 'still here');
    const stats = await call(server.logicUrl, '/stats');
    assert.equal(stats.body.data?.connections, 1);
    await client.closeAndWait();
  });
});
