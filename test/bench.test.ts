import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { runBenchWith } from '../bench/main.js';
import { parseBenchFlags } from '../bench/options.js';
import { redisAnswersPing } from '../bench/local-redis.js';
import { childPids } from '../bench/proc-stats.js';
import { speedChecks } from '../bench/report.js';
import type { TargetResult } from '../bench/run-target.js';
import { alive, runTargetWithPreload } from './helpers/bench.js';
import { exitOrKill, runCli } from './helpers/process.js';
import { skipWithoutRedis } from './helpers/redis.js';
import { within } from './helpers/until.js';

const BENCH = fileURLToPath(new URL('../bench/cli.js', import.meta.url));
const TINY = ['--fanout-conns', '12', '--fanout-pushes', '10', '--rooms-conns', '12', '--room-size', '4', '--rooms-pushes', '15', '--all-conns', '8', '--all-pushes', '5', '--idle-conns', '20', '--resume-conns', '12', '--resume-missed', '5',
  '--churn-conns', '12', '--churn-rooms', '3', '--churn-cycles', '4', '--churn-percent', '25', '--churn-push-rate', '100', '--settle', '0', '--no-progress'];

/** The process and everything under it (a cluster's workers, redis-server under its keeper). */
function descendantsOf(pid: number): number[] {
  const children = childPids(pid);
  return [...children, ...children.flatMap(descendantsOf)];
}

type JsonResult = Record<string, unknown>;
const num = (r: JsonResult, key: string): number => r[key] as number;
const percentOf = (n: number): number => n * 100;

/** churn: the server's memory and counts at one point of a result of the JSON. */
function churnMemory(r: JsonResult, point: string): Record<string, unknown> {
  return ((r.churn as Record<string, unknown>).memory as Record<string, Record<string, unknown>>)[point];
}

/** Where each column of the tables is in a result of the JSON (percentages as the tables show them). */
const JSON_OF_COLUMN: Record<string, (r: JsonResult) => unknown> = {
  'pushes/s': (r) => r.pushesPerSecond,
  'deliveries/s': (r) => r.deliveriesPerSecond,
  complete: (r) => percentOf(num(r, 'completeness')),
  'p50 ms': (r) => (r.latencyMs as Record<string, unknown>).p50,
  'p99 ms': (r) => (r.latencyMs as Record<string, unknown>).p99,
  'max ms': (r) => (r.latencyMs as Record<string, unknown>).max,
  'server CPU s': (r) => r.serverCpuSeconds,
  'server RSS MB': (r) => r.serverRssMB,
  'client CPU s': (r) => r.clientCpuSeconds,
  'other CPU s': (r) => r.otherCpuSeconds,
  'redis CPU s': (r) => r.redisCpuSeconds,
  connected: (r) => percentOf((num(r, 'connected') - num(r, 'closedEarly')) / num(r, 'conns')),
  'connect s': (r) => r.connectSeconds,
  'RSS/conn KB': (r) => r.rssPerConnKB,
  'first-to-last frame ms': (r) => r.deliverySpreadMs,
  'server processes': (r) => r.serverProcesses,
  'most files in one': (r) => Math.max(...(r.serverOpenFiles as number[])),
  'storm s': (r) => (r.resume as Record<string, unknown>).seconds,
  'resumes/s': (r) => (r.resume as Record<string, unknown>).resumesPerSecond,
  'replayed frames/s': (r) => r.deliveriesPerSecond,
  recovered: (r) => percentOf(((r.resume as Record<string, unknown>).recovered as number) / num(r, 'conns')),
  'resume p50 ms': (r) => ((r.resume as Record<string, unknown>).timeMs as Record<string, unknown>).p50,
  'resume p99 ms': (r) => ((r.resume as Record<string, unknown>).timeMs as Record<string, unknown>).p99,
  'resume max ms': (r) => ((r.resume as Record<string, unknown>).timeMs as Record<string, unknown>).max,
  'connects/s': (r) => (r.churn as Record<string, unknown>).connectsPerSecond,
  'disconnects/s': (r) => (r.churn as Record<string, unknown>).disconnectsPerSecond,
  'RSS MB before': (r) => churnMemory(r, 'before').rssMB,
  'RSS MB after': (r) => churnMemory(r, 'afterChurn').rssMB,
  'RSS MB settled': (r) => churnMemory(r, 'afterSettle').rssMB,
  'heap MB before': (r) => churnMemory(r, 'before').heapUsedMB,
  'heap MB after': (r) => churnMemory(r, 'afterChurn').heapUsedMB,
  'heap MB settled': (r) => churnMemory(r, 'afterSettle').heapUsedMB,
  'conns settled': (r) => churnMemory(r, 'afterSettle').connections,
  'rooms settled': (r) => churnMemory(r, 'afterSettle').rooms,
};

/** The tables the bench printed: each one's scenario, and each row's target and cells by column title. */
function tablesIn(stdout: string): { scenario: string; rows: { target: string; cells: Record<string, string> }[] }[] {
  const tables = [];
  for (const block of stdout.split(/\n\n(?=\w+: )/)) {
    const scenario = /^(\w+): /.exec(block)?.[1];
    const lines = block.split('\n').filter((line) => line.startsWith('| '));
    if (scenario === undefined || lines.length < 2) continue;
    const split = (line: string): string[] => line.slice(2, -2).split(' | ').map((cell) => cell.trim());
    const [, ...titles] = split(lines[0]);
    const rows = lines.slice(1).map((line) => {
      const [target, ...values] = split(line);
      return { target, cells: Object.fromEntries(titles.map((title, i) => [title, values[i]])) };
    });
    tables.push({ scenario, rows });
  }
  assert.ok(tables.length > 0, `tables in: ${stdout}`);
  return tables;
}

async function run(flags: string[]): Promise<TargetResult[]> {
  let text = '';
  const results = await runBenchWith(parseBenchFlags([...TINY, ...flags]), (t) => (text += t));
  assert.match(text, /\| target/);
  return results;
}

/** Every process the run started has exited; it names at least two (the server and a client worker), so an empty list cannot pass. */
function assertStopped(r: TargetResult): void {
  assert.ok(r.pids.length >= 2, `${r.scenario} ${r.target}: the run names the processes it started: [${r.pids.join(', ')}]`);
  for (const pid of r.pids) assert.ok(!alive(pid), `${r.scenario} ${r.target}: process ${pid} still runs`);
}

function assertComplete(r: TargetResult): void {
  assert.deepEqual(r.errors, [], `${r.scenario} ${r.target}`);
  assert.equal(r.connected, r.conns, `${r.scenario} ${r.target} connected`);
  assert.equal(r.deliveries, r.expectedDeliveries, `${r.scenario} ${r.target} deliveries`);
  assertStopped(r);
}

describe('roomcast bench (smoke, tiny sizes)', () => {
  it('delivers every frame in fanout for each target (roomcast with history on and off), and stops every process it started', async () => {
    const results = await run(['--scenarios', 'fanout', '--history', 'both']);
    assert.deepEqual(results.map((r) => r.label), ['roomcast', 'roomcast, history off', 'Socket.IO 4.8', 'bare ws loop']);
    assert.deepEqual(results[1].variant, { workers: 0, redis: false, history: false });
    for (const r of results) {
      assertComplete(r);
      assert.equal(r.expectedDeliveries, 12 * 10);
      assert.ok(r.latencyMs.p50 >= 0 && r.latencyMs.max >= r.latencyMs.p99, JSON.stringify(r.latencyMs));
      assert.ok(r.serverRssMB > 0);
    }
  });

  it('runs the rooms, all and idle scenarios to completion', async () => {
    const results = await run(['--scenarios', 'rooms,all,idle', '--targets', 'roomcast,ws']);
    assert.deepEqual(
      results.map((r) => `${r.scenario} ${r.target}`),
      ['rooms roomcast', 'rooms ws', 'all roomcast', 'all ws', 'idle roomcast', 'idle ws'],
    );
    for (const r of results) assertComplete(r);
    const rooms = results.find((r) => r.scenario === 'rooms' && r.target === 'roomcast');
    assert.equal(rooms?.expectedDeliveries, 15 * 4);
    const idle = results.find((r) => r.scenario === 'idle' && r.target === 'roomcast');
    assert.equal(idle?.connected, 20);
    assert.ok(Number.isFinite(idle?.rssPerConnKB) && idle!.rssPerConnKB! > 0, `rssPerConnKB ${idle?.rssPerConnKB}`);
  });

  it('runs resume on roomcast only: every client drops, misses 5 pushes to its room, and gets each back once, in order, before recovered:true', async () => {
    let text = '';
    const results = await runBenchWith(parseBenchFlags([...TINY, '--scenarios', 'resume', '--history', 'both']), (t) => (text += t));
    assert.match(
      text,
      /resume: roomcast with history only \(the peers have no session resume; without history nothing is replayed\), so roomcast, history off, Socket\.IO 4\.8, bare ws loop are left out/,
    );
    assert.deepEqual(results.map((r) => r.label), ['roomcast']);
    const [r] = results;
    assertComplete(r);
    assert.equal(r.expectedDeliveries, 12 * 5);
    assert.equal(r.pushesAccepted, 3 * 5, 'the missed pushes: 5 to each of the 3 rooms');
    assert.deepEqual({ ...r.resume, seconds: 0, resumesPerSecond: 0, timeMs: {} }, { resumed: 12, recovered: 12, failed: 0, seconds: 0, resumesPerSecond: 0, framesAfterResumed: 0, timeMs: {} });
    assert.ok(r.resume!.seconds > 0 && r.resume!.resumesPerSecond > 0 && r.deliveriesPerSecond > 0, JSON.stringify(r.resume));
    assert.ok(r.resume!.timeMs.p50 > 0 && r.resume!.timeMs.max >= r.resume!.timeMs.p99, JSON.stringify(r.resume!.timeMs));
    assert.deepEqual(speedChecks(results).find((c) => c.what === 'resume complete'), { what: 'resume complete', measured: '100% replayed, 12/12 recovered', met: true });
  });

  it('runs churn on roomcast and the bare ws loop: every push reaches every connection that was there for it, and roomcast counts the population again after', async () => {
    let text = '';
    const results = await runBenchWith(parseBenchFlags([...TINY, '--scenarios', 'churn']), (t) => (text += t));
    assert.match(text, /churn: roomcast and the bare ws loop only \(a leaving client PINGs and reads the PONG, .*\), so Socket\.IO 4\.8 is left out/);
    assert.deepEqual(results.map((r) => r.label), ['roomcast', 'bare ws loop']);
    for (const r of results) {
      assertComplete(r);
      const churn = r.churn!;
      // 4 cycles of 3 (25% of 12): every connection left once, half of them cleanly, and 12 new ones came
      assert.deepEqual([churn.cycles, churn.connects, churn.disconnects, churn.cleanCloses, churn.destroyed, churn.lifetimes], [4, 12, 12, 6, 6, 24], r.label);
      assert.ok(churn.connectsPerSecond > 0 && churn.disconnectsPerSecond > 0 && churn.seconds > 0, JSON.stringify(churn));
      assert.ok(r.pushesAccepted > 0 && r.expectedDeliveries > 0, `${r.label}: ${r.pushesAccepted} pushes, ${r.expectedDeliveries} expected deliveries`);
      assert.equal(r.completeness, 1);
      assert.ok(r.latencyMs.p50 >= 0 && r.latencyMs.p99 >= r.latencyMs.p50, JSON.stringify(r.latencyMs));
      for (const point of [churn.memory.before, churn.memory.afterChurn, churn.memory.afterSettle]) assert.ok(point.rssMB > 0, JSON.stringify(point));
    }
    const [roomcast, ws] = results;
    for (const point of [roomcast.churn!.memory.before, roomcast.churn!.memory.afterSettle]) {
      assert.deepEqual([point.connections, point.rooms], [12, 3], 'GET /stats counts the population and its rooms');
      assert.ok(point.heapUsedMB! > 0, `heap used ${point.heapUsedMB}`);
    }
    assert.deepEqual(ws.churn!.memory.afterSettle, { ...ws.churn!.memory.afterSettle, heapUsedMB: undefined, connections: undefined, rooms: undefined }, 'the ws peer has no /stats or /metrics');
    assert.deepEqual(speedChecks(results).find((c) => c.what === 'churn complete'), { what: 'churn complete', measured: '100%, 12/12 connections and 3/3 rooms counted after settling', met: true });
    // a room the server still counted after the settle fails the run as a connection would
    const keptRoom = { ...roomcast, churn: { ...roomcast.churn!, memory: { ...roomcast.churn!.memory, afterSettle: { ...roomcast.churn!.memory.afterSettle, rooms: 4 } } } };
    assert.deepEqual(speedChecks([keptRoom, ws]).find((c) => c.what === 'churn complete'), { what: 'churn complete', measured: '100%, 12/12 connections and 4/3 rooms counted after settling', met: false });
  });

  it('fails a churn run whose server loses pushes to connections that were there for them', async () => {
    // roomcast, with every third write of measured push frames only (a stamp ~<µs>~, no PONG, no welcome) thrown away, its callback called as if written
    const loser =
      "import { Socket } from 'node:net';\nconst write = Socket.prototype.write;\nlet n = 0;\n" +
      'Socket.prototype.write = function (chunk, ...rest) {\n' +
      "  const text = Buffer.isBuffer(chunk) ? chunk.toString('latin1') : '';\n" +
      "  if (/~\\d+~/.test(text) && !text.includes('PONG') && !text.includes('welcome') && ++n % 3 === 0) {\n" +
      "    const done = rest.find((f) => typeof f === 'function');\n" +
      '    if (done) process.nextTick(done);\n' +
      '    return true;\n' +
      '  }\n' +
      '  return write.call(this, chunk, ...rest);\n};\n';
    const { result: r } = await runTargetWithPreload(loser, [...TINY, '--scenarios', 'churn', '--targets', 'roomcast', '--churn-cycles', '8']);
    assert.ok(r.expectedDeliveries > 0 && r.deliveries < r.expectedDeliveries, `${r.deliveries} of ${r.expectedDeliveries}`);
    assert.ok(r.completeness < 1);
    assert.equal(r.errors.length, 1, r.errors.join('\n'));
    const missing = `${r.expectedDeliveries - r.deliveries} of ${r.expectedDeliveries} pushes a connection should have received while it was connected did not arrive`;
    assert.match(r.errors[0], new RegExp(`^${missing}; first: \\S+ in room-\\d lacks seq \\d+ \\(sent \\d+ µs after its join was answered, answered \\d+ µs before it began to leave; it received \\d+ seqs, of them near it: (?:[\\d,]+|none)\\)$`));
    assert.equal(speedChecks([r]).find((c) => c.what === 'churn complete')?.met, false);
    assertStopped(r);
  });

  it('fails a resume run whose server cannot replay everything it missed (history of 3 for 5 missed pushes)', async () => {
    const shortHistory = "process.argv.push('--history-size', '3');\n";
    const { result: r } = await runTargetWithPreload(shortHistory, [...TINY, '--scenarios', 'resume', '--targets', 'roomcast']);
    assert.equal(r.resume?.resumed, 12);
    assert.equal(r.resume?.recovered, 0);
    assert.equal(r.deliveries, 12 * 3, 'what history still held was replayed');
    assert.deepEqual(r.errors, ['12 resumes ended recovered:false', '24 of 60 missed frames were not replayed']);
    assert.deepEqual(speedChecks([r]).find((c) => c.what === 'resume complete'), { what: 'resume complete', measured: '60.00% replayed, 0/12 recovered', met: false });
    assertStopped(r);
  });

  it('counts the connections a server drops while they are held idle, as an error and a failed idle check', async () => {
    // roomcast, with every TCP connection it accepts destroyed 500 ms later (a preload module in the server process)
    const dropper = "import { subscribe } from 'node:diagnostics_channel';\nsubscribe('net.server.socket', ({ socket }) => setTimeout(() => socket.destroy(), 500).unref());\n";
    const { result: r } = await runTargetWithPreload(dropper, ['--scenarios', 'idle', '--targets', 'roomcast', '--idle-conns', '20', '--settle', '2']);
    assert.equal(r.connected, 20, 'every connection was welcomed before the drops');
    assert.equal(r.closedEarly, 20);
    assert.deepEqual(r.errors, ['20 of 20 connections were closed by the server']);
    assert.deepEqual(speedChecks([r]).find((c) => c.what === 'idle complete'), { what: 'idle complete', measured: '20/20 connected, 20 closed by the server', met: false });
    assertStopped(r);
  });

  it('takes a peer that closes without answering PING for no Redis, at once', async () => {
    const closer = createServer((socket) => socket.end());
    await new Promise<void>((resolve) => closer.listen(0, '127.0.0.1', resolve));
    try {
      // a timeout of 2 s, not the default 500 ms: a loaded machine has room, and an answer that waited for the timeout still fails
      const timeoutMs = 2000;
      const started = performance.now();
      const answer = await within(redisAnswersPing('127.0.0.1', (closer.address() as AddressInfo).port, timeoutMs), timeoutMs + 3000, 'an answer once the peer closed');
      assert.equal(answer, false);
      const waited = performance.now() - started;
      assert.ok(waited < timeoutMs, `answered after ${waited} ms: not before the ${timeoutMs} ms timeout`);
    } finally {
      closer.close();
    }
  });

  it('writes to --json every number its tables show', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'roomcast-bench-json-'));
    const file = join(dir, 'results.json');
    try {
      const ran = await runCli(['bench', ...TINY, '--scenarios', 'fanout,idle,resume,churn', '--targets', 'roomcast,ws', '--json', file]);
      assert.equal(ran.code, 0, ran.stderr);
      assert.match(ran.stdout, /\nspeed targets \(set for the default sizes; this run changed --fanout-conns, --fanout-pushes, --idle-conns, so read them as indicative\):\n/);
      assert.deepEqual(parseBenchFlags(['--scenarios', 'fanout']).targetSizesChanged, [], 'at the default sizes the targets are read as they are');
      const doc = JSON.parse(readFileSync(file, 'utf8')) as { startedAt: string; finishedAt: string; results: Record<string, unknown>[] };
      assert.ok(Date.parse(doc.startedAt) < Date.parse(doc.finishedAt), `${doc.startedAt} before ${doc.finishedAt}`);
      let cells = 0;
      for (const table of tablesIn(ran.stdout)) {
        for (const row of table.rows) {
          const result = doc.results.find((r) => r.scenario === table.scenario && r.label === row.target);
          assert.ok(result !== undefined, `${table.scenario} ${row.target} is in the JSON`);
          for (const [title, text] of Object.entries(row.cells)) {
            const field = JSON_OF_COLUMN[title];
            assert.ok(field !== undefined, `the JSON carries the column "${title}"`);
            const value = field(result);
            const shown = text.replace(/ \(-?[\d.]+x\)$/, '');
            if (shown === '-') {
              assert.ok(value === null || value === undefined, `${table.scenario} ${row.target} ${title}: "-" for ${value}`);
              continue;
            }
            const digits = shown.includes('.') ? shown.split('.')[1].replace('%', '').length : 0;
            const number = Number(shown.replace(/[,%]/g, ''));
            assert.ok(typeof value === 'number' && Math.abs(number - value) <= 0.5 * 10 ** -digits + 1e-9, `${table.scenario} ${row.target} ${title}: shown ${shown}, JSON ${value}`);
            cells++;
          }
        }
      }
      // churn: 16 columns for roomcast, 11 for the ws peer (no heap, no /stats counts)
      assert.ok(cells >= 2 * 10 + 2 * 5 + 12 + 16 + 11, `${cells} cells compared`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a bad flag with a message naming it', async () => {
    const bad = await runCli(['bench', '--targets', 'roomcast,nats']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--targets must be a comma-separated list of roomcast, socketio, ws, got "roomcast,nats"/);
    const size = await runCli(['bench', '--scenarios', 'rooms', '--rooms-conns', '5', '--room-size', '10']);
    assert.equal(size.code, 1);
    assert.match(size.stderr, /--room-size \(10\) must not be larger than --rooms-conns \(5\)/);
    const refusals: [string[], RegExp][] = [
      [['--workers', '2', '--broker', 'memory'], /--workers 2 needs Redis/],
      [['--broker', 'redis://10.0.0.1:6379'], /--broker must be a Redis on loopback .* got host "10\.0\.0\.1"/],
      [['--history', 'maybe'], /--history must be on, off or both, got "maybe"/],
      [['--workers', '1,x'], /--workers must be an integer from 0 to 64, or a comma-separated list of them, got "1,x"/],
      [['--scenarios', 'hold', '--targets', 'roomcast'], /hold: 30000 connections are more than roomcast can hold in 1 process .* --workers 2 or more/],
      [['--targets', 'ws', '--history', 'off'], /--targets leaves roomcast out/],
      [['--scenarios', 'resume', '--targets', 'ws'], /--scenarios resume needs roomcast with history in the run \(the peers have no session resume\)/],
      [['--scenarios', 'resume', '--history', 'off'], /--scenarios resume needs roomcast with history/],
      [['--scenarios', 'resume', '--resume-conns', '5'], /--room-size \(10\) must not be larger than --resume-conns \(5\)/],
      [['--resume-missed', '1001'], /--resume-missed must be an integer from 1 to 1000, got "1001"/],
      [['--scenarios', 'churn', '--churn-conns', '5', '--churn-rooms', '6'], /--churn-rooms \(6\) must not be larger than --churn-conns \(5\)/],
      [['--scenarios', 'churn', '--targets', 'socketio'], /--scenarios churn needs roomcast or ws in --targets \(Socket\.IO clients cannot PING/],
      [['--churn-percent', '101'], /--churn-percent must be an integer from 1 to 100, got "101"/],
    ];
    for (const [flags, message] of refusals) {
      const answer = await runCli(['bench', ...flags]);
      assert.equal(answer.code, 1, flags.join(' '));
      assert.match(answer.stderr, message);
    }
  });

  it('fails a target whose client worker is stuck (alive, never answering) at its --timeout, and kills its workers', async () => {
    // every client worker this process starts is stopped (SIGSTOP) as soon as it shows up: alive, but it answers nothing
    const stopped = new Set<number>();
    const stopWorkers = (): void => {
      for (const pid of childPids(process.pid)) {
        if (stopped.has(pid) || !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('client/worker.js')) continue;
        process.kill(pid, 'SIGSTOP');
        stopped.add(pid);
      }
    };
    const watcher = setInterval(stopWorkers, 10);
    const started = performance.now();
    try {
      const results = await within(run(['--scenarios', 'fanout', '--targets', 'ws', '--timeout', '3']), 30_000, 'the end of a bench with a 3 s limit');
      const seconds = (performance.now() - started) / 1000;
      assert.ok(stopped.size >= 2, `stopped ${stopped.size} workers`);
      const [r] = results;
      assert.ok(r.errors.includes('stopped at the 3 s limit'), r.errors.join('; '));
      assert.ok(
        r.errors.some((e) => /^client worker \d+ is stuck: no answer to "(connect|progress|report)" by the time limit \(and 2 s more\); the client workers were killed$/.test(e)),
        r.errors.join('; '),
      );
      // the limit, the 2 s grace, then killing the workers and stopping the server
      assert.ok(seconds < 3 + 2 + 3, `the bench took ${seconds.toFixed(1)} s`);
      assertStopped(r);
    } finally {
      clearInterval(watcher);
      for (const pid of stopped) if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  it('from an installed roomcast without its devDependencies, leaves Socket.IO out with one line, or refuses when --targets names it', async () => {
    // an install as npm makes it: the package's dist and package.json, every dependency beside it, and no socket.io
    const root = mkdtempSync(join(tmpdir(), 'roomcast-installed-'));
    try {
      const modules = join(root, 'node_modules');
      const realModules = fileURLToPath(new URL('../../node_modules/', import.meta.url));
      mkdirSync(modules);
      for (const name of readdirSync(realModules)) if (!name.startsWith('.') && name !== 'socket.io') symlinkSync(join(realModules, name), join(modules, name));
      const pkg = join(modules, 'roomcast');
      for (const dir of ['dist/src', 'dist/bench']) cpSync(fileURLToPath(new URL(`../../${dir}`, import.meta.url)), join(pkg, dir), { recursive: true });
      cpSync(fileURLToPath(new URL('../../package.json', import.meta.url)), join(pkg, 'package.json'));
      const cli = join(pkg, 'dist/src/cli.js');

      const ran = await runCli(['bench', ...TINY, '--scenarios', 'fanout'], {}, cli);
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(
        ran.stderr.trim(),
        'roomcast bench: socket.io is not installed (it is a devDependency of roomcast), so the Socket.IO target is left out; `npm install socket.io@4.8` beside roomcast to compare with it',
      );
      assert.match(ran.stdout, /targets roomcast, ws;/);
      assert.match(ran.stdout, /\| bare ws loop/);
      assert.doesNotMatch(ran.stdout, /Socket\.IO 4\.8/);

      const named = await runCli(['bench', ...TINY, '--scenarios', 'fanout', '--targets', 'roomcast,socketio'], {}, cli);
      assert.equal(named.code, 1);
      assert.equal(
        named.stderr.trim(),
        'roomcast bench: --targets names socketio, but socket.io is not installed (it is a devDependency of roomcast): run `npm install socket.io@4.8` beside roomcast, or leave socketio out of --targets',
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('stops the server and the clients when interrupted with Ctrl-C', async () => {
    const bench = spawn(process.execPath, [BENCH, '--scenarios', 'idle', '--targets', 'roomcast', '--idle-conns', '200', '--settle', '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let children: number[] = [];
    for (let i = 0; i < 100 && children.length < 3; i++) {
      await sleep(100);
      children = childPids(bench.pid!);
    }
    assert.ok(children.length >= 3, `expected a server and two client workers, saw ${children.length} children`);
    bench.kill('SIGINT');
    const [code] = (await exitOrKill(bench, once(bench, 'exit'), 30_000, 'roomcast bench to exit after SIGINT')) as [number | null];
    assert.equal(code, 130);
    for (let i = 0; i < 20 && children.some(alive); i++) await sleep(100);
    assert.deepEqual(children.filter(alive), [], 'processes left running');
  });
});

describe('roomcast bench in cluster mode (smoke, tiny sizes)', { skip: skipWithoutRedis }, () => {
  it('runs roomcast with 2 gateway workers on its own redis-server, holds connections across them, and stops it all', async () => {
    const results = await run(['--scenarios', 'fanout,hold,resume', '--targets', 'roomcast', '--workers', '2', '--hold-conns', '30']);
    assert.deepEqual(results.map((r) => `${r.scenario} ${r.label}`), ['fanout roomcast, 2 workers', 'hold roomcast, 2 workers', 'resume roomcast, 2 workers']);
    for (const r of results) {
      assertComplete(r);
      assert.equal(r.serverProcesses, 3, 'a primary and 2 gateway workers');
      assert.ok(Number.isFinite(r.redisCpuSeconds) && r.redisCpuSeconds! >= 0, `redis-server CPU seconds: ${r.redisCpuSeconds}`);
      // the server's 3 processes, redis-server and its keeper, 2 client workers
      assert.ok(r.pids.length >= 7, `pids: ${r.pids.join(' ')}`);
    }
    const hold = results[1];
    assert.equal(hold.deliveries, 30);
    assert.ok(hold.deliverySpreadMs >= 0, `deliverySpreadMs ${hold.deliverySpreadMs}`);
    assert.ok(Number.isFinite(hold.rssPerConnKB) && hold.rssPerConnKB! > 0, `rssPerConnKB ${hold.rssPerConnKB}`);
    // clients resume on whichever gateway worker they reach, through Redis
    const resume = results[2];
    assert.equal(resume.deliveries, 12 * 5);
    assert.equal(resume.resume?.recovered, 12);
  });

  it('stops the cluster and redis-server when interrupted with Ctrl-C', async () => {
    const flags = ['--scenarios', 'idle', '--targets', 'roomcast', '--workers', '2', '--idle-conns', '200', '--settle', '60', '--no-progress'];
    const bench = spawn(process.execPath, [BENCH, ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    bench.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let all: number[] = [];
    // keeper + redis-server, primary + 2 workers, 2 client workers
    for (let i = 0; i < 150 && all.length < 7; i++) {
      await sleep(100);
      all = descendantsOf(bench.pid!);
    }
    assert.ok(all.length >= 7, `expected redis-server, a cluster of 3 and 2 client workers, saw ${all.length} processes; bench said: ${stderr.trim()}`);
    bench.kill('SIGINT');
    const [code] = (await exitOrKill(bench, once(bench, 'exit'), 30_000, 'roomcast bench to exit after SIGINT')) as [number | null];
    assert.equal(code, 130);
    for (let i = 0; i < 50 && all.some(alive); i++) await sleep(100);
    assert.deepEqual(all.filter(alive), [], 'processes left running');
  });
});
