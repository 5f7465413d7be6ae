/**
 * The life of a roomcast process, on real processes: shutdown with its stdout
 * reader gone, `start --workers` stopping a hung worker, and the respawn of
 * workers that keep dying.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { childPids } from '../bench/proc-stats.js';
import { call } from './helpers/http.js';
import { alive, runCli, spawnServer, stopProcess, type ServerProcess } from './helpers/process.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { TcpRelay, type Link } from './helpers/tcp-relay.js';
import { until, within } from './helpers/until.js';

const LOOPBACK = ['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0'];

/** The machine's uptime in ms (10 ms steps): the clock /proc stamps a process's start with. */
function uptimeMs(): number {
  return Math.round(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000);
}

/** When `pid` was forked, as uptimeMs() then was: stamped by the kernel, so the late polls of a busy machine do not count. */
function forkedAtMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // starttime is field 22 of the line, index 19 after the ')' that ends field 2 (comm); in clock ticks of 10 ms
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]) * 10;
}

/** Waits until the process has a child other than `known`, and returns it. */
function newChild(pid: number, known: number[]): Promise<number> {
  return until('a new worker', () => childPids(pid).find((child) => !known.includes(child)), 15_000);
}

/** A port on 127.0.0.1 that something else holds. */
async function holdPort(): Promise<{ port: number; holder: Server }> {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  return { port: (holder.address() as { port: number }).port, holder };
}

/** Runs a start that must fail: exit code 1 and exactly one fatal log line, which it returns. */
async function failedStart(args: string[]): Promise<string> {
  const { code, stdout, stderr } = await runCli(args, {}, undefined, 15_000);
  assert.equal(code, 1, `roomcast ${args.join(' ')} exited with ${code}: ${stdout}${stderr}`);
  const fatal = stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string })
    .filter((line) => line.level === 60)
    .map((line) => line.msg);
  assert.equal(fatal.length, 1, `one fatal line, got: ${fatal.join(' | ')}`);
  return fatal[0];
}

describe('a start on a port in use', () => {
  it('exits 1 with one line naming the port, for each command and either port', async () => {
    const { port, holder } = await holdPort();
    try {
      const busy = String(port);
      const commands = [
        ['start', '--gateway-port', busy, '--logic-port', '0'],
        ['start', '--gateway-port', '0', '--logic-port', busy],
        ['gateway', '--port', busy],
        ['logic', '--port', busy],
      ];
      for (const command of commands) {
        const args = [...command, '--host', '127.0.0.1'];
        assert.match(await failedStart(args), new RegExp(`^could not start: .*EADDRINUSE.*:${port}`), args.join(' '));
      }
    } finally {
      holder.close();
    }
  });

  it('says what to do: stop the other process, or choose another port with the flag that sets that one', async () => {
    const { port, holder } = await holdPort();
    try {
      const busy = String(port);
      const commands: [string[], string][] = [
        [['start', '--gateway-port', busy, '--logic-port', '0'], '--gateway-port'],
        [['start', '--gateway-port', '0', '--logic-port', busy], '--logic-port'],
        [['gateway', '--port', busy], '--port'],
        [['logic', '--port', busy], '--port'],
      ];
      for (const [command, flag] of commands) {
        const args = [...command, '--host', '127.0.0.1'];
        const line = await failedStart(args);
        assert.match(line, new RegExp(`another process holds port ${port} \\(a roomcast still running\\?\\): stop it, or choose another port with ${flag}$`), args.join(' '));
      }
    } finally {
      holder.close();
    }
  });

  it('with --log-level silent, still says why on stderr, in one line, and nothing on stdout', async () => {
    const { port, holder } = await holdPort();
    try {
      const { code, stdout, stderr } = await runCli(['logic', '--port', String(port), '--host', '127.0.0.1', '--log-level', 'silent'], {}, undefined, 15_000);
      assert.equal(code, 1);
      assert.equal(stdout, '');
      assert.match(stderr, new RegExp(`^error: could not start: .*EADDRINUSE.*:${port}: .*choose another port with --port\\n$`));
    } finally {
      holder.close();
    }
  });
});

describe('a process whose stdout reader is gone', () => {
  it('still exits on SIGTERM, at once (its log writes fail with EPIPE)', async () => {
    const server = await spawnServer(LOOPBACK);
    try {
      server.proc.stdout?.destroy();
      server.proc.stderr?.destroy();
      server.proc.kill('SIGTERM');
      const { code } = await within(server.exited, 5000, 'exit after SIGTERM');
      assert.equal(code, 0);
    } finally {
      server.proc.kill('SIGKILL');
    }
  });
});

describe('roomcast start --workers: the workers live and die with the primary', { skip: skipWithoutRedis }, () => {
  let redis: RedisServer;
  let server: ServerProcess | undefined;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis.stop();
  });

  const startWorkers = async (): Promise<{ server: ServerProcess; workers: number[] }> => {
    server = await spawnServer([...LOOPBACK, '--workers', '2', '--broker', redis.url]);
    const pid = server.proc.pid!;
    return { server, workers: await until('2 workers', () => (childPids(pid).length === 2 ? childPids(pid) : undefined)) };
  };

  const cleanUp = async (pids: number[]): Promise<void> => {
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    if (server !== undefined) await stopProcess(server);
  };

  // SIGHUP too: left to Node's default it killed the primary outright, and the hung worker ran on
  for (const stopSignal of ['SIGTERM', 'SIGHUP'] as const) {
    it(`on ${stopSignal} the primary exits 0 within 5 s and kills a hung worker instead of leaving it running`, async () => {
      const { server, workers } = await startWorkers();
      try {
        process.kill(workers[0], 'SIGSTOP');
        server.proc.kill(stopSignal);
        const { code, signal } = await within(server.exited, 5000, `the primary to exit after ${stopSignal}`);
        assert.deepEqual({ code, signal }, { code: 0, signal: null });
        await until(`workers ${workers.join(', ')} gone`, () => (workers.some(alive) ? undefined : true), 2000);
      } finally {
        await cleanUp(workers);
      }
    });
  }

  it('a start on a port in use exits 1 with one line naming the port, on either port', async () => {
    const { port, holder } = await holdPort();
    try {
      for (const ports of [['--gateway-port', String(port), '--logic-port', '0'], ['--gateway-port', '0', '--logic-port', String(port)]]) {
        const args = ['start', '--host', '127.0.0.1', ...ports, '--workers', '2', '--broker', redis.url];
        const line = await failedStart(args);
        assert.match(line, new RegExp(`^could not start: .*EADDRINUSE.*:${port}`), args.join(' '));
        const flag = ports[1] === String(port) ? '--gateway-port' : '--logic-port';
        assert.match(line, new RegExp(`choose another port with ${flag}$`), args.join(' '));
      }
    } finally {
      holder.close();
    }
  });

  it("replaces a worker stopped by a SIGTERM of its own (not the primary's) with a warning, not an error", async () => {
    const { server, workers } = await startWorkers();
    const seen = [...workers];
    try {
      process.kill(workers[0], 'SIGTERM');
      seen.push(await newChild(server.proc.pid!, seen));
      const said = server.lines.filter((l) => /^gateway worker (died|stopped)/.test(l.msg)).map((l) => ({ level: l.level, msg: l.msg, code: l.code }));
      assert.deepEqual(said, [{ level: 40, msg: 'gateway worker stopped on its own (exit code 0, as after a signal sent to it); starting another in 1000 ms', code: 0 }]);
    } finally {
      await cleanUp(seen);
    }
  });

  it('while the only worker is a replacement still starting, /readyz answers 503; a SIGTERM then stops it with no error logged', async () => {
    // Redis behind a relay that, once told to, never passes on what a new connection sends: a worker started then waits for Redis
    let holdNew = false;
    const held = new Set<Link>();
    const relay = await TcpRelay.start(() => redis.port, {
      carrier: (link) => {
        if (!holdNew) return (chunk) => link.upstream.write(chunk);
        return () => held.add(link);
      },
    });
    server = await spawnServer([...LOOPBACK, '--workers', '2', '--broker', `redis://127.0.0.1:${relay.port}`]);
    const primary = server;
    const workers = await until('2 workers', () => (childPids(primary.proc.pid!).length === 2 ? childPids(primary.proc.pid!) : undefined));
    const seen = [...workers];
    try {
      holdNew = true;
      for (const pid of workers) process.kill(pid, 'SIGKILL');
      seen.push(await newChild(primary.proc.pid!, seen));
      await until('the replacement to wait for Redis', () => (held.size > 0 ? true : undefined));
      const ready = await call(primary.logicUrl, '/readyz');
      assert.equal(ready.status, 503, `no worker listens, yet /readyz answered ${ready.status}: ${ready.text}`);
      assert.match(ready.body.msg, /no gateway worker is listening/);

      const stoppingAt = primary.lines.length;
      primary.proc.kill('SIGTERM');
      assert.deepEqual(await within(primary.exited, 5000, 'the primary to exit after SIGTERM'), { code: 0, signal: null });
      const errors = primary.lines.slice(stoppingAt).filter((l) => l.level >= 50);
      assert.deepEqual(errors, [], 'a shutdown that stops a worker still starting is no error');
      await until(`workers ${seen.join(', ')} gone`, () => (seen.some(alive) ? undefined : true), 2000);
    } finally {
      await cleanUp(seen);
      await relay.close();
    }
  });

  it('replaces a worker that keeps dying after a delay that doubles: 1 s, then 2 s', async () => {
    const { server, workers } = await startWorkers();
    const pid = server.proc.pid!;
    const seen = [...workers];
    try {
      // each delay runs from the kill to the kernel's stamp of the replacement's fork, not to when a poll saw it
      let killedAt = uptimeMs();
      process.kill(workers[0], 'SIGKILL');
      const first = await newChild(pid, seen);
      const firstDelay = forkedAtMs(first) - killedAt;
      seen.push(first);
      killedAt = uptimeMs();
      process.kill(first, 'SIGKILL');
      const second = await newChild(pid, seen);
      seen.push(second);
      const secondDelay = forkedAtMs(second) - killedAt;
      // what the primary says it waits tells 1 s from 2 s exactly; the clock, that it kept those waits
      const announced = server.lines.filter((l) => l.msg.startsWith('gateway worker died')).map((l) => l.delayMs);
      assert.deepEqual(announced, [1000, 2000], 'the delays the primary announced');
      assert.ok(firstDelay >= 900 && firstDelay < 1800, `the first replacement came after ${firstDelay} ms`);
      assert.ok(secondDelay >= 1900, `the second replacement came after ${secondDelay} ms`);
    } finally {
      await cleanUp(seen);
    }
  });
});
