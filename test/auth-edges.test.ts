/** Edges of client auth found in review, over real sockets: tokens applied out of order, and keys that can verify nothing. */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { TestClient } from './helpers/client.js';
import { serverPerSuite, startServer } from './helpers/server.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';
import { within } from './helpers/until.js';

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
      const closed = await within(refused.closed, 20_000, 'refused to be closed');
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
      const closed = await within(client.closed, 20_000, 'client to be closed');
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
