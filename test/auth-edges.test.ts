/** Edges of client auth found in review, over real sockets: tokens applied out of order, keys that can verify nothing, clock tolerance, and resuming after an auth frame. */
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT, decodeJwt } from 'jose';
import { WebSocket } from 'ws';
import { TestClient, isPush, type Frame } from './helpers/client.js';
import { post, postJson } from './helpers/http.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { pushInTurn } from './helpers/pushes.js';
import { RawClient } from './helpers/raw-client.js';
import { assertResumed, awayMember, resumeEnd, type Position } from './helpers/resume.js';
import { serverPerSuite, startServer, withServer, type TestServer } from './helpers/server.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';
import { until, within } from './helpers/until.js';

describe('refresh frames', () => {
  const server = serverPerSuite({ auth: 'required', jwtSecret: JWT_SECRET, heartbeatTimeout: 0 });

  it('apply in the order the client sent them: the last token is the one in force, whatever order their verifications finish in', async () => {
    const client = await TestClient.connect(`${server.gatewayUrl}?token=${await signToken({ sub: 'ann', expiresIn: 60 })}`);
    const count = 40;
    const tokens = await Promise.all(
      Array.from({ length: count }, (_, i) => signToken({ sub: 'ann', expiresIn: 60 + i, rooms: [i === count - 1 ? 'newest' : 'older'] })),
    );
    tokens.forEach((token, i) => client.send({ op: 'refresh', token, id: i }));
    const replies = await client.collect((f) => f.op === 'reply', count);
    assert.deepEqual(
      replies.map((r) => r.id),
      tokens.map((_, i) => i),
    );
    client.send({ op: 'join', room: 'newest', id: 'n' });
    assert.equal((await client.next((f) => f.id === 'n')).op, 'reply');
    client.send({ op: 'join', room: 'older', id: 'o' });
    assert.equal((await client.next((f) => f.id === 'o')).code, 'forbidden');
    await client.closeAndWait();
  });
  it('that narrow the rooms claim leave the connection in its rooms (pushes still come), which it may then no longer leave by itself', async () => {
    const client = await TestClient.connect(`${server.gatewayUrl}?token=${await signToken({ sub: 'nan', expiresIn: 60, rooms: ['wide:*'] })}`);
    client.send({ op: 'join', room: 'wide:1', id: 'j' });
    assert.equal((await client.next((f) => f.id === 'j')).changed, true);
    client.send({ op: 'refresh', token: await signToken({ sub: 'nan', expiresIn: 60, rooms: ['narrow'] }), id: 'r' });
    assert.equal((await client.next((f) => f.id === 'r')).op, 'reply');
    await post(server.logicUrl, '/push/room', { id: 'wide:1', val: 'still here', tag: 2 });
    assert.equal((await client.next(isPush)).data, 'still here');
    client.send({ op: 'leave', room: 'wide:1', id: 'l' });
    assert.equal((await client.next((f) => f.id === 'l')).code, 'forbidden');
    await client.closeAndWait();
  });
});

describe('a JWKS file (--jwt-public-key)', () => {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const encryption = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicJwk = { ...publicKey.export({ format: 'jwk' }), kid: 'sig1' };

  function jwksFile(keys: unknown[]): string {
    const path = join(mkdtempSync(join(tmpdir(), 'roomcast-jwks-')), 'jwks.json');
    writeFileSync(path, JSON.stringify({ keys }));
    return path;
  }

  it('that cannot verify any token is refused at startup, naming the key and what is wrong with it', async () => {
    const cases: [unknown[], RegExp][] = [
      [[{ ...privateKey.export({ format: 'jwk' }), kid: 'leaked' }], /key 0 \(kid leaked\) is a private key/],
      [[publicJwk, { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }], /key 1 \(kid hmac\) is a symmetric \(oct\) key: .*--jwt-secret/],
      [[{ kty: 'RSA', n: 'AQAB', e: 'zz' }], /key 0 holds a 17-bit RSA key: .*at least 2048 bits/],
      [[{ kty: 'EC', crv: 'P-256', x: 'AQAB' }], /key 0 is not a valid public key/],
      [['nonsense'], /key 0 is not a JSON object/],
      [[], /holds no key that can verify tokens/],
      [[{ ...encryption.publicKey.export({ format: 'jwk' }), use: 'enc' }], /holds no key that can verify tokens/],
    ];
    for (const [keys, message] of cases) {
      const path = jwksFile(keys);
      await assert.rejects(startServer({ auth: 'required', jwtPublicKey: path }), (err: Error) => {
        assert.match(err.message, message);
        assert.ok(err.message.includes(`--jwt-public-key ${path}`), err.message);
        return true;
      });
    }
  });

  it('or a PEM file holding an RSA key shorter than 2048 bits, which jose never verifies with, is refused at startup', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'roomcast-pem-')), 'short.pem');
    writeFileSync(path, generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }));
    await assert.rejects(startServer({ auth: 'required', jwtPublicKey: path }), /holds a 1024-bit RSA key/);
  });

  it('or a PEM file holding a key jose cannot verify with (secp256k1, Ed448, an RSA-PSS SPKI) is refused at startup, naming what verifies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'roomcast-pem-'));
    const cases: [string, KeyObject, RegExp][] = [
      ['k1.pem', generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey, /holds an EC key on curve secp256k1: .*P-256 \(ES256\)/],
      ['ed448.pem', generateKeyPairSync('ed448').publicKey, /holds an ed448 key, which cannot verify JWTs/],
      ['pss.pem', generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).publicKey, /holds an RSA-PSS key .*plain RSA public key/],
    ];
    for (const [file, key, message] of cases) {
      writeFileSync(join(dir, file), key.export({ type: 'spki', format: 'pem' }));
      await assert.rejects(startServer({ auth: 'required', jwtPublicKey: join(dir, file) }), message);
    }
  });

  it('holding a JWK that could never verify a token (a curve or alg jose refuses, a "use" other than sig) is refused at startup, naming the key', async () => {
    const cases: [unknown, RegExp][] = [
      [{ ...generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ format: 'jwk' }), kid: 'k1' }, /key 1 \(kid k1\) holds an EC key on curve secp256k1/],
      [{ ...generateKeyPairSync('ed448').publicKey.export({ format: 'jwk' }), kid: 'ed448' }, /key 1 \(kid ed448\) holds an ed448 key/],
      [{ ...publicJwk, kid: 'p256', alg: 'ES384' }, /key 1 \(kid p256\) names "alg":"ES384", which it cannot verify \(it verifies ES256\)/],
      [{ ...publicJwk, kid: 'typo', use: 'signature' }, /key 1 \(kid typo\) has "use":"signature": .*"sig"/],
    ];
    for (const [jwk, message] of cases) {
      await assert.rejects(startServer({ auth: 'required', jwtPublicKey: jwksFile([publicJwk, jwk]) }), message);
    }
  });

  it('verifies a token that names no kid with whichever of several keys signed it (a key rotation), and refuses it when none did', async () => {
    const next = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const path = jwksFile([publicJwk, { ...next.publicKey.export({ format: 'jwk' }), kid: 'sig2' }]);
    const server = await startServer({ auth: 'required', jwtPublicKey: path });
    try {
      for (const [key, sub] of [[privateKey, 'old'], [next.privateKey, 'new']] as const) {
        const token = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject(sub).sign(key);
        const client = await TestClient.connect(`${server.gatewayUrl}?token=${token}`);
        assert.equal(client.welcome?.uid, sub);
        await client.closeAndWait();
      }
      const forged = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('eve').sign(stranger.privateKey);
      const refused = await (await TestClient.open(`${server.gatewayUrl}?token=${forged}`)).closedWithin();
      assert.equal(refused.code, 4001);
      assert.match(refused.reason, /its signature does not match the key/);
      const wrongAlgorithm = await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setSubject('eve').sign(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
      assert.match((await (await TestClient.open(`${server.gatewayUrl}?token=${wrongAlgorithm}`)).closedWithin()).reason, /its algorithm is not accepted here/);
    } finally {
      await server.close();
    }
  });

  it('may hold keys published for encryption: they are left out, and a token signed with one is refused', async () => {
    const path = jwksFile([{ ...encryption.publicKey.export({ format: 'jwk' }), kid: 'enc1', use: 'enc' }, publicJwk]);
    const server = await startServer({ auth: 'required', jwtPublicKey: path });
    try {
      const good = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'sig1' }).setSubject('bea').sign(privateKey);
      const client = await TestClient.connect(`${server.gatewayUrl}?token=${good}`);
      assert.equal(client.welcome?.uid, 'bea');
      await client.closeAndWait();
      const withEncryptionKey = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'enc1' }).setSubject('bea').sign(encryption.privateKey);
      const refused = await TestClient.open(`${server.gatewayUrl}?token=${withEncryptionKey}`);
      const closed = await refused.closedWithin();
      assert.equal(closed.code, 4001);
      assert.match(closed.reason, /no key of the key set matches it/);
    } finally {
      await server.close();
    }
  });
});

describe('--jwt-audience and --jwt-issuer', () => {
  const server = serverPerSuite({ auth: 'required', jwtSecret: JWT_SECRET, jwtAudience: 'roomcast', jwtIssuer: 'https://id.example.com' });
  const secret = new TextEncoder().encode(JWT_SECRET);
  const token = (claims: { aud?: string | string[]; iss?: string }): Promise<string> => {
    const jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('amy').setExpirationTime('1m');
    if (claims.aud !== undefined) jwt.setAudience(claims.aud);
    if (claims.iss !== undefined) jwt.setIssuer(claims.iss);
    return jwt.sign(secret);
  };

  it('let in a token for this audience from this issuer, and close others with 4001 naming the claim', async () => {
    const good = await TestClient.connect(`${server.gatewayUrl}?token=${await token({ aud: 'roomcast', iss: 'https://id.example.com' })}`);
    assert.equal(good.welcome?.uid, 'amy');
    const among = await TestClient.connect(`${server.gatewayUrl}?token=${await token({ aud: ['other-service', 'roomcast'], iss: 'https://id.example.com' })}`);
    assert.equal(among.welcome?.uid, 'amy', 'an aud list that names roomcast');
    const refused: [Promise<string>, RegExp][] = [
      [token({ iss: 'https://id.example.com' }), /"aud"/],
      [token({ aud: 'other-service', iss: 'https://id.example.com' }), /"aud"/],
      [token({ aud: 'roomcast' }), /"iss"/],
      [token({ aud: 'roomcast', iss: 'https://evil.example.com' }), /"iss"/],
    ];
    for (const [made, reason] of refused) {
      const client = await TestClient.open(`${server.gatewayUrl}?token=${await made}`);
      const closed = await client.closedWithin();
      assert.equal(closed.code, 4001);
      assert.match(closed.reason, reason);
    }
    // a refresh for another audience is refused, and the connection goes on with its token
    good.send({ op: 'refresh', token: await token({ aud: 'other-service', iss: 'https://id.example.com' }), id: 1 });
    const answer = await good.next((f) => f.id === 1);
    assert.equal(answer.code, 'forbidden');
    assert.match(String(answer.message), /"aud"/);
    assert.deepEqual(await good.ping(), { type: 1, data: 'PONG' });
    await Promise.all([good.closeAndWait(), among.closeAndWait()]);
  });
});

describe('--jwt-clock-tolerance', () => {
  const lenient = serverPerSuite({ auth: 'required', jwtSecret: JWT_SECRET, heartbeatTimeout: 0 });
  const strict = serverPerSuite({ auth: 'required', jwtSecret: JWT_SECRET, heartbeatTimeout: 0, jwtClockTolerance: 0 });
  const secret = new TextEncoder().encode(JWT_SECRET);
  /** A token whose claims are these many seconds from the current second, as signed by a backend whose clock is ahead or behind. */
  const tokenAround = (claims: { nbf?: number; iat?: number; exp: number }): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    const jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('kai').setExpirationTime(now + claims.exp);
    if (claims.nbf !== undefined) jwt.setNotBefore(now + claims.nbf);
    if (claims.iat !== undefined) jwt.setIssuedAt(now + claims.iat);
    return jwt.sign(secret);
  };
  /** Connects with a token that is good for a minute, then refreshes it with `token`: the reply or error frame. */
  const refreshWith = async (gatewayUrl: string, token: string): Promise<Record<string, unknown>> => {
    const client = await TestClient.connect(`${gatewayUrl}?token=${await tokenAround({ exp: 60 })}`);
    client.send({ op: 'refresh', token, id: 'r' });
    const answer = await client.next((f) => f.id === 'r');
    await client.closeAndWait();
    return answer;
  };

  it('let in a token whose nbf is up to the tolerance ahead (5 s by default), and refuse it with 0, in the URL and in a refresh', async () => {
    // nbf 3 to 4 s ahead: under the 5 s default, so a strict server that fell back to it would let these in,
    // and far enough that the round trips of a loaded machine do not reach it before the strict server's checks
    const ahead = await tokenAround({ nbf: 4, iat: 4, exp: 60 });
    const accepted = await TestClient.connect(`${lenient.gatewayUrl}?token=${ahead}`);
    assert.equal(accepted.welcome?.uid, 'kai');
    await accepted.closeAndWait();
    assert.equal((await refreshWith(lenient.gatewayUrl, ahead)).op, 'reply');

    // signed anew: the one above may have come closer to its nbf during the round trips since, on a loaded machine
    const stillAhead = await tokenAround({ nbf: 4, iat: 4, exp: 60 });
    const refused = await (await TestClient.open(`${strict.gatewayUrl}?token=${stillAhead}`)).closedWithin('the strict server to close a token whose nbf is ahead');
    assert.equal(refused.code, 4001);
    assert.match(refused.reason, /"nbf"/);
    const refresh = await refreshWith(strict.gatewayUrl, await tokenAround({ nbf: 4, iat: 4, exp: 60 }));
    assert.equal(refresh.code, 'forbidden');
    assert.match(String(refresh.message), /"nbf"/);
    // iat is not checked, with or without a tolerance
    const issuedAhead = await TestClient.connect(`${strict.gatewayUrl}?token=${await tokenAround({ iat: 30, exp: 60 })}`);
    assert.equal(issuedAhead.welcome?.uid, 'kai');
    await issuedAhead.closeAndWait();
  });

  it('let in a token whose exp passed within the tolerance, and refuse it with 0, in the URL and in a refresh', async () => {
    const justExpired = await tokenAround({ exp: -1 });
    const accepted = await TestClient.connect(`${lenient.gatewayUrl}?token=${justExpired}`);
    assert.equal(accepted.welcome?.uid, 'kai');
    await accepted.closeAndWait();
    const lenientRefresh = await refreshWith(lenient.gatewayUrl, justExpired);
    assert.equal(lenientRefresh.op, 'reply');
    assert.equal(lenientRefresh.expiresAt, decodeJwt(justExpired).exp! * 1000, "the reply's expiresAt is the token's exp, without the tolerance");

    const refused = await (await TestClient.open(`${strict.gatewayUrl}?token=${justExpired}`)).closedWithin('the strict server to close a token just expired');
    assert.equal(refused.code, 4001);
    assert.match(refused.reason, /expired/);
    const refresh = await refreshWith(strict.gatewayUrl, justExpired);
    assert.equal(refresh.code, 'forbidden');
    assert.match(String(refresh.message), /expired/);
    assert.equal((await refreshWith(lenient.gatewayUrl, await tokenAround({ exp: -10 }))).code, 'forbidden', 'an exp past the tolerance');
  });

  it('close the connection with 4001 at exp plus the tolerance, not before; a refresh moves that moment by the same rule', async () => {
    // The close is awaited until the sweep (every second) plus 2 s of margin for a loaded machine: under the
    // tolerance, so a close at exp plus twice the tolerance is always too late
    const toleranceMs = 4000;
    const lateMs = 1000 + 2000;
    await withServer({ auth: 'required', jwtSecret: JWT_SECRET, heartbeatTimeout: 0, jwtClockTolerance: toleranceMs / 1000 }, async (server) => {
      /** When the server closes `client`, and with which code: listened for from the start, so an early close is seen as early. */
      const closeOf = (client: TestClient): Promise<{ code: number; at: number }> =>
        new Promise((resolve) => client.ws.once('close', (code) => resolve({ code, at: Date.now() })));
      /** Waits for the close, which the gateway (checking expiry every second) sends within a second and a margin of closesAt; returns when it came. */
      const closedAt = async (close: Promise<{ code: number; at: number }>, closesAt: number): Promise<number> => {
        const { code, at } = await within(close, closesAt - Date.now() + lateMs, 'the 4001 close at exp + tolerance');
        assert.equal(code, 4001);
        return at;
      };
      const token = await tokenAround({ exp: 2 });
      const exp = decodeJwt(token).exp!;
      const expiring = await TestClient.connect(`${server.gatewayUrl}?token=${token}`);
      const refreshed = await TestClient.connect(`${server.gatewayUrl}?token=${token}`);
      const [expiringClose, refreshedClose] = [closeOf(expiring), closeOf(refreshed)];
      // 3 s or more after the first exp: the refreshed connection is still open when the first one's close is seen
      const laterToken = await tokenAround({ exp: 5 });
      const laterExp = decodeJwt(laterToken).exp!;
      refreshed.send({ op: 'refresh', token: laterToken, id: 1 });
      assert.equal((await refreshed.next((f) => f.id === 1)).op, 'reply');

      const firstClose = await closedAt(expiringClose, exp * 1000 + toleranceMs);
      assert.ok(firstClose >= exp * 1000 + toleranceMs, `closed ${exp * 1000 + toleranceMs - firstClose} ms before exp + tolerance`);
      assert.equal(refreshed.ws.readyState, WebSocket.OPEN, 'the refreshed connection outlives the first token');
      const secondClose = await closedAt(refreshedClose, laterExp * 1000 + toleranceMs);
      assert.ok(secondClose >= laterExp * 1000 + toleranceMs, `closed ${laterExp * 1000 + toleranceMs - secondClose} ms before the refreshed exp + tolerance`);
    });
  });
});

describe('a resume after auth frames (--auth optional: the welcome comes before the token)', () => {
  const server = serverPerSuite({ auth: 'optional', jwtSecret: JWT_SECRET, resumeSecret: 'test-secret' });

  /** A session of `uid` in `room` whose connection dropped, and the 20 pushes (10 to the room, 10 to all) it then missed. */
  async function awayUserSession(uid: string, room: string): Promise<{ resume: string; wsId: string; since: Record<string, Position>; missed: string[] }> {
    const token = await signToken({ sub: uid, expiresIn: 600 });
    const { client, since } = await awayMember({ gatewayUrl: `${server.gatewayUrl}?token=${token}`, logicUrl: server.logicUrl }, [room]);
    const { vals } = await pushInTurn(server.logicUrl, room, 20, 2, `${room}:`);
    return { resume: client.welcome!.resume as string, wsId: client.wsId, since, missed: vals };
  }

  const authFrame = async (uid: string): Promise<string> => JSON.stringify({ op: 'auth', token: await signToken({ sub: uid, expiresIn: 600 }), id: 'auth' });

  it("an auth frame of the session's user and the resume in one write: the resume waits for the token, then every missed push in order and resumed, recovered:true", async () => {
    const away = await awayUserSession('olga', 'olga-room');
    const again = await RawClient.connect(server.gatewayUrl);
    await again.welcome();
    again.sendTexts([await authFrame('olga'), JSON.stringify({ op: 'resume', token: away.resume, since: away.since, id: 1 })]);
    const frames = await until(
      () => `resumed or an error after the auth frame (got ${JSON.stringify(again.json().slice(-3))})`,
      () => {
        const got = again.json().slice(1) as Frame[];
        return got.some((f) => f.op === 'resumed' || f.op === 'error') ? got : undefined;
      },
    );
    assert.deepEqual([frames[0].op, frames[0].id, frames[0].uid], ['reply', 'auth', 'olga'], 'the answer to the auth frame comes first');
    const end = frames.at(-1)!;
    assertResumed(end, { wsId: away.wsId, recovered: true });
    assert.deepEqual(
      frames.slice(1, -1).map((f) => (isPush(f) ? f.data : f.op)),
      away.missed,
    );
    again.socket.destroy();
  });

  it('the auth frame does not end the newcomer hold: a push to all sent between its reply and the resume comes once, in order, before resumed', async () => {
    const away = await awayUserSession('pavel', 'pavel-room');
    const again = await TestClient.connect(server.gatewayUrl, { quiet: true });
    again.send(await authFrame('pavel'));
    assert.equal((await again.next((f) => f.op === 'reply')).uid, 'pavel');
    const live = await post(server.logicUrl, '/push/all', { val: 'between', tag: 2 });
    assert.equal(live.status, 200, live.text);
    again.send({ op: 'resume', token: away.resume, since: away.since, id: 1 });
    const end = await until('resumed or an error', () => again.frames.find((f) => f.op === 'resumed' || f.op === 'error'));
    assertResumed(end, { wsId: away.wsId, recovered: true });
    // held frames the replay did not cover would go out right behind resumed: before the answer to a PING sent after it
    await again.ping();
    assert.deepEqual(
      again.frames.filter((f) => isPush(f) || f.op === 'resumed').map((f) => (isPush(f) ? f.data : f.op)),
      [...away.missed, 'between', 'resumed'],
    );
    await again.closeAndWait();
  });

  it('a refresh frame before the resume (the token in the URL) leaves it the first frame too', async () => {
    const away = await awayUserSession('rita', 'rita-room');
    const again = await TestClient.connect(`${server.gatewayUrl}?token=${await signToken({ sub: 'rita', expiresIn: 600 })}`, { quiet: true });
    again.send({ op: 'refresh', token: await signToken({ sub: 'rita', expiresIn: 900 }), id: 'refresh' });
    const end = await resumeEnd(again, away.resume, away.since);
    assertResumed(end.frame!, { wsId: away.wsId, recovered: true });
    assert.deepEqual(
      again.frames.filter(isPush).map((f) => f.data),
      away.missed,
    );
    await again.closeAndWait();
  });

  it("an auth frame of another user, then the resume: bad_resume, the token is another user's", async () => {
    const away = await awayUserSession('quinn', 'quinn-room');
    const again = await TestClient.connect(server.gatewayUrl, { quiet: true });
    again.send(await authFrame('mallory'));
    const end = await resumeEnd(again, away.resume, away.since);
    assert.equal(end.frame?.code, 'bad_resume', JSON.stringify(end));
    assert.match(String(end.frame?.message), /forged, foreign or expired/);
    assert.equal(again.frames.filter(isPush).length, 0, 'nothing of the session reaches the other user');
    await again.closeAndWait();
  });

  it("a resume with no auth at all, of a user's session: bad_resume, the token is another user's", async () => {
    const away = await awayUserSession('sven', 'sven-room');
    const again = await TestClient.connect(server.gatewayUrl, { quiet: true });
    const end = await resumeEnd(again, away.resume, away.since);
    assert.equal(end.frame?.code, 'bad_resume', JSON.stringify(end));
    assert.match(String(end.frame?.message), /forged, foreign or expired/);
    await again.closeAndWait();
  });
});

describe('user ids that are not well-formed Unicode (a lone UTF-16 surrogate)', { skip: skipWithoutRedis }, () => {
  // Redis stores and routes them as UTF-8, where every lone surrogate is U+FFFD: "\ud800" and "\udc00" would be one user
  let redis: RedisServer;
  let server: TestServer;
  before(async () => {
    redis = await RedisServer.start();
    server = await startServer({ broker: redis.url, auth: 'required', jwtSecret: JWT_SECRET });
  });
  after(async () => {
    await server?.close();
    await redis?.stop();
  });

  /** jose would encode the sub as UTF-8 (a lone surrogate becomes U+FFFD): signed by hand, with the sub as a JSON escape. */
  function tokenWithEscapedSub(sub: string): string {
    const input = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from(`{"sub":${JSON.stringify(sub)}}`).toString('base64url')}`;
    return `${input}.${createHmac('sha256', JWT_SECRET).update(input).digest('base64url')}`;
  }

  it('in a token are refused with 4001 naming the sub; non-ASCII ones are users like any other', async () => {
    const closed = await (await TestClient.open(`${server.gatewayUrl}?token=${tokenWithEscapedSub('\ud800')}`)).closedWithin();
    assert.equal(closed.code, 4001);
    assert.match(closed.reason, /sub claim/);
    const zoe = await TestClient.connect(`${server.gatewayUrl}?token=${tokenWithEscapedSub('zoë 🎉')}`);
    assert.equal(zoe.welcome?.uid, 'zoë 🎉');
    await until('the push to zoë reaches her node', async () => ((await postJson(server.logicUrl, '/push/user', { uid: 'zoë 🎉', val: 'hi', tag: 2 })).body.data?.nodes === 1 ? true : undefined));
    assert.equal((await zoe.next(isPush)).data, 'hi');
    await zoe.closeAndWait();
  });

  it('in POST /push/user are answered 400 naming uid (a URL path cannot carry one: it is percent-encoded UTF-8)', async () => {
    const push = await postJson(server.logicUrl, '/push/user', { uid: '\udc00', val: 'v', tag: 2 });
    assert.equal(push.status, 400);
    assert.match(push.body.msg, /uid must be .*well-formed Unicode/);
  });
});
