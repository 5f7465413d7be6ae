/**
 * Runs one redis-server for the bench (`--broker auto`) and stops it with
 * itself: on SIGTERM or SIGINT, and when the bench goes away, even by SIGKILL
 * (exit-with-parent.ts, preloaded, turns that into a SIGTERM here). Prints
 * `{"redis":"redis://HOST:PORT","pid":N}` once the server answers PING.
 *
 * Usage: node redis-keeper.js HOST PORT
 */
import { spawn } from 'node:child_process';
import { redisAnswersPing, redisServerArgs } from './local-redis.js';
import { setTimeout as sleep } from 'node:timers/promises';

const [host, port] = process.argv.slice(2);
const READY_WITHIN_MS = 10_000;

const redis = spawn('redis-server', redisServerArgs(host, Number(port)), {
  stdio: ['ignore', 'inherit', 'inherit'],
});
redis.once('error', (err) => {
  process.stderr.write(`redis-server could not start: ${err.message}\n`);
  process.exit(1);
});
redis.once('exit', (code, signal) => process.exit(signal === null ? (code ?? 1) : 1));
process.on('exit', () => {
  if (redis.exitCode === null && redis.signalCode === null) redis.kill('SIGKILL');
});
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => redis.kill('SIGKILL'));


const until = Date.now() + READY_WITHIN_MS;
while (!(await redisAnswersPing(host, Number(port)))) {
  if (Date.now() > until) {
    process.stderr.write(`redis-server did not answer PING on ${host}:${port} within ${READY_WITHIN_MS} ms\n`);
    process.exit(1);
  }
  await sleep(25);
}
process.stdout.write(`${JSON.stringify({ redis: `redis://${host}:${port}`, pid: redis.pid })}\n`);
