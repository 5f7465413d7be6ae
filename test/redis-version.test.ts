/**
 * roomcast needs Redis 7.0 (EXPIRE ... GT, PEXPIRE ... LT): a process refuses
 * to start on an older Redis, naming the version found and the one needed,
 * instead of starting and failing later, deep in its logs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { RedisBroker } from '../src/broker/redis/broker.js';
import { meetsRedisMinimum } from '../src/broker/redis/server-version.js';
import { startOldRedis, type OldRedis } from './helpers/old-redis.js';
import { call } from './helpers/http.js';
import { runCli, spawnRoomcast, stopProcess } from './helpers/process.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { TcpRelay } from './helpers/tcp-relay.js';
import { until } from './helpers/until.js';

const NEEDED =
  'roomcast needs Redis 7.0.0 or newer (it uses EXPIRE ... GT and PEXPIRE ... LT, added in Redis 7.0): ' +
  'upgrade Redis (Ubuntu 22.04 and Debian 11 ship Redis 6; Redis 7 comes from packages.redis.io, the redis:7 image, or a newer distribution)';

/** The message of the last log line a failed start wrote. */
function startFailure(stdout: string): string {
  return (JSON.parse(stdout.trim().split('\n').at(-1)!) as { msg: string }).msg;
}

describe('the Redis version a server reports (INFO redis_version)', () => {
  it('is compared by its numbers, with any suffix after major.minor.patch ignored; one that is missing or not a version is unknown', () => {
    const verdicts: [string | undefined, boolean | undefined][] = [
      ['7.0.0', true],
      ['7.0', true],
      ['7.2.4-rc1', true],
      ['255.255.255', true], // an unstable build
      ['10.0.0', true], // not compared as text
      ['8.0.2', true],
      ['6.2.14', false],
      ['6.0.16', false],
      ['6.99.99', false],
      ['5.0.7', false],
      [undefined, undefined],
      ['', undefined],
      ['v7.0.0', undefined],
      ['seven', undefined],
      ['7', undefined],
    ];
    for (const [version, meets] of verdicts) assert.equal(meetsRedisMinimum(version), meets, `redis_version ${JSON.stringify(version)}`);
  });
});

describe('a Redis older than 7.0', { timeout: 60_000 }, () => {
  let old: OldRedis;
  before(async () => (old = await startOldRedis('6.0.16')));
  after(() => old?.close());

  it('is refused by start, gateway, logic and a --workers start: exit 1 with one line naming the server, the version found and the one needed', async () => {
    const url = `redis://127.0.0.1:${old.port}`;
    const runs = await Promise.all(
      [
        ['start', '--gateway-port', '0', '--logic-port', '0'],
        ['gateway', '--port', '0'],
        ['logic', '--port', '0'],
        ['start', '--workers', '2', '--gateway-port', '0', '--logic-port', '0'],
      ].map((args) => runCli([...args, '--host', '127.0.0.1', '--broker', url], { ROOMCAST_API_KEY: 'version-test' }, undefined, 20_000)),
    );
    for (const { code, stdout, stderr } of runs) {
      assert.equal(code, 1, stdout + stderr);
      assert.match(startFailure(stdout), new RegExp(`^could not start: .*Redis at 127\\.0\\.0\\.1:${old.port} runs version 6\\.0\\.16, and `));
      assert.ok(startFailure(stdout).endsWith(NEEDED), startFailure(stdout));
    }
    // the check comes before any request an old Redis could fail
    assert.ok(old.commands.some(([name, section]) => name === 'INFO' && section === 'server'));
    assert.deepEqual(
      old.commands.filter(([name]) => !['HELLO', 'CLIENT', 'INFO'].includes(name)),
      [],
    );
  });

  it('older than 6 (HELLO unknown): the start fails saying the server is older than Redis 6, not only "unknown command"', async () => {
    const older = await startOldRedis('5.0.7', false);
    try {
      const { code, stdout, stderr } = await runCli(['logic', '--host', '127.0.0.1', '--port', '0', '--broker', `redis://127.0.0.1:${older.port}`], {}, undefined, 20_000);
      assert.equal(code, 1, stdout + stderr);
      const failure = startFailure(stdout);
      assert.match(
        failure,
        new RegExp(`^could not start: cannot reach Redis at 127\\.0\\.0\\.1:${older.port} within 5000 ms: the server does not know the HELLO command \\(ERR unknown command \`HELLO\`, with args beginning with: .*\\), so it is older than Redis 6, and `),
      );
      assert.ok(failure.endsWith(NEEDED), failure);
    } finally {
      await older.close();
    }
  });
});

describe('the Redis version on a real Redis', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  let redis: RedisServer;
  before(async () => (redis = await RedisServer.start()));
  after(() => redis?.stop());

  it('a user that may not run INFO: the start warns once that the version could not be read, and goes on', async () => {
    const password = 'noinfo-secret';
    await redis.command(['ACL', 'SETUSER', 'noinfo', 'on', `>${password}`, '~*', '&*', '+@all', '-info']);
    const logic = await spawnRoomcast('logic', ['--host', '127.0.0.1', '--port', '0', '--broker', `redis://noinfo:${password}@127.0.0.1:${redis.port}`], { ROOMCAST_API_KEY: 'version-test' });
    try {
      assert.equal((await call(logic.logicUrl, '/readyz')).status, 200);
      const warnings = logic.lines.filter((line) => line.msg.startsWith('could not read the version of the Redis server'));
      assert.equal(warnings.length, 1, JSON.stringify(logic.lines));
      assert.match(warnings[0].msg, new RegExp(`at 127\\.0\\.0\\.1:${redis.port} \\(INFO server failed: NOPERM .*info.*\\): going on without checking it; roomcast needs Redis 7\\.0\\.0 or newer`));
    } finally {
      await stopProcess(logic);
    }
  });

  it('a reconnect that reaches an older server (a failover to an old replica) logs an error naming its version', async () => {
    const old = await startOldRedis('6.2.14');
    let target = redis.port;
    const relay = await TcpRelay.start(() => target);
    const lines: { level: number; msg: string }[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    const broker = await RedisBroker.connect({ url: `redis://127.0.0.1:${relay.port}`, prefix: `failover${Date.now()}:` }, log);
    try {
      assert.deepEqual(lines.filter((line) => line.level >= 50), []);
      target = old.port;
      relay.destroyLinks();
      const error = await until('an error naming the old version', () => lines.find((line) => line.level === 50 && line.msg.includes('runs version 6.2.14')));
      assert.equal(
        error.msg,
        `Redis at 127.0.0.1:${relay.port} runs version 6.2.14, and ${NEEDED}; reconnected to it, this process fails the requests that need Redis 7 until it is replaced`,
      );
    } finally {
      await broker.close();
      await relay.close();
      await old.close();
    }
  });
});
