import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { TestClient, isPush } from './helpers/client.js';
import { envName } from '../src/config.js';
import { call } from './helpers/http.js';
import { exitOrKill, runCli, spawnServer, stopProcess, type ServerProcess } from './helpers/process.js';

const sh = promisify(execFile);

async function curl(command: string): Promise<{ code: number; msg: string; data?: Record<string, unknown> }> {
  const { stdout } = await sh('sh', ['-c', command]);
  return JSON.parse(stdout) as { code: number; msg: string; data?: Record<string, unknown> };
}

describe('the seed README, verbatim', () => {
  let server: ServerProcess;
  before(async () => {
    server = await spawnServer([]);
  });
  after(async () => {
    await stopProcess(server);
  });

  it('listens on :8888/connect and :9999 by default and says so in one log line', () => {
    const started = server.lines.find((l) => typeof l.gateway === 'string');
    assert.equal(started?.gateway, 'ws://127.0.0.1:8888/connect');
    assert.equal(started?.logic, 'http://127.0.0.1:9999');
    assert.match(started?.msg ?? '', /listening/);
  });

  it('answers every curl call of the seed README as written', async () => {
    const client = await TestClient.connect('ws://0.0.0.0:8888/connect');
    assert.deepEqual(await client.ping('PING'), { type: 1, data: 'PONG' });

    const all = await curl('curl -s http://0.0.0.0:9999/push/all -X POST -d "val=test push&tag=3"');
    assert.equal(all.code, 0);
    assert.deepEqual(await client.next(isPush), { type: 3, data: 'test push', seq: all.data?.seq });

    const room = await curl('curl -s http://0.0.0.0:9999/push/room -X POST -d "val=test push&tag=3&id=1"');
    assert.equal(room.code, 0);
    assert.equal(room.data?.room, '1');

    // the README's wsId is an example: verbatim it names no connection, so 404 says so
    const exampleJoin = await curl('curl -s http://0.0.0.0:9999/room/join -X POST -d "id=1&wsId=3cc97117-aa4d-55bb-86db-a1d77e51283b"');
    assert.deepEqual(exampleJoin, { code: 404, msg: 'wsId "3cc97117-aa4d-55bb-86db-a1d77e51283b" is not connected' });
    const exampleLeave = await curl('curl -s http://0.0.0.0:9999/room/leave -X POST -d "id=1&wsId=3cc97117-aa4d-55bb-86db-a1d77e51283b"');
    assert.equal(exampleLeave.code, 404);

    // the same calls with the wsId the client got in its welcome frame
    const join = await curl(`curl -s http://0.0.0.0:9999/room/join -X POST -d "id=1&wsId=${client.wsId}"`);
    assert.deepEqual(join, { code: 0, msg: 'ok', data: { room: '1', wsId: client.wsId, changed: true } });
    const pushed = await curl('curl -s http://0.0.0.0:9999/push/room -X POST -d "val=test push&tag=3&id=1"');
    assert.deepEqual(await client.next(isPush), { type: 3, data: 'test push', room: '1', seq: pushed.data?.seq });
    const leave = await curl(`curl -s http://0.0.0.0:9999/room/leave -X POST -d "id=1&wsId=${client.wsId}"`);
    assert.equal(leave.data?.changed, true);
    await client.closeAndWait();
  });
});

describe('roomcast command line', () => {
  it('--help documents every flag and its environment variable', async () => {
    const { code, stdout } = await runCli(['--help']);
    assert.equal(code, 0);
    const flags = ['host', 'gateway-port', 'logic-port', 'heartbeat-timeout', 'api-key', 'max-payload', 'send-buffer-limit', 'allow-client-join'];
    for (const flag of flags) {
      assert.ok(stdout.includes(`--${flag}`), `--${flag} missing from --help`);
      const env = `ROOMCAST_${flag.replace(/-/g, '_').toUpperCase()}`;
      assert.ok(stdout.replace(/\s+/g, ' ').includes(env), `${env} missing from --help`);
    }
  });

  it("each server command's --help gives every flag its default and its environment variable", async () => {
    for (const command of ['start', 'gateway', 'logic']) {
      const { code, stdout } = await runCli([command, '--help']);
      assert.equal(code, 0);
      const options = stdout.slice(stdout.indexOf('Options:\n'));
      // one entry per flag: its line and the wrapped lines of its description
      const entries = options.split(/\n(?= {2}-)/).slice(1).map((entry) => entry.replace(/\s+/g, ' ').trim());
      const flags = entries.map((entry) => [/--[a-z-]+/.exec(entry)![0], entry]).filter(([flag]) => flag !== '--help');
      assert.ok(flags.length >= 10, `roomcast ${command} --help: only ${flags.length} flags read`);
      for (const [flag, entry] of flags) {
        assert.match(entry, /\(default: /, `roomcast ${command} --help: ${flag} has no default`);
        assert.ok(entry.includes(envName(flag)), `roomcast ${command} --help: ${flag} does not name ${envName(flag)}`);
      }
    }
  });

  it('refuses a bad flag value with a message naming it', async () => {
    const { code, stderr } = await runCli(['start', '--gateway-port', 'eighty']);
    assert.notEqual(code, 0);
    assert.match(stderr, /gateway-port/);
    assert.match(stderr, /a port must be an integer from 0 to 65535/);
    const env = await runCli(['start'], { ROOMCAST_HEARTBEAT_TIMEOUT: '-1' });
    assert.notEqual(env.code, 0);
    assert.match(env.stderr, /heartbeat timeout must be an integer/);
  });

  it('reads every setting from ROOMCAST_* environment variables', async () => {
    const server = await spawnServer([], {
      ROOMCAST_HOST: '127.0.0.1',
      ROOMCAST_GATEWAY_PORT: '0',
      ROOMCAST_LOGIC_PORT: '0',
      ROOMCAST_HEARTBEAT_TIMEOUT: '1234',
      ROOMCAST_API_KEY: 'env-key',
      ROOMCAST_ALLOW_CLIENT_JOIN: 'true',
    });
    try {
      const client = await TestClient.connect(server.gatewayUrl);
      assert.equal(client.welcome?.heartbeat, 1234, 'the welcome names the heartbeat timeout from ROOMCAST_HEARTBEAT_TIMEOUT');
      client.send({ op: 'join', room: 'from-env', id: 1 });
      assert.equal((await client.next((f) => f.op === 'reply')).changed, true);
      assert.equal((await call(server.logicUrl, '/stats')).status, 401);
      assert.equal((await call(server.logicUrl, '/stats', { headers: { authorization: 'Bearer env-key' } })).status, 200);
      await client.closeAndWait();
      assert.ok(!JSON.stringify(server.lines).includes('env-key'), 'the API key appears in the logs');
    } finally {
      await stopProcess(server);
    }
  });

  it('ROOMCAST_ALLOW_CLIENT_JOIN=false keeps client joins off', async () => {
    const server = await spawnServer(['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0'], { ROOMCAST_ALLOW_CLIENT_JOIN: 'false' });
    try {
      const client = await TestClient.connect(server.gatewayUrl);
      client.send({ op: 'join', room: 'r', id: 1 });
      assert.equal((await client.next((f) => f.op === 'error')).code, 'forbidden');
      await client.closeAndWait();
    } finally {
      await stopProcess(server);
    }
  });
});

describe('graceful shutdown', () => {
  // SIGHUP too: a closed terminal or a supervisor's hangup must not drop clients with 1006
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    it(`on ${signal}: stops accepting, closes clients with 1001 and exits 0 within 5 s`, async () => {
      const server = await spawnServer(['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0']);
      const clients = await Promise.all(Array.from({ length: 20 }, () => TestClient.connect(server.gatewayUrl)));
      const started = Date.now();
      server.proc.kill(signal);
      for (const client of clients) assert.equal(await client.closeCode(20_000), 1001);
      const { code } = await exitOrKill(server.proc, server.exited, 30_000, `${server.command} to exit after ${signal}`);
      assert.equal(code, 0);
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
      await assert.rejects(TestClient.connect(server.gatewayUrl));
    });
  }
});
