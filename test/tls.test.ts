/** TLS (wss:// and https://) with a self-signed certificate made here, and secrets kept out of the logs. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { TestClient, isPush } from './helpers/client.js';
import { spawnServer, stopProcess } from './helpers/process.js';
import { serverPerSuite, startServer, withServer } from './helpers/server.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';
import { selfSignedCertificate } from './helpers/tls-cert.js';
import { within } from './helpers/until.js';

function httpsPost(url: string, ca: Buffer, body: object): Promise<{ status: number; body: { code: number; data?: Record<string, unknown> } }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { code: number } }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('TLS', () => {
  const files = selfSignedCertificate();
  const ca = readFileSync(files.cert);
  const server = serverPerSuite({ tlsCert: files.cert, tlsKey: files.key });

  it('serves wss:// and https://: a client trusting the certificate connects, and a push over https reaches it', async () => {
    assert.match(server.gatewayUrl, /^wss:\/\/127\.0\.0\.1:\d+\/connect$/);
    assert.match(server.logicUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    const client = await TestClient.connect(server.gatewayUrl, { ca });
    const answer = await httpsPost(`${server.logicUrl}/push/all`, ca, { val: 'over tls', tag: 3 });
    assert.equal(answer.status, 200);
    assert.equal((await client.next(isPush)).data, 'over tls');
    await client.closeAndWait();
  });

  it('with --max-connections-per-ip, counts a wss:// connection once admitted (not also as an unfinished handshake): past the limit, 429', async () => {
    await withServer({ tlsCert: files.cert, tlsKey: files.key, maxConnectionsPerIp: 2 }, async (limited) => {
      const held = [await TestClient.connect(limited.gatewayUrl, { ca }), await TestClient.connect(limited.gatewayUrl, { ca })];
      await assert.rejects(TestClient.open(limited.gatewayUrl, { ca }), /^Error: handshake answered 429$/);
      await Promise.all(held.map((c) => c.closeAndWait()));
    });
  });

  it('does not start with a file it cannot use, and the error names the flag and the file', async () => {
    const garbage = join(mkdtempSync(join(tmpdir(), 'roomcast-tls-')), 'garbage.pem');
    writeFileSync(garbage, 'not a PEM file\n');
    const other = selfSignedCertificate();
    const cases: [Parameters<typeof startServer>[0], RegExp][] = [
      [{ tlsCert: '/nonexistent/cert.pem', tlsKey: files.key }, /^--tls-cert \/nonexistent\/cert\.pem: cannot read it: ENOENT/],
      [{ tlsCert: files.cert, tlsKey: '/nonexistent/key.pem' }, /^--tls-key \/nonexistent\/key\.pem: cannot read it: ENOENT/],
      [{ tlsCert: garbage, tlsKey: files.key }, /^--tls-cert \S+garbage\.pem does not hold a PEM certificate/],
      [{ tlsCert: files.cert, tlsKey: garbage }, /^--tls-key \S+garbage\.pem does not hold the PEM private key of --tls-cert/],
      [{ tlsCert: files.cert, tlsKey: other.key }, /^--tls-key \S+ does not hold the PEM private key of --tls-cert: it is not the key of the certificate/],
      [{ auth: 'required', jwtPublicKey: '/nonexistent/key.pem' }, /^--jwt-public-key \/nonexistent\/key\.pem: cannot read it: ENOENT/],
      [{ auth: 'required', jwtPublicKey: garbage }, /^--jwt-public-key \S+garbage\.pem does not hold a PEM public key/],
    ];
    for (const [settings, message] of cases) {
      await assert.rejects(startServer(settings), (err: Error) => (assert.match(err.message, message), true));
    }
  });

  it('refuses a client that does not trust the certificate, and plain ws:// on the TLS port', async () => {
    await assert.rejects(TestClient.connect(server.gatewayUrl), /self-signed certificate/);
    const plain = new WebSocket(server.gatewayUrl.replace('wss:', 'ws:'));
    const ended = new Promise<boolean>((resolve) => {
      plain.on('open', () => resolve(false));
      plain.on('error', () => resolve(true));
    });
    const failed = await within(ended, 20_000, 'plain ws:// on the TLS port to open or fail');
    assert.equal(failed, true);
  });
});

describe('secrets', () => {
  it('never appear in the logs, even at debug level and when clients send wrong ones', async () => {
    const secrets = { apiKey: 'api-key-7f3a91', jwtSecret: `${JWT_SECRET}-8b2c`, resumeSecret: 'resume-secret-4d5e6f' };
    const server = await spawnServer(
      ['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0', '--log-level', 'trace', '--auth', 'required', '--jwt-secret', secrets.jwtSecret, '--resume-secret', secrets.resumeSecret],
      { ROOMCAST_API_KEY: secrets.apiKey },
    );
    try {
      const good = await TestClient.connect(`${server.gatewayUrl}?token=${await signToken({ sub: 'u' }, secrets.jwtSecret)}`);
      const bad = new WebSocket(`${server.gatewayUrl}?token=${await signToken({ sub: 'u' }, 'wrong-secret-wrong-secret-wrong-secret')}`);
      const closed = new Promise((resolve) => bad.on('close', resolve));
      assert.equal(await within(closed, 20_000, 'the connection with the wrong secret to be closed'), 4001, 'the token with the wrong secret is refused');
      const wrongKey = await fetch(`${server.logicUrl}/stats`, { headers: { authorization: `Bearer ${secrets.apiKey}x` } });
      assert.equal(wrongKey.status, 401, 'the wrong API key is refused');
      const rightKey = await fetch(`${server.logicUrl}/stats`, { headers: { authorization: `Bearer ${secrets.apiKey}` } });
      assert.equal(rightKey.status, 200);
      await good.closeAndWait();
    } finally {
      await stopProcess(server);
    }
    const output = JSON.stringify(server.lines) + server.stderr();
    assert.ok(server.lines.length > 2, 'the server logged something');
    for (const [name, secret] of Object.entries(secrets)) assert.ok(!output.includes(secret), `${name} appears in the logs`);
    assert.equal(server.lines.filter((l) => l.msg.includes('--jwt-secret is')).length, 0, 'no warning for a secret of 32 bytes or more');
  });

  it('warns at startup, naming only its length, when --jwt-secret is shorter than 32 bytes', async () => {
    const short = 'short-secret-9f1';
    const server = await spawnServer(['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0', '--auth', 'optional', '--jwt-secret', short]);
    await stopProcess(server);
    const warnings = server.lines.filter((l) => l.msg.includes('--jwt-secret is'));
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0].level, 40);
    assert.equal(warnings[0].jwtSecretBytes, 16);
    assert.match(warnings[0].msg, /--jwt-secret is 16 bytes long: use at least 32 random bytes/);
    assert.ok(!JSON.stringify(server.lines).includes(short), 'the secret appears in the logs');
  });
});
