import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { runBenchWith } from '../bench/main.js';
import { parseBenchFlags } from '../bench/options.js';
import type { TargetResult } from '../bench/run-target.js';
import { runCli } from './helpers/process.js';

const BENCH = fileURLToPath(new URL('../bench/cli.js', import.meta.url));
const TINY = ['--fanout-conns', '12', '--fanout-pushes', '10', '--rooms-conns', '12', '--room-size', '4', '--rooms-pushes', '15', '--all-conns', '8', '--all-pushes', '5', '--idle-conns', '20', '--settle', '0', '--no-progress'];

function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
}

function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function run(flags: string[]): Promise<TargetResult[]> {
  let text = '';
  const results = await runBenchWith(parseBenchFlags([...TINY, ...flags]), (t) => (text += t));
  assert.match(text, /\| target/);
  return results;
}

function assertComplete(r: TargetResult): void {
  assert.deepEqual(r.errors, [], `${r.scenario} ${r.target}`);
  assert.equal(r.connected, r.conns, `${r.scenario} ${r.target} connected`);
  assert.equal(r.deliveries, r.expectedDeliveries, `${r.scenario} ${r.target} deliveries`);
  for (const pid of r.pids) assert.ok(!alive(pid), `${r.scenario} ${r.target}: process ${pid} still runs`);
}

describe('roomcast bench (smoke, tiny sizes)', () => {
  it('delivers every frame in fanout for each target, and stops every process it started', async () => {
    const results = await run(['--scenarios', 'fanout']);
    assert.deepEqual(results.map((r) => r.target), ['roomcast', 'socketio', 'ws']);
    for (const r of results) {
      assertComplete(r);
      assert.equal(r.expectedDeliveries, 12 * 10);
      assert.ok(r.latencyMs.p50 >= 0 && r.latencyMs.max >= r.latencyMs.p99, JSON.stringify(r.latencyMs));
      assert.ok(r.serverRssMB > 0);
    }
  });

  it('runs the rooms, all and idle scenarios to completion', async () => {
    const results = await run(['--scenarios', 'rooms,all,idle', '--targets', 'roomcast,ws']);
    for (const r of results) assertComplete(r);
    const rooms = results.find((r) => r.scenario === 'rooms' && r.target === 'roomcast');
    assert.equal(rooms?.expectedDeliveries, 15 * 4);
    const idle = results.find((r) => r.scenario === 'idle' && r.target === 'roomcast');
    assert.equal(idle?.connected, 20);
    assert.equal(typeof idle?.rssPerConnKB, 'number');
  });

  it('refuses a bad flag with a message naming it', async () => {
    const bad = await runCli(['bench', '--targets', 'roomcast,nats']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--targets must be a comma-separated list of roomcast, socketio, ws, got "roomcast,nats"/);
    const size = await runCli(['bench', '--scenarios', 'rooms', '--rooms-conns', '5', '--room-size', '10']);
    assert.equal(size.code, 1);
    assert.match(size.stderr, /--room-size \(10\) must not be larger than --rooms-conns \(5\)/);
  });

  it('stops the server and the clients when interrupted with Ctrl-C', async () => {
    const bench = spawn(process.execPath, [BENCH, '--scenarios', 'idle', '--targets', 'roomcast', '--idle-conns', '200', '--settle', '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let children: number[] = [];
    for (let i = 0; i < 100 && children.length < 3; i++) {
      await sleep(100);
      children = childrenOf(bench.pid!);
    }
    assert.ok(children.length >= 3, `expected a server and two client workers, saw ${children.length} children`);
    bench.kill('SIGINT');
    const [code] = (await once(bench, 'exit')) as [number | null];
    assert.equal(code, 130);
    for (let i = 0; i < 20 && children.some(alive); i++) await sleep(100);
    assert.deepEqual(children.filter(alive), [], 'processes left running');
  });
});
