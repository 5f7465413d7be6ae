/**
 * A target that hangs ends its run at --timeout (and the few seconds its
 * stop may take), and leaves no process behind: the bench's own runs
 * against roomcast made to hang with a preload module.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MIN_VAL_BYTES, runPacedPushes } from '../bench/pusher.js';
import type { TargetResult } from '../bench/run-target.js';
import { alive, runTargetWithPreload } from './helpers/bench.js';
import { skipWithoutRedis } from './helpers/redis.js';

/** Fanout at a tiny size against roomcast started with `preload` (a module's source). */
const TINY_FANOUT = ['--scenarios', 'fanout', '--targets', 'roomcast', '--fanout-conns', '12', '--fanout-pushes', '10', '--settle', '0'];

/** Every process the run started is gone (a moment after it returned, for the kernel to reap them); it names at least two. */
async function assertStopped(r: TargetResult): Promise<void> {
  assert.ok(r.pids.length >= 2, `the run names the processes it started: [${r.pids.join(', ')}]`);
  for (let i = 0; i < 20 && r.pids.some(alive); i++) await sleep(100);
  const left = r.pids.filter(alive);
  for (const pid of left) process.kill(pid, 'SIGKILL');
  assert.deepEqual(left, [], 'processes left running');
}

describe('the bench and a target that hangs', () => {
  it('ends a run whose server stops answering in the middle of the pushes at --timeout, not after the 30 s a request may wait', async () => {
    // the server stops itself (SIGSTOP) at its first measured push, the one after the 10 warm-up pushes
    const preload = `import { subscribe } from 'node:diagnostics_channel';
let pushes = 0;
subscribe('http.server.request.start', ({ request }) => {
  if (request.url === '/push/room' && ++pushes === 11) process.kill(process.pid, 'SIGSTOP');
});
`;
    const { result: r, seconds } = await runTargetWithPreload(preload, [...TINY_FANOUT, '--timeout', '4']);
    assert.ok(r.errors.includes('stopped at the 4 s limit'), r.errors.join('; '));
    assert.ok(r.errors.some((e) => /^pushing: \d+ pushes failed, first: push \d+: no answer within \d+ ms$/.test(e)), r.errors.join('; '));
    // the limit, then up to 6 s for the stopped server to be killed
    assert.ok(seconds < 4 + 6 + 3, `the run took ${seconds.toFixed(1)} s`);
    await assertStopped(r);
  });

  it('leaves no gateway worker running when one hangs in a cluster', { skip: skipWithoutRedis }, async () => {
    // each gateway worker spins forever once a bench client connects to it: SIGTERM cannot reach it, and it outlives its primary
    const preload = `import cluster from 'node:cluster';
import { subscribe } from 'node:diagnostics_channel';
if (cluster.isWorker) subscribe('net.server.socket', () => setImmediate(() => { for (;;); }));
`;
    const { result: r, seconds } = await runTargetWithPreload(preload, [...TINY_FANOUT, '--workers', '2', '--timeout', '4']);
    assert.equal(r.serverProcesses, 3, 'a primary and 2 gateway workers');
    assert.ok(r.errors.length > 0, 'the run failed');
    assert.ok(seconds < 4 + 2 + 6 + 3, `the run took ${seconds.toFixed(1)} s`);
    await assertStopped(r);
  });
});

describe('the bench pacing pushes', () => {
  it('ends a paced push run as soon as it is told to stop, not after the turns its requests wait for at a low rate', async () => {
    let seq = 0;
    const api = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end(JSON.stringify({ data: { seq: ++seq } })));
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    try {
      const logicUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
      const stop = new AbortController();
      // 2 pushes a second from 8 requests: the 8th waits 3.5 s for its first turn
      const pushing = runPacedPushes(logicUrl, () => 'room-0', 2, MIN_VAL_BYTES, 8, Date.now() + 30_000, stop.signal);
      await sleep(300);
      const stoppedAt = performance.now();
      stop.abort();
      const pushed = await pushing;
      const waited = performance.now() - stoppedAt;
      assert.ok(waited < 1000, `the run ended ${Math.round(waited)} ms after it was told to stop`);
      assert.deepEqual([pushed.accepted, pushed.failed], [1, 0], pushed.firstError);
      assert.deepEqual(pushed.log.map((p) => [p.room, p.seq]), [['room-0', 1]]);
    } finally {
      api.close();
    }
  });
});
