/** Client auth (JWT), push to users, and every limit, over real sockets. */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { decodeJwt, SignJWT } from 'jose';
import { WebSocket } from 'ws';
import { TestClient, isPush, type Closed } from './helpers/client.js';
import { call, post } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';
import { dropConnection, resumeOn } from './helpers/resume.js';
import { serverPerSuite, withServer, type TestServer } from './helpers/server.js';
import { JWT_SECRET, signToken, unsignedToken } from './helpers/tokens.js';
import { until, within } from './helpers/until.js';

/** Opens a WebSocket and resolves with how the server answered: the close code (and reason), or a refused handshake's status. */
function outcome(
  url: string,
  headers: Record<string, string> = {},
  localAddress?: string,
): Promise<{ status?: number; body?: string; close?: number; reason?: string; welcome?: boolean }> {
  const ended = new Promise<{ status?: number; body?: string; close?: number; reason?: string; welcome?: boolean }>((resolve) => {
    const ws = new WebSocket(url, { headers, localAddress });
    let welcome = false;
    ws.on('message', (data: Buffer) => {
      if ((JSON.parse(data.toString()) as { op?: string }).op === 'welcome') welcome = true;
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    ws.on('close', (code, reason) => resolve({ close: code, reason: reason.toString(), welcome }));
    ws.on('error', () => undefined);
  });
  return within(ended, 20_000, `a refusal or a close of the WebSocket to ${url}`);
}

/** A TCP connection to the gateway that sends half a handshake request (or nothing) and never more. */
interface HalfOpen {
  socket: Socket;
  openedAt: number;
  /** When the server closed it. */
  closedAt?: number;
  /** What the server wrote before closing. */
  answer: string;
}

async function halfOpen(gatewayUrl: string, sendsPart: boolean): Promise<HalfOpen> {
  const url = new URL(gatewayUrl);
  const socket = connect({ host: url.hostname, port: Number(url.port) });
  const conn: HalfOpen = { socket, openedAt: Date.now(), answer: '' };
  socket.on('data', (d: Buffer) => (conn.answer += d.toString()));
  socket.on('close', () => (conn.closedAt = Date.now()));
  socket.on('error', () => undefined);
  await within(new Promise<void>((resolve) => socket.once('connect', resolve).once('close', resolve)), 20_000, 'a TCP connection to the gateway, or its close');
  if (sendsPart) socket.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\n`);
  return conn;
}

async function stats(server: TestServer): Promise<Record<string, Record<string, number>>> {
  return (await call(server.logicUrl, '/stats')).body.data as unknown as Record<string, Record<string, number>>;
}

describe('client auth required (HMAC secret)', () => {
  const server = serverPerSuite({ auth: 'required', jwtSecret: JWT_SECRET, authTimeout: 400, resumeSecret: 'resume-secret' });

  it('accepts a token in the URL: the welcome names the user, who is listed and reachable by push/user', async () => {
    const token = await signToken({ sub: 'alice', expiresIn: 60 });
    const a1 = await TestClient.connect(`${server.gatewayUrl}?token=${token}`);
    const a2 = await TestClient.connect(`${server.gatewayUrl}?token=${token}`);
    const bob = await TestClient.connect(`${server.gatewayUrl}?token=${await signToken({ sub: 'bob' })}`);
    assert.equal(a1.welcome?.uid, 'alice');
    const listed = await call(server.logicUrl, '/users/alice');
    assert.deepEqual((listed.body.data?.connections as { wsId: string }[]).map((c) => c.wsId).sort(), [a1.wsId, a2.wsId].sort());
    assert.equal((await call(server.logicUrl, `/conns/${a1.wsId}`)).body.data?.uid, 'alice');
    const pushed = await post(server.logicUrl, '/push/user', { uid: 'alice', val: 'for alice', tag: 5 });
    assert.deepEqual(pushed.body.data?.nodes, 1);
    for (const c of [a1, a2]) assert.deepEqual(await c.next(isPush), { type: 5, data: 'for alice' });
    await bob.ping();
    assert.equal(bob.frames.filter(isPush).length, 0);
    assert.deepEqual((await call(server.logicUrl, '/users/nobody')).body.data, { uid: 'nobody', total: 0, offset: 0, limit: 100, connections: [] });
    await Promise.all([a1, a2, bob].map((c) => c.closeAndWait()));
  });

  it("pages a user's connections: GET /users/:uid answers at most limit of them, sorted by wsId, with the total", async () => {
    const token = await signToken({ sub: 'carol', expiresIn: 60 });
    const clients = await Promise.all([0, 1, 2].map(() => TestClient.connect(`${server.gatewayUrl}?token=${token}`)));
    const sorted = clients.map((c) => c.wsId).sort();
    const pageOf = async (query: string) => (await call(server.logicUrl, `/users/carol${query}`)).body.data as { total: number; offset: number; limit: number; connections: { wsId: string }[] };
    const first = await pageOf('?limit=2');
    assert.deepEqual({ ...first, connections: first.connections.map((c) => c.wsId) }, { uid: 'carol', total: 3, offset: 0, limit: 2, connections: sorted.slice(0, 2) });
    const rest = await pageOf('?offset=2&limit=2');
    assert.deepEqual(rest.connections.map((c) => c.wsId), sorted.slice(2));
    assert.equal((await pageOf('')).connections.length, 3);
    assert.equal((await call(server.logicUrl, '/users/carol?limit=1001')).status, 400);
    await Promise.all(clients.map((c) => c.closeAndWait()));
  });

  it('accepts the token in a first auth frame; before it only PING is answered, and the welcome comes after', async () => {
    const client = await TestClient.open(server.gatewayUrl);
    assert.deepEqual(await client.ping(), { type: 1, data: 'PONG' });
    client.send({ op: 'join', room: 'x', id: 1 });
    assert.deepEqual(await client.next((f) => f.op === 'error'), { type: 0, op: 'error', id: 1, code: 'forbidden', message: 'authenticate first: send {"op":"auth","token":"<JWT>"}' });
    assert.equal(client.frames.some((f) => f.op === 'welcome'), false);
    client.send({ op: 'auth', token: await signToken({ sub: 'carol' }), id: 2 });
    const welcome = await client.next((f) => f.op === 'welcome');
    assert.equal(welcome.uid, 'carol');
    assert.deepEqual(await client.next((f) => f.op === 'reply'), { type: 0, op: 'reply', id: 2, uid: 'carol', expiresAt: null });
    await client.closeAndWait();
  });

  it('answers an auth frame with a bad field, sent before the welcome, with bad_request naming the field, not "authenticate first"', async () => {
    const client = await TestClient.open(server.gatewayUrl);
    client.send({ op: 'auth', token: ['not', 'a', 'string'], id: 1 });
    assert.deepEqual(await client.next((f) => f.op === 'error'), { type: 0, op: 'error', id: 1, code: 'bad_request', message: 'token is required and must be a non-empty string' });
    client.send({ op: 'auth', token: await signToken({ sub: 'carol' }), id: { not: 'an id' } });
    const wrongId = await client.next((f) => f.op === 'error' && f.id === undefined);
    assert.equal(wrongId.code, 'bad_request');
    assert.match(String(wrongId.message), /^id must be/);
    client.send({ op: 'auth', token: await signToken({ sub: 'carol' }), id: 2 });
    assert.equal((await client.next((f) => f.op === 'welcome')).uid, 'carol');
    await client.closeAndWait();
  });

  it('closes a connection that sends no token within --auth-timeout with 1008', async () => {
    const result = await outcome(server.gatewayUrl);
    assert.equal(result.close, 1008);
    assert.match(result.reason ?? '', /no \{"op":"auth"\} frame within 400 ms/);
    assert.equal(result.welcome, false);
  });

  it('refuses an expired token, a token signed with another key, alg none, and a token with no sub, with 4001', async () => {
    const before = (await stats(server)).auth.failures;
    const cases: [string, RegExp][] = [
      [await signToken({ sub: 'dave', expiresIn: -10 }), /expired/],
      [await signToken({ sub: 'dave' }, 'another-secret-of-at-least-32-bytes'), /signature/],
      [unsignedToken('dave'), /not valid/],
      [await signToken({}), /no sub claim/],
      ['garbage.not.jwt', /not valid/],
    ];
    for (const [token, reason] of cases) {
      const result = await outcome(`${server.gatewayUrl}?token=${encodeURIComponent(token)}`);
      assert.equal(result.close, 4001, token);
      assert.match(result.reason ?? '', reason);
      assert.equal(result.welcome, false);
    }
    const viaFrame = await TestClient.open(server.gatewayUrl);
    viaFrame.send({ op: 'auth', token: unsignedToken('dave') });
    assert.equal(await viaFrame.closeCode(20_000), 4001);
    assert.equal((await stats(server)).auth.failures - before, cases.length + 1);
  });

  it('closes with 4001 when the token expires, unless the client refreshed it first', async () => {
    // exp is in whole seconds: the token of the one that expires ends a second after the other's, so its 4001 says the other's exp is past
    const refreshedToken = await signToken({ sub: 'erin', expiresIn: 2 });
    const { exp } = decodeJwt(refreshedToken);
    const refreshing = await TestClient.connect(`${server.gatewayUrl}?token=${refreshedToken}`);
    const expiring = await TestClient.connect(`${server.gatewayUrl}?token=${await signToken({ sub: 'erin', exp: exp! + 1 })}`);
    refreshing.send({ op: 'refresh', token: await signToken({ sub: 'erin', expiresIn: 60 }), id: 'r' });
    assert.equal((await refreshing.next((f) => f.op === 'reply')).uid, 'erin');
    refreshing.send({ op: 'refresh', token: await signToken({ sub: 'mallory', expiresIn: 60 }), id: 'm' });
    const refused = await refreshing.next((f) => f.op === 'error');
    assert.equal(refused.code, 'forbidden');
    assert.match(String(refused.message), /for user mallory, this connection is user erin/);
    const closed = await expiring.closedWithin();
    assert.equal(closed.code, 4001);
    assert.equal(refreshing.ws.readyState, WebSocket.OPEN);
    // and the server still serves it
    assert.deepEqual(await refreshing.ping(), { type: 1, data: 'PONG' });
    assert.ok((await stats(server)).auth.expired >= 1);
    await refreshing.closeAndWait();
  });

  it("lets a client join the rooms of its token's claim by itself, and no other", async () => {
    const client = await TestClient.connect(`${server.gatewayUrl}?token=${await signToken({ sub: 'frank', rooms: ['lobby', 'chat:*'] })}`);
    for (const [room, allowed] of [['lobby', true], ['chat:42', true], ['chat:', true], ['secret', false], ['chatroom', false]] as const) {
      client.send({ op: 'join', room, id: room });
      const answer = await client.next((f) => (f.op === 'reply' || f.op === 'error') && f.id === room);
      assert.equal(answer.op, allowed ? 'reply' : 'error', room);
      if (!allowed) assert.match(String(answer.message), /rooms claim does not cover it/);
    }
    assert.deepEqual(((await call(server.logicUrl, `/conns/${client.wsId}`)).body.data?.rooms as string[]).sort(), ['chat:', 'chat:42', 'lobby']);
    await client.closeAndWait();
  });

  it('refuses a token with a malformed rooms claim, with a close reason cut to fit the close frame', async () => {
    const result = await outcome(`${server.gatewayUrl}?token=${await signToken({ sub: 'gina', rooms: ['ok', 'not ok'] })}`);
    assert.equal(result.close, 4001);
    assert.match(result.reason ?? '', /rooms claim/);
    const long = await outcome(`${server.gatewayUrl}?token=${await signToken({ sub: 'gina', rooms: ['ü'.repeat(200)] })}`);
    assert.equal(long.close, 4001);
    assert.ok(Buffer.byteLength(long.reason ?? '') <= 123);
  });

  it("refuses to resume another user's session", async () => {
    const owner = await TestClient.connect(`${server.gatewayUrl}?token=${await signToken({ sub: 'henry' })}`);
    await dropConnection(server, owner);
    const { end } = await resumeOn(`${server.gatewayUrl}?token=${await signToken({ sub: 'ivan' })}`, owner.welcome!.resume as string, {});
    assert.equal(end.code, 'bad_resume');
    assert.match(String(end.message), /forged, foreign or expired/);
    const { end: ok } = await resumeOn(`${server.gatewayUrl}?token=${await signToken({ sub: 'henry' })}`, owner.welcome!.resume as string, {});
    assert.equal(ok.op, 'resumed');
  });

  it("refuses another user's resume token once its session has ended", async () => {
    const owner = await TestClient.connect(`${server.gatewayUrl}?token=${await signToken({ sub: 'hana' })}`);
    const token = owner.welcome!.resume as string;
    // the client's own close ends the session: nothing records whose it was any more
    await owner.closeAndWait();
    await until('the session ended', async () => ((await call(server.logicUrl, `/conns/${owner.wsId}`)).status === 404 ? true : undefined));
    const { client: thief, end } = await resumeOn(`${server.gatewayUrl}?token=${await signToken({ sub: 'igor' })}`, token, {});
    assert.equal(end.code, 'bad_resume', JSON.stringify(end));
    assert.notEqual((await call(server.logicUrl, `/conns/${owner.wsId}`)).body.data?.uid, 'igor', "the other user holds none of the owner's wsId");
    await thief.closeAndWait();
    const { client: again, end: ok } = await resumeOn(`${server.gatewayUrl}?token=${await signToken({ sub: 'hana' })}`, token, {});
    assert.equal(ok.op, 'resumed', JSON.stringify(ok));
    assert.equal(ok.wsId, owner.wsId);
    await again.closeAndWait();
  });
});

describe('client auth optional, public key and JWKS', () => {
  it("optional: the welcome's token of a session that authenticated after it resumes only as that user, and not at all once the session ended", async () => {
    await withServer({ auth: 'optional', jwtSecret: JWT_SECRET }, async (server) => {
      const owner = await TestClient.connect(server.gatewayUrl);
      owner.send({ op: 'auth', token: await signToken({ sub: 'olive' }), id: 1 });
      assert.equal((await owner.next((f) => f.op === 'reply')).uid, 'olive');
      const token = owner.welcome!.resume as string;
      await dropConnection(server, owner);
      const { client: other, end: foreign } = await resumeOn(`${server.gatewayUrl}?token=${await signToken({ sub: 'oscar' })}`, token, {});
      assert.equal(foreign.code, 'bad_resume', JSON.stringify(foreign));
      assert.match(String(foreign.message), /belongs to another user/);
      await other.closeAndWait();
      await post(server.logicUrl, '/conn/kick', { wsId: owner.wsId });
      await until('the session ended', async () => ((await call(server.logicUrl, `/conns/${owner.wsId}`)).status === 404 ? true : undefined));
      const { client: late, end: ended } = await resumeOn(`${server.gatewayUrl}?token=${await signToken({ sub: 'oscar' })}`, token, {});
      assert.equal(ended.code, 'bad_resume', JSON.stringify(ended));
      assert.match(String(ended.message), /has ended, and its token was issued before it had a user/);
      assert.equal((await call(server.logicUrl, `/conns/${owner.wsId}`)).status, 404, 'nobody took the ended session');
      await late.closeAndWait();
      // nor an anonymous connection: the wsId was olive's, and a backend may still push to it as hers
      const { client: anonymous, end: anonymousEnd } = await resumeOn(server.gatewayUrl, token, {});
      assert.equal(anonymousEnd.code, 'bad_resume', JSON.stringify(anonymousEnd));
      assert.match(String(anonymousEnd.message), /has ended, and its token was issued before it had a user/);
      assert.equal((await call(server.logicUrl, `/conns/${owner.wsId}`)).status, 404, 'no anonymous connection took the ended session');
      await anonymous.closeAndWait();
    });
  });

  it('optional: an anonymous session that ended is not taken back by its token (it may have become a user\'s); one away still is', async () => {
    await withServer({ auth: 'optional', jwtSecret: JWT_SECRET }, async (server) => {
      const away = await TestClient.connect(server.gatewayUrl);
      await dropConnection(server, away);
      const { client: back, end: resumed } = await resumeOn(server.gatewayUrl, away.welcome!.resume as string, {});
      assert.equal(resumed.op, 'resumed', JSON.stringify(resumed));
      assert.equal(resumed.wsId, away.wsId);
      await back.closeAndWait();
      await until('the session ended', async () => ((await call(server.logicUrl, `/conns/${away.wsId}`)).status === 404 ? true : undefined));
      const { client: late, end } = await resumeOn(server.gatewayUrl, resumed.resume as string, {});
      assert.equal(end.code, 'bad_resume', JSON.stringify(end));
      await late.closeAndWait();
    });
  });

  it('optional: anonymous clients connect; a bad token is still refused', async () => {
    await withServer({ auth: 'optional', jwtSecret: JWT_SECRET }, async (server) => {
      const anonymous = await TestClient.connect(server.gatewayUrl);
      assert.equal(anonymous.welcome?.uid, undefined);
      anonymous.send({ op: 'auth', token: await signToken({ sub: 'late' }), id: 1 });
      assert.equal((await anonymous.next((f) => f.op === 'reply')).uid, 'late');
      assert.equal((await call(server.logicUrl, `/conns/${anonymous.wsId}`)).body.data?.uid, 'late');
      await post(server.logicUrl, '/push/user', { uid: 'late', val: 'now you are someone', tag: 2 });
      assert.equal((await anonymous.next(isPush)).data, 'now you are someone');
      assert.equal((await outcome(`${server.gatewayUrl}?token=nonsense`)).close, 4001);
      await anonymous.closeAndWait();
    });
  });

  it('verifies ES256 tokens with a PEM public key, and refuses an HS256 token signed with that PEM (algorithm confusion)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'roomcast-keys-'));
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    writeFileSync(join(dir, 'public.pem'), pem);
    await withServer({ auth: 'required', jwtPublicKey: join(dir, 'public.pem') }, async (server) => {
      const good = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('kate').sign(privateKey);
      assert.equal((await TestClient.connect(`${server.gatewayUrl}?token=${good}`)).welcome?.uid, 'kate');
      const confused = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('kate').sign(new TextEncoder().encode(pem));
      const result = await outcome(`${server.gatewayUrl}?token=${confused}`);
      assert.equal(result.close, 4001);
      assert.match(result.reason ?? '', /algorithm/);
    });
  });

  it('verifies tokens with a JWKS file, picking the key by kid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'roomcast-jwks-'));
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }] }));
    await withServer({ auth: 'required', jwtPublicKey: join(dir, 'jwks.json') }, async (server) => {
      const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('leo').sign(privateKey);
      assert.equal((await TestClient.connect(`${server.gatewayUrl}?token=${token}`)).welcome?.uid, 'leo');
      const unknownKid = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k2' }).setSubject('leo').sign(privateKey);
      assert.equal((await outcome(`${server.gatewayUrl}?token=${unknownKid}`)).close, 4001);
    });
  });

  it('a client refused for its token that sends a broken frame while it is closed does not take the gateway down', async () => {
    await withServer({ auth: 'optional', jwtSecret: JWT_SECRET }, async (server) => {
      const url = new URL(server.gatewayUrl);
      const socket = connect({ host: url.hostname, port: Number(url.port) });
      socket.on('error', () => undefined);
      const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      let answer = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => (answer = Buffer.concat([answer, d])));
      socket.write(
        `GET ${url.pathname}?token=bad HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
      // the 101 and the 4001 close frame, then an unmasked text frame: a client must mask, so the server's parser fails on it
      await until('the 101 and a close frame', () => (answer.includes(0x88) ? true : undefined), 5000);
      assert.match(answer.toString('latin1'), /^HTTP\/1\.1 101 /);
      socket.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
      await within(ended, 5000, 'the server closing the socket');
      const health = await fetch(`http://${url.host}/healthz`);
      assert.equal(health.status, 200);
      const client = await TestClient.connect(server.gatewayUrl);
      assert.deepEqual(await client.ping(), { type: 1, data: 'PONG' });
      await client.closeAndWait();
    });
  });
});

describe('limits', () => {
  it('a connection flood from one address is refused with 429 past the rate, and counted', async () => {
    await withServer({ connectRatePerIp: 10 }, async (server) => {
      const results = await Promise.all(Array.from({ length: 120 }, () => outcome(server.gatewayUrl)));
      const refused = results.filter((r) => r.status === 429);
      // a burst of 5 s worth (50) gets in, the rest does not
      assert.ok(refused.length >= 60, `only ${refused.length} of 120 refused`);
      assert.match(refused[0].body ?? '', /too many new connections from your address/);
      assert.equal((await stats(server)).limits.connectRatePerIp, refused.length);
      const calm = await TestClient.connect(server.gatewayUrl, { localAddress: '127.0.0.2' });
      assert.deepEqual(await calm.ping(), { type: 1, data: 'PONG' }, 'another address is not held back');
      await calm.closeAndWait();
    });
  });

  it('a flood of half-open handshakes from one address is cut at --max-connections-per-ip at once, and the rest timed out after 10 s', async () => {
    await withServer({ maxConnectionsPerIp: 20 }, async (server) => {
      const flood = await Promise.all(Array.from({ length: 60 }, (_, i) => halfOpen(server.gatewayUrl, i % 2 === 0)));
      await sleep(500);
      const cut = flood.filter((c) => c.closedAt !== undefined);
      assert.equal(cut.length, 40, 'every socket past the 20th is closed at once');
      assert.ok(cut.every((c) => c.answer === ''), 'closed without reading or answering');
      assert.equal((await stats(server)).limits.maxConnectionsPerIp, 40);
      const held = flood.filter((c) => c.closedAt === undefined);
      // while the address holds 20 unfinished handshakes, a 21st socket is closed too; another address is not held back
      const more = await halfOpen(server.gatewayUrl, false);
      if (more.closedAt === undefined) await once(more.socket, 'close', { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
      assert.notEqual(more.closedAt, undefined, 'the 21st socket is closed within 2 s');
      const other = await TestClient.connect(server.gatewayUrl, { localAddress: '127.0.0.2' });
      assert.deepEqual(await other.ping(), { type: 1, data: 'PONG' });

      for (let i = 0; i < 150 && held.some((c) => c.closedAt === undefined); i++) await sleep(100);
      for (const c of held) {
        assert.notEqual(c.closedAt, undefined, 'a half-open handshake outlived the timeout');
        const lasted = c.closedAt! - c.openedAt;
        assert.ok(lasted >= 9500 && lasted < 13_000, `closed after ${lasted} ms`);
        assert.match(c.answer, /^HTTP\/1.1 408 Request Timeout/);
        assert.match(c.answer, /did not arrive within 10000 ms/);
      }
      // the address's handshakes are closed: it may connect again
      const back = await TestClient.connect(server.gatewayUrl);
      assert.deepEqual(await back.ping(), { type: 1, data: 'PONG' });
      await Promise.all([other.closeAndWait(), back.closeAndWait()]);
    });
  });

  it('refuses connections past --max-connections-per-ip (429) and --max-connections (503)', async () => {
    await withServer({ maxConnectionsPerIp: 2, maxConnections: 3 }, async (server) => {
      const held = [await TestClient.connect(server.gatewayUrl), await TestClient.connect(server.gatewayUrl)];
      assert.equal((await outcome(server.gatewayUrl)).status, 429);
      held.push(await TestClient.connect(server.gatewayUrl, { localAddress: '127.0.0.2' }));
      const full = await outcome(server.gatewayUrl, {}, '127.0.0.3');
      assert.equal(full.status, 503);
      assert.match(full.body ?? '', /limit of 3 connections/);
      await held[0].closeAndWait();
      await until('the closed connection no longer counted', async () => ((await call(server.logicUrl, '/stats')).body.data?.connections === 2 ? true : undefined), 5000);
      const again = await TestClient.connect(server.gatewayUrl);
      const s = await stats(server);
      assert.equal(s.limits.maxConnectionsPerIp, 1);
      assert.equal(s.limits.maxConnections, 1);
      await Promise.all([...held.slice(1), again].map((c) => c.closeAndWait()));
    });
  });

  it('with --trust-proxy, counts and shows each client by the address its proxy names', async () => {
    await withServer({ maxConnectionsPerIp: 1, trustProxy: 'loopback' }, async (server) => {
      const viaProxy = (client: string) => ({ headers: { 'x-forwarded-for': client } });
      const first = await TestClient.connect(server.gatewayUrl, viaProxy('203.0.113.1'));
      const second = await TestClient.connect(server.gatewayUrl, viaProxy('203.0.113.2'));
      assert.equal((await outcome(server.gatewayUrl, { 'x-forwarded-for': '203.0.113.1' })).status, 429, 'the limit applies per client, not per proxy');
      assert.equal((await call(server.logicUrl, `/conns/${second.wsId}`)).body.data?.remoteAddress, '203.0.113.2');
      await Promise.all([first.closeAndWait(), second.closeAndWait()]);
    });
  });

  it('counts an IPv6 client by its /64 network, and an IPv4-mapped one as its IPv4 address', async () => {
    await withServer({ maxConnectionsPerIp: 1, trustProxy: 'loopback' }, async (server) => {
      const viaProxy = (client: string) => ({ headers: { 'x-forwarded-for': client } });
      const first = await TestClient.connect(server.gatewayUrl, viaProxy('2001:db8:1:2::1'));
      // another address of the same /64 (one host is given the whole network), written out in full
      const sameNetwork = await outcome(server.gatewayUrl, { 'x-forwarded-for': '2001:0db8:0001:0002:ffff:0000:0000:0009' });
      assert.equal(sameNetwork.status, 429, 'the limit applies per /64, not per IPv6 address');
      const otherNetwork = await TestClient.connect(server.gatewayUrl, viaProxy('2001:db8:1:3::1'));
      assert.equal((await call(server.logicUrl, `/conns/${first.wsId}`)).body.data?.remoteAddress, '2001:db8:1:2::1', 'shown as the address itself');
      const v4 = await TestClient.connect(server.gatewayUrl, viaProxy('198.51.100.7'));
      assert.equal((await outcome(server.gatewayUrl, { 'x-forwarded-for': '::ffff:198.51.100.7' })).status, 429, 'an IPv4-mapped address is its IPv4 address');
      assert.equal((await stats(server)).limits.maxConnectionsPerIp, 2);
      await first.closeAndWait();
      const sameNetworkLater = await until('the /64 to hold no connection', () => TestClient.connect(server.gatewayUrl, viaProxy('2001:db8:1:2::2')).catch(() => undefined));
      await Promise.all([sameNetworkLater.closeAndWait(), otherNetwork.closeAndWait(), v4.closeAndWait()]);
    });
  });

  it('closes a client sending frames past --max-frames-per-second with 4029', async () => {
    await withServer({ maxFramesPerSecond: 10 }, async (server) => {
      const flooder = await TestClient.connect(server.gatewayUrl);
      const steady = await TestClient.connect(server.gatewayUrl);
      for (let i = 0; i < 100; i++) flooder.send({ type: 1, data: 'PING' });
      assert.equal(await flooder.closeCode(20_000), 4029);
      for (let i = 0; i < 5; i++) {
        assert.deepEqual(await steady.ping(), { type: 1, data: 'PONG' });
        await sleep(120);
      }
      assert.equal((await stats(server)).limits.maxFramesPerSecond, 1);
      await steady.closeAndWait();
    });
  });

  it('counts WebSocket ping and pong frames against --max-frames-per-second too (4029)', async () => {
    await withServer({ maxFramesPerSecond: 10 }, async (server) => {
      for (const opcode of [0x9, 0xa]) {
        const flooder = await RawClient.connect(server.gatewayUrl);
        await flooder.welcome();
        for (let i = 0; i < 100; i++) flooder.sendFrame(opcode, 'x'.repeat(125));
        await within(flooder.ended, 20_000, `the server to close a client flooding frames of opcode ${opcode}`);
        assert.equal(flooder.closeCode, 4029, `opcode ${opcode}`);
      }
      assert.equal((await stats(server)).limits.maxFramesPerSecond, 2);
    });
  });

  it('drops a client that sends pings and never reads the pongs, with no frame-rate limit: the pongs it leaves unread stay bounded', async () => {
    await withServer({ maxFramesPerSecond: 0 }, async (server) => {
      const flooder = await RawClient.connect(server.gatewayUrl);
      await flooder.welcome();
      flooder.socket.pause();
      // 40,000 pongs of 125 bytes, 5 MB, would sit in the server's memory: ws drops the client once 60 wait to be written
      const ping = 'x'.repeat(125);
      for (let i = 0; i < 40_000 && !flooder.socket.destroyed; i++) {
        flooder.sendFrame(0x9, ping);
        if (i % 1000 === 999) await sleep(5);
      }
      flooder.socket.resume();
      await within(flooder.ended, 30_000, 'the server to drop the client that does not read its pongs');
      await until(
        () => 'the gateway to count no connection',
        async () => ((await call(server.logicUrl, '/stats')).body.data?.connections === 0 ? true : undefined),
        10_000,
      );
    });
  });

  it('refuses joins past --max-rooms-per-connection: 409 from the API, forbidden for a client op', async () => {
    await withServer({ maxRoomsPerConnection: 2, allowClientJoin: true }, async (server) => {
      const client = await TestClient.connect(server.gatewayUrl);
      for (const id of ['r1', 'r2']) assert.equal((await post(server.logicUrl, '/room/join', { id, wsId: client.wsId })).status, 200);
      const third = await post(server.logicUrl, '/room/join', { id: 'r3', wsId: client.wsId });
      assert.deepEqual(third.body, { code: 409, msg: 'the connection is in 2 rooms, the limit (--max-rooms-per-connection)' });
      assert.equal((await post(server.logicUrl, '/room/join', { id: 'r1', wsId: client.wsId })).body.data?.changed, false, 'a room it is in is not a new one');
      client.send({ op: 'join', room: 'r4', id: 4 });
      assert.equal((await client.next((f) => f.op === 'error')).code, 'forbidden');
      assert.equal((await stats(server)).limits.maxRoomsPerConnection, 2);
      await client.closeAndWait();
    });
    await withServer({ maxRoomsPerConnection: 1 }, async (server) => {
      const client = await TestClient.connect(server.gatewayUrl);
      assert.equal((await post(server.logicUrl, '/room/join', { id: 'r1', wsId: client.wsId })).status, 200);
      const second = await post(server.logicUrl, '/room/join', { id: 'r2', wsId: client.wsId });
      assert.deepEqual(second.body, { code: 409, msg: 'the connection is in 1 room, the limit (--max-rooms-per-connection)' });
      await client.closeAndWait();
    });
  });

  it('holds the rooms limit against joins that race: client join frames in one socket write, and concurrent API joins', async () => {
    await withServer({ maxRoomsPerConnection: 2, allowClientJoin: true }, async (server) => {
      const batcher = await RawClient.connect(server.gatewayUrl);
      const wsId = await batcher.welcome();
      batcher.sendTexts(Array.from({ length: 50 }, (_, i) => JSON.stringify({ op: 'join', room: `batch${i}`, id: i })));
      for (let i = 0; i < 200 && batcher.json().filter((f) => f.op === 'reply' || f.op === 'error').length < 50; i++) await sleep(10);
      const answers = batcher.json().filter((f) => f.op === 'reply' || f.op === 'error');
      assert.equal(answers.length, 50);
      assert.equal(answers.filter((f) => f.op === 'reply' && f.changed === true).length, 2);
      const refused = answers.filter((f) => f.op === 'error');
      assert.equal(refused.length, 48);
      for (const f of refused) assert.match(String(f.message), /the limit \(--max-rooms-per-connection\)/);
      assert.equal(((await call(server.logicUrl, `/conns/${wsId}`)).body.data?.rooms as string[]).length, 2);

      const target = await TestClient.connect(server.gatewayUrl);
      const joins = await Promise.all(Array.from({ length: 20 }, (_, i) => post(server.logicUrl, '/room/join', { id: `api${i}`, wsId: target.wsId })));
      assert.equal(joins.filter((j) => j.status === 200).length, 2);
      assert.equal(joins.filter((j) => j.status === 409).length, 18);
      assert.equal(((await call(server.logicUrl, `/conns/${target.wsId}`)).body.data?.rooms as string[]).length, 2);
      const after = await stats(server);
      assert.equal(after.limits.maxRoomsPerConnection, 48 + 18);
      assert.equal(after.rooms as unknown as number, 4, 'a refused join opens no room');
      await target.closeAndWait();
    });
  });

  it('answers a push whose val is over --max-val-size with 413', async () => {
    await withServer({ maxValSize: 10 }, async (server) => {
      const big = await post(server.logicUrl, '/push/all', { val: '12345678901', tag: 3 });
      assert.deepEqual(big.body, { code: 413, msg: 'val is larger than the limit of 10 bytes (--max-val-size)' });
      assert.equal((await post(server.logicUrl, '/push/room', { val: '1234567890', tag: 3, id: 'r' })).status, 200);
      assert.equal((await post(server.logicUrl, '/push/all', { val: 'ééééééé', tag: 3 })).status, 413, 'the limit counts bytes');
      assert.equal((await stats(server)).limits.maxValSize, 2);
    });
  });

  it('answers a val over --max-val-size with 413 before a bad Idempotency-Key header is a 400 (413 comes before 400)', async () => {
    await withServer({ maxValSize: 10 }, async (server) => {
      const badKey = { 'idempotency-key': 'k'.repeat(129) };
      const big = await call(server.logicUrl, '/push/room', { form: { val: '12345678901', tag: 3, id: 'r' }, headers: badKey });
      assert.deepEqual(big.body, { code: 413, msg: 'val is larger than the limit of 10 bytes (--max-val-size)' });
      const small = await call(server.logicUrl, '/push/room', { form: { val: '1234567890', tag: 3, id: 'r' }, headers: badKey });
      assert.deepEqual(small.body, { code: 400, msg: 'the Idempotency-Key header must be a string of 1-128 printable ASCII characters' });
    });
  });

  it('refuses a browser Origin outside --allowed-origins with 403; allowed ones and non-browser clients connect', async () => {
    await withServer({ allowedOrigins: ['https://app.example.com'] }, async (server) => {
      const evil = await outcome(server.gatewayUrl, { origin: 'https://evil.example.com' });
      assert.equal(evil.status, 403);
      assert.match(evil.body ?? '', /origin https:\/\/evil.example.com is not allowed/);
      const good = await TestClient.connect(server.gatewayUrl, { headers: { origin: 'https://app.example.com' } });
      const noOrigin = await TestClient.connect(server.gatewayUrl);
      assert.equal((await stats(server)).limits.allowedOrigins, 1);
      await Promise.all([good.closeAndWait(), noOrigin.closeAndWait()]);
    });
  });
});

describe('connections per user (--max-connections-per-user)', () => {
  const perUser = { maxConnectionsPerUser: 2, connectRatePerIp: 0, resumeSecret: 'resume-secret' };
  const tokenUrl = async (server: TestServer, sub: string): Promise<string> => `${server.gatewayUrl}?token=${await signToken({ sub })}`;
  /** Waits until the gateway lists `count` connections of the user: a closed one is let go by then. */
  const userHolds = (server: TestServer, uid: string, count: number) =>
    until(`user ${uid} to hold ${count} connections`, async () => {
      const listed = (await call(server.logicUrl, `/users/${uid}`)).body.data?.connections as unknown[];
      return listed.length === count ? true : undefined;
    });
  /** Opens a connection with no token and authenticates in a first auth frame; resolves with the close, or the welcome. */
  const authByFrame = async (server: TestServer, sub: string): Promise<{ client: TestClient; closed?: Closed }> => {
    const client = await TestClient.open(server.gatewayUrl);
    client.send({ op: 'auth', token: await signToken({ sub }), id: 1 });
    const answer = client.next((f) => f.op === 'welcome', 20_000).then(
      () => undefined,
      () => client.closed,
    );
    return { client, closed: await within(answer, 20_000, `${sub}'s auth frame to be answered`) };
  };

  it('refuses the third connection of a user, with 429 (?token=) or 4029 (auth frame) naming the limit; other users and a released slot are let in', async () => {
    await withServer({ auth: 'required', jwtSecret: JWT_SECRET, ...perUser }, async (server) => {
      const alice = [await TestClient.connect(await tokenUrl(server, 'alice')), (await authByFrame(server, 'alice')).client];
      const viaUrl = await outcome(await tokenUrl(server, 'alice'));
      assert.equal(viaUrl.status, 429);
      assert.match(viaUrl.body ?? '', /user holds its limit of 2 connections on this node/);
      const viaFrame = await authByFrame(server, 'alice');
      assert.equal(viaFrame.closed?.code, 4029);
      assert.match(viaFrame.closed?.reason ?? '', /user holds its limit of 2 connections on this node/);
      assert.equal(viaFrame.client.frames.some((f) => f.op === 'welcome'), false);
      // the older connections are untouched, and other users are let in
      for (const held of alice) assert.deepEqual(await held.ping(), { type: 1, data: 'PONG' });
      const bob = [await TestClient.connect(await tokenUrl(server, 'bob')), (await authByFrame(server, 'bob')).client];
      const s = await stats(server);
      assert.equal(s.limits.maxConnectionsPerUser, 2);
      assert.equal(s.auth.failures, 0, 'a refusal for the limit is no token failure');
      const metrics = await (await fetch(`${server.logicUrl}/metrics`)).text();
      assert.match(metrics, /roomcast_refusals_total\{limit="max_connections_per_user"\} 2/);

      await alice[0].closeAndWait();
      await userHolds(server, 'alice', 1);
      const again = await authByFrame(server, 'alice');
      assert.equal(again.closed, undefined, 'a connection of alice after one of hers closed');
      assert.equal((await outcome(await tokenUrl(server, 'alice'))).status, 429);
      await Promise.all([alice[1], again.client, ...bob].map((c) => c.closeAndWait()));
    });
  });

  it('does not count anonymous connections (auth optional); one that authenticates as a user at the limit is closed with 4029', async () => {
    await withServer({ auth: 'optional', jwtSecret: JWT_SECRET, ...perUser, maxConnectionsPerUser: 1 }, async (server) => {
      const alice = await TestClient.connect(await tokenUrl(server, 'alice'));
      const anonymous = await Promise.all([1, 2, 3].map(() => TestClient.connect(server.gatewayUrl)));
      anonymous[0].send({ op: 'auth', token: await signToken({ sub: 'alice' }), id: 1 });
      const closed = await anonymous[0].closedWithin('the anonymous connection that became alice to be closed');
      assert.equal(closed.code, 4029);
      assert.match(closed.reason, /limit of 1 connections on this node/);
      anonymous[1].send({ op: 'auth', token: await signToken({ sub: 'bob' }), id: 1 });
      assert.equal((await anonymous[1].next((f) => f.op === 'reply')).uid, 'bob');
      assert.equal((await outcome(await tokenUrl(server, 'bob'))).status, 429, 'bob, authenticated by a frame, holds his one connection');
      assert.equal((await stats(server)).limits.maxConnectionsPerUser, 2);
      await Promise.all([alice, anonymous[1], anonymous[2]].map((c) => c.closeAndWait()));
    });
  });

  it('lets the slot go when a connection is kicked, dropped, closed while its auth frame is verified, or taken over by a resume', async () => {
    await withServer({ auth: 'required', jwtSecret: JWT_SECRET, ...perUser }, async (server) => {
      const alice = await Promise.all([1, 2].map(async () => TestClient.connect(await tokenUrl(server, 'alice'))));
      await post(server.logicUrl, '/conn/kick', { wsId: alice[0].wsId });
      assert.equal(await alice[0].closeCode(20_000), 4003);
      await userHolds(server, 'alice', 1);
      alice[0] = await TestClient.connect(await tokenUrl(server, 'alice'));
      await dropConnection(server, alice[1]);
      alice[1] = await TestClient.connect(await tokenUrl(server, 'alice'));
      assert.equal((await outcome(await tokenUrl(server, 'alice'))).status, 429);

      // connections gone before (or while) their auth frame is verified hold no slot
      await alice[1].closeAndWait();
      await userHolds(server, 'alice', 1);
      const token = await signToken({ sub: 'alice' });
      for (let i = 0; i < 20; i++) {
        const quitter = await TestClient.open(server.gatewayUrl);
        quitter.send({ op: 'auth', token });
        if (i % 2 === 0) quitter.ws.terminate();
        else void quitter.closeAndWait();
      }
      // once the quitters' sockets are gone, alice holds one connection: one more is let in, and no third
      const second = await until('a second connection of alice', async () => TestClient.connect(await tokenUrl(server, 'alice')));
      assert.equal((await outcome(await tokenUrl(server, 'alice'))).status, 429);

      // a resume takes the session of alice[0] over on a new connection: that one's slot goes, the resuming one keeps its own
      await second.closeAndWait();
      await userHolds(server, 'alice', 1);
      const takeover = await resumeOn(await tokenUrl(server, 'alice'), alice[0].welcome!.resume as string, {});
      assert.equal(takeover.end.op, 'resumed');
      assert.equal(await alice[0].closeCode(20_000), 4500);
      await userHolds(server, 'alice', 1);
      const last = await TestClient.connect(await tokenUrl(server, 'alice'));
      assert.equal((await outcome(await tokenUrl(server, 'alice'))).status, 429, 'the resumed connection is counted once');
      await Promise.all([takeover.client, last].map((c) => c.closeAndWait()));
    });
  });
});
