/**
 * A Redis that refuses writes (its maxmemory reached) while it stays up: the
 * logic API answers each push 503 naming why, counts the failures by kind in
 * GET /stats and /metrics, and logs one warning for a burst of them rather than
 * one per push, then a line once pushes go through again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, postJson } from './helpers/http.js';
import { spawnRoomcast, stopProcess, type LogLine, type ServerProcess } from './helpers/process.js';
import { parsePrometheus, valueOf } from './helpers/prometheus.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { until } from './helpers/until.js';

const WARN = 40;
const INFO = 30;

function pushLines(lines: LogLine[]): LogLine[] {
  return lines.filter((line) => /push.* answered 503|pushes are handed on again/.test(line.msg));
}

describe('pushes a Redis refuses to take', { skip: skipWithoutRedis }, () => {
  let redis: RedisServer;
  let server: ServerProcess;
  before(async () => {
    redis = await RedisServer.start();
    server = await spawnRoomcast('start', ['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0', '--broker', redis.url]);
  });
  after(async () => {
    if (server !== undefined) await stopProcess(server);
    await redis?.stop();
  });

  it('are answered 503 naming why, counted by kind, and logged once for the burst, then once when pushes go through again', async () => {
    assert.equal((await postJson(server.logicUrl, '/push/all', { val: 'before', tag: 3 })).status, 200);
    // every write is now over maxmemory: Redis answers OOM, and stays up
    await redis.command(['CONFIG', 'SET', 'maxmemory', '1']);
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await postJson(server.logicUrl, '/push/all', { val: `v${i}`, tag: 3 }));
    for (let i = 0; i < 3; i++) answers.push(await postJson(server.logicUrl, '/push/room', { val: `r${i}`, tag: 3, id: 'lobby' }));
    for (const answer of answers) {
      assert.equal(answer.status, 503, answer.text);
      assert.match(String(answer.body.msg), /^cannot hand the request on: Redis is unavailable \(OOM command not allowed when used memory > 'maxmemory'/);
    }
    const stats = await call(server.logicUrl, '/stats');
    assert.deepEqual(stats.body.data?.failedPushes, { all: 5, room: 3, conn: 0, user: 0 });
    assert.deepEqual((stats.body.data?.pushes as Record<string, number>).all, 1, 'a failed push is not counted as made');
    const metrics = parsePrometheus(await (await fetch(`${server.logicUrl}/metrics`)).text());
    assert.equal(valueOf(metrics, 'roomcast_push_failures_total', { kind: 'all' }), 5);
    assert.equal(valueOf(metrics, 'roomcast_push_failures_total', { kind: 'room' }), 3);

    const warned = pushLines(server.lines);
    assert.equal(warned.length, 1, `one line for the burst: ${JSON.stringify(warned.map((l) => l.msg))}`);
    assert.equal(warned[0].level, WARN);
    assert.match(warned[0].msg, /^a push could not be handed on and was answered 503: Redis is unavailable \(OOM command not allowed/);

    await redis.command(['CONFIG', 'SET', 'maxmemory', '0']);
    assert.equal((await postJson(server.logicUrl, '/push/all', { val: 'after', tag: 3 })).status, 200);
    const back = await until('a line saying pushes go through again', () => pushLines(server.lines).find((line) => line.level === INFO));
    assert.equal(back.msg, 'pushes are handed on again (7 more were answered 503 since the last line)');
  });
});
