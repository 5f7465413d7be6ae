/**
 * A target that hangs ends its run at --timeout (and the few seconds its
 * stop may take), and leaves no process behind: the bench's own runs
 * against roomcast made to hang with a preload module.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { runSettings } from '../bench/main.js';
import { parseBenchFlags } from '../bench/options.js';
import { runTarget, type TargetResult } from '../bench/run-target.js';
import { buildScenario } from '../bench/scenarios.js';
import { targetRuns } from '../bench/variants.js';
import { skipWithoutRedis } from './helpers/redis.js';

function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
}

/** Runs fanout at a tiny size against roomcast started with `preload` (a module's source), under `flags`. */
async function runWithPreload(preload: string, flags: string[]): Promise<{ result: TargetResult; seconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'roomcast-hang-'));
  const file = join(dir, 'preload.mjs');
  writeFileSync(file, preload);
  try {
    const options = parseBenchFlags(['--scenarios', 'fanout', '--targets', 'roomcast', '--fanout-conns', '12', '--fanout-pushes', '10', '--settle', '0', '--no-progress', ...flags]);
    const [run] = targetRuns(options.targets, options.workers, options.history, options.broker);
    const settings = { ...runSettings(options), serverNodeArgs: ['--import', pathToFileURL(file).href] };
    const started = performance.now();
    const result = await runTarget(run, buildScenario('fanout', options.sizes, options.seed), settings, () => undefined);
    return { result, seconds: (performance.now() - started) / 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

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
    const { result: r, seconds } = await runWithPreload(preload, ['--timeout', '4']);
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
    const { result: r, seconds } = await runWithPreload(preload, ['--workers', '2', '--timeout', '4']);
    assert.equal(r.serverProcesses, 3, 'a primary and 2 gateway workers');
    assert.ok(r.errors.length > 0, 'the run failed');
    assert.ok(seconds < 4 + 2 + 6 + 3, `the run took ${seconds.toFixed(1)} s`);
    await assertStopped(r);
  });
});
