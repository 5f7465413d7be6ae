/** What clients that bend the protocol's edges get from the gateway, over real sockets. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { maxHeaderSize } from 'node:http';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { TestClient, isPush } from './helpers/client.js';
import { call, post } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';
import { dropConnection } from './helpers/resume.js';
import { resumeFrameLimit } from '../src/gateway/resume.js';
import { serverPerSuite } from './helpers/server.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';
import { until, within } from './helpers/until.js';

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

  it('the answer to the auth frame that got the welcome comes with it, not after the 1 s a newcomer holds live frames', async () => {
    const client = await RawClient.connect(server.gatewayUrl);
    client.sendText(JSON.stringify({ op: 'auth', token: await signToken({ sub: 'carol' }), id: 1 }));
    await client.welcome();
    await until('the reply to the auth frame', () => (client.json().some((f) => f.id === 1 && f.op === 'reply') ? true : undefined), 600);
    client.socket.destroy();
  });
});

/**
 * Upgrades on a socket that stays half-open (it never answers the server's close frame nor ends its
 * side) and reads nothing back but bytes: resolves once the handshake is answered.
 */
async function halfOpenClient(wsUrl: string, path: string): Promise<{ socket: Socket; received: () => Buffer; ended: Promise<number> }> {
  const url = new URL(wsUrl);
  const socket = connect({ host: url.hostname, port: Number(url.port), allowHalfOpen: true });
  socket.on('error', () => undefined);
  let received = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
  const started = Date.now();
  const ended = new Promise<number>((resolve) => socket.once('end', () => resolve(Date.now() - started)));
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await until('the answer to the handshake', () => (received.includes('\r\n\r\n') ? true : undefined));
  return { socket, received: () => received, ended };
}

describe('a client that never answers the close handshake', () => {
  // no heartbeat: nothing but the close grace (3 s) may end these sockets
  const server = serverPerSuite({ auth: 'optional', jwtSecret: JWT_SECRET, heartbeatTimeout: 0 });

  async function welcomedHalfOpenClient(): Promise<{ client: Awaited<ReturnType<typeof halfOpenClient>>; wsId: string }> {
    const client = await halfOpenClient(server.gatewayUrl, new URL(server.gatewayUrl).pathname);
    await until('the welcome', () => (client.received().includes('"welcome"') ? true : undefined));
    return { client, wsId: /"wsId":"([^"]+)"/.exec(client.received().toString())![1] };
  }

  /** Waits for the connection to be let go, its session away, within the close grace (3 s) and some slack. */
  async function untilAwayWithinGrace(wsId: string): Promise<void> {
    const started = Date.now();
    await until('the connection let go', async () => ((await call(server.logicUrl, `/conns/${wsId}`)).body.data?.state === 'away' ? true : undefined), 6000);
    assert.ok(Date.now() - started < 6000);
  }

  it('refused for its ?token= is let go after the close grace (3 s), not the 30 s ws waits', async () => {
    const client = await halfOpenClient(server.gatewayUrl, `${new URL(server.gatewayUrl).pathname}?token=not-a-jwt`);
    await until('the 4001 close frame', () => (client.received().includes('the token is not valid') ? true : undefined));
    const endedAfter = await within(client.ended, 6000, 'the end of the refused socket');
    assert.ok(endedAfter < 6000, `ended after ${endedAfter} ms`);
    client.socket.destroy();
  });

  it('whose frame ws fails (unmasked: 1002) is let go after the close grace, and its session is away', async () => {
    const { client, wsId } = await welcomedHalfOpenClient();
    client.socket.write(Buffer.from([0x81, 0x02, 0x7b, 0x7d])); // {} in a text frame, not masked
    await until('the 1002 close frame', () => (client.received().includes(Buffer.from([0x88, 0x02, 0x03, 0xea])) ? true : undefined));
    await untilAwayWithinGrace(wsId);
    client.socket.destroy();
  });

  it('that sent its own close frame (1001) and never ends its side is let go after the close grace, and its session is away', async () => {
    const { client, wsId } = await welcomedHalfOpenClient();
    client.socket.write(maskedCloseFrame(1001));
    await until('the close frame answered', () => (client.received().includes(Buffer.from([0x88, 0x02, 0x03, 0xe9])) ? true : undefined));
    await untilAwayWithinGrace(wsId);
    client.socket.destroy();
  });
});

/** A client's close frame with `code` and no reason, masked (with a zero mask, which leaves the bytes as they are). */
function maskedCloseFrame(code: number): Buffer {
  const frame = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0, 0]);
  frame.writeUInt16BE(code, 6);
  return frame;
}

describe('a message over what the socket takes (the resume frame limit, above --max-payload)', () => {
  const server = serverPerSuite({ maxPayload: 1024, maxRoomsPerConnection: 1 });

  it('ws closes it with 1009, and it is counted in tooLargeCloses like one over --max-payload', async () => {
    const client = await TestClient.connect(server.gatewayUrl);
    client.send({ type: 1, data: 'x'.repeat(resumeFrameLimit(1, 1024)) });
    assert.equal(await client.closeCode(20_000), 1009);
    assert.equal((await call(server.logicUrl, '/stats')).body.data?.tooLargeCloses, 1);
  });
});

/** Sends `request` on a new TCP connection; `received` is what has come back so far. */
function sendRequest(wsUrl: string, request: string): { socket: Socket; received: () => string } {
  const url = new URL(wsUrl);
  const socket = connect({ host: url.hostname, port: Number(url.port) });
  socket.on('error', () => undefined);
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.write(request);
  return { socket, received: () => received };
}

/** Sends `request` on a new TCP connection and resolves with what came back until the server closed it. */
async function answerTo(wsUrl: string, request: string): Promise<string> {
  const { socket, received } = sendRequest(wsUrl, request);
  await within(once(socket, 'close'), 5000, 'the server closing the refused handshake');
  return received();
}

describe('handshakes the gateway refuses', () => {
  const server = serverPerSuite();

  it('a request line and headers over the HTTP limit (a huge ?token=) get 431 naming the limit, not "malformed"', async () => {
    const path = `${new URL(server.gatewayUrl).pathname}?token=${'a'.repeat(20_000)}`;
    const answer = await answerTo(
      server.gatewayUrl,
      `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    assert.match(answer, /^HTTP\/1\.1 431 /);
    assert.ok(answer.includes(`over ${maxHeaderSize} bytes`), answer);
  });

  it('an upgrade sent as HTTP/1.0 gets 400 naming the version the handshake needs (RFC 6455 §4.1)', async () => {
    const answer = await answerTo(
      server.gatewayUrl,
      `GET ${new URL(server.gatewayUrl).pathname} HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.ok(answer.includes('bad WebSocket handshake: it must be an HTTP/1.1 request (RFC 6455), not HTTP/1.0'), answer);
  });

  for (const version of ['99', undefined]) {
    it(`Sec-WebSocket-Version ${version ?? 'missing'} gets 400 naming the header, and the versions the gateway speaks (RFC 6455 §4.2.2)`, async () => {
      const versionHeader = version === undefined ? '' : `Sec-WebSocket-Version: ${version}\r\n`;
      const answer = await answerTo(
        server.gatewayUrl,
        `GET ${new URL(server.gatewayUrl).pathname} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n${versionHeader}\r\n`,
      );
      assert.match(answer, /^HTTP\/1\.1 400 /);
      assert.match(answer, /\r\nSec-WebSocket-Version: 13, 8\r\n/i);
      assert.match(answer, /Sec-WebSocket-Version header/);
    });
  }
});

/** Sends `request` on a new TCP connection and resolves with the head of the answer (its status line and headers). */
async function answerHeadTo(wsUrl: string, request: string): Promise<string> {
  const { socket, received } = sendRequest(wsUrl, request);
  try {
    return await until('the head of the answer', () => (received().includes('\r\n\r\n') ? received().slice(0, received().indexOf('\r\n\r\n')) : undefined), 5000);
  } finally {
    socket.destroy();
  }
}

describe('handshakes offering what the gateway does not speak', () => {
  const server = serverPerSuite();
  const upgrade = (extra: string): string =>
    `GET ${new URL(server.gatewayUrl).pathname} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

  it('subprotocols are upgraded with none agreed: no Sec-WebSocket-Protocol in the answer (RFC 6455 §4.2.2)', async () => {
    const head = await answerHeadTo(server.gatewayUrl, upgrade('Sec-WebSocket-Protocol: chat, superchat\r\n'));
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.doesNotMatch(head, /sec-websocket-protocol/i);
  });

  it('permessage-deflate is upgraded with no extension agreed: no Sec-WebSocket-Extensions in the answer', async () => {
    const head = await answerHeadTo(server.gatewayUrl, upgrade('Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n'));
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.doesNotMatch(head, /sec-websocket-extensions/i);
  });
});
