/**
 * `roomcast token`: the tokens it prints let clients in on a gateway with the
 * same secret, with the claims asked for, and a request the gateway would
 * refuse gets an error naming the flag instead of a token.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { TestClient } from './helpers/client.js';
import { runCli } from './helpers/process.js';
import { serverPerSuite } from './helpers/server.js';
import { JWT_SECRET } from './helpers/tokens.js';

/** The token `roomcast token` printed, after checking it printed nothing else. */
async function mint(args: string[], env: Record<string, string> = {}): Promise<string> {
  const run = await runCli(['token', ...args], env);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, '');
  assert.match(run.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  return run.stdout.trim();
}

describe('roomcast token', () => {
  const server = serverPerSuite({ auth: 'required', jwtSecret: JWT_SECRET, jwtAudience: 'chat-app', jwtIssuer: 'backend' });

  it("prints an HS256 token the gateway accepts: its sub is the welcome's uid, its rooms are the ones the client may join, it expires after --ttl", async () => {
    const before = Math.floor(Date.now() / 1000);
    const token = await mint(['--sub', 'alice', '--rooms', 'lobby, chat:*', '--ttl', '600', '--jwt-secret', JWT_SECRET, '--jwt-audience', 'chat-app', '--jwt-issuer', 'backend']);
    assert.deepEqual(decodeProtectedHeader(token), { alg: 'HS256', typ: 'JWT' });
    const claims = decodeJwt(token);
    assert.deepEqual({ ...claims, iat: 0, exp: 0 }, { sub: 'alice', rooms: ['lobby', 'chat:*'], aud: 'chat-app', iss: 'backend', iat: 0, exp: 0 });
    assert.ok(claims.iat! >= before && claims.iat! <= before + 5, `iat ${claims.iat}, now ${before}`);
    assert.equal(claims.exp! - claims.iat!, 600);

    const client = await TestClient.connect(`${server.gatewayUrl}?token=${token}`);
    assert.equal(client.welcome?.uid, 'alice');
    for (const [room, allowed] of [['lobby', true], ['chat:7', true], ['elsewhere', false]] as const) {
      client.send({ op: 'join', room, id: room });
      const answer = await client.next((f) => (f.op === 'reply' || f.op === 'error') && f.id === room);
      assert.equal(answer.op, allowed ? 'reply' : 'error', room);
    }
    await client.closeAndWait();
  });

  it('reads the secret, the audience and the issuer from the environment, as the gateway does; --ttl 0 leaves exp out', async () => {
    const token = await mint(['--sub', 'bob', '--ttl', '0'], { ROOMCAST_JWT_SECRET: JWT_SECRET, ROOMCAST_JWT_AUDIENCE: 'chat-app', ROOMCAST_JWT_ISSUER: 'backend' });
    const claims = decodeJwt(token);
    assert.equal(claims.exp, undefined);
    assert.equal(claims.rooms, undefined);
    const client = await TestClient.connect(`${server.gatewayUrl}?token=${token}`);
    assert.equal(client.welcome?.uid, 'bob');
    await client.closeAndWait();
  });

  it('refuses a token with the wrong secret at the gateway (a check that the gateway verifies what the command signs)', async () => {
    const token = await mint(['--sub', 'mallory', '--jwt-secret', `${JWT_SECRET}-but-another`, '--jwt-audience', 'chat-app', '--jwt-issuer', 'backend']);
    const client = await TestClient.open(`${server.gatewayUrl}?token=${token}`);
    const closed = await client.closed;
    assert.equal(closed.code, 4001);
    assert.equal(closed.reason, 'the token is not valid: its signature does not match the key');
    assert.equal(client.frames.some((f) => f.op === 'welcome'), false);
  });

  it('warns of a short secret on stderr, and still prints the token', async () => {
    const run = await runCli(['token', '--sub', 'carol', '--jwt-secret', 'short']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    assert.equal(
      run.stderr,
      'warning: --jwt-secret is 5 bytes long: use at least 32 random bytes (openssl rand -base64 48), or anyone holding one client token can find it by brute force and sign tokens of their own\n',
    );
  });

  it('refuses what the gateway would refuse, naming the flag, and prints no token', async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['--sub', 'dave'], {}, /--jwt-secret <secret> \(or ROOMCAST_JWT_SECRET\) is needed/],
      [['--sub', 'dave', '--jwt-secret', ''], {}, /--jwt-secret is empty \(an unset shell variable\?\)/],
      [['--jwt-secret', JWT_SECRET], {}, /required option '--sub <uid>' not specified/],
      [['--sub', '', '--jwt-secret', JWT_SECRET], {}, /--sub must be a user id, a string of 1-128 characters/],
      [['--sub', 'x'.repeat(129), '--jwt-secret', JWT_SECRET], {}, /--sub must be a user id/],
      [['--sub', 'dave', '--rooms', 'lobby,bad room', '--jwt-secret', JWT_SECRET], {}, /--rooms: the rooms claim holds "bad room", which is neither a room id nor a prefix ending in \*/],
      [['--sub', 'dave', '--ttl', '-5', '--jwt-secret', JWT_SECRET], {}, /the ttl must be an integer from 0 to 31536000, got "-5"/],
      [['--sub', 'dave', '--ttl', '31536001', '--jwt-secret', JWT_SECRET], {}, /the ttl must be an integer from 0 to 31536000, got 31536001/],
    ];
    for (const [args, env, message] of cases) {
      const run = await runCli(['token', ...args], env);
      assert.equal(run.code, 1, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
      assert.equal(run.stdout, '', args.join(' '));
      assert.match(run.stderr, message, args.join(' '));
    }
  });
});
