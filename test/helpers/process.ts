/** Runs the real `roomcast` command (the built CLI) as a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RedisServer } from './redis.js';
import { within } from './until.js';

/** The process is running: it exists and is no zombie waiting to be reaped. */
export function alive(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false; // no /proc entry: gone
  }
}

export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface ServerProcess {
  proc: ChildProcess;
  /** From the start line; empty for a process that has no gateway (or no logic API). */
  gatewayUrl: string;
  logicUrl: string;
  lines: LogLine[];
  /** Everything the process wrote to stderr so far, from its start. */
  stderr(): string;
  /** The command line, as failures name it: `roomcast start --port 0`. */
  command: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `roomcast start` with these arguments until it logs where it listens. */
export function spawnServer(args: string[], env: Record<string, string> = {}, timeoutMs = 10_000): Promise<ServerProcess> {
  return spawnRoomcast('start', args, env, timeoutMs);
}

/** Runs `roomcast <command>` (start, gateway or logic) until it logs where it listens. */
export async function spawnRoomcast(command: string, args: string[], env: Record<string, string> = {}, timeoutMs = 10_000): Promise<ServerProcess> {
  const proc = spawn(process.execPath, [CLI, command, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(proc, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  const lines: LogLine[] = [];
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const started = new Promise<LogLine>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`roomcast ${command} ${args.join(' ')} did not start within ${timeoutMs} ms (killed): ${stderr}`));
    }, timeoutMs);
    createInterface({ input: proc.stdout! }).on('line', (text) => {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        return;
      }
      lines.push(line);
      if (typeof line.gateway === 'string' || typeof line.logic === 'string') {
        clearTimeout(timer);
        resolve(line);
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before starting: ${stderr}${lines.map((l) => l.msg).join('\n')}`));
    });
  });
  const line = await started;
  return {
    proc,
    gatewayUrl: (line.gateway as string | undefined) ?? '',
    logicUrl: (line.logic as string | undefined) ?? '',
    lines,
    stderr: () => stderr,
    command: ['roomcast', command, ...args].join(' '),
    exited,
  };
}

/** How long a CLI run may take when its caller sets no limit: well past the slowest (a tiny bench), under the 180 s a test may take. */
const CLI_DEADLINE_MS = 120_000;

/**
 * Runs the CLI (this build's, or the one at `cli`) to completion and returns its exit code and output.
 * With `timeoutMs`, a run still going by then (a server that started where a refusal was expected) is killed: its code is null.
 * Without it, a run still going after CLI_DEADLINE_MS is killed and fails naming the command.
 */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  cli = CLI,
  timeoutMs?: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = await runNode([cli, ...args], { env, limitMs: timeoutMs ?? CLI_DEADLINE_MS });
  if (run.killed && timeoutMs === undefined) {
    throw new Error(`roomcast ${args.join(' ')}: still running after ${CLI_DEADLINE_MS} ms, killed; it wrote: ${run.stdout}${run.stderr}`);
  }
  return run;
}

export interface NodeRun {
  /** Null when it was killed. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** How long the process lived. */
  ms: number;
  /** True when it was still running at `limitMs` and was killed (SIGKILL). */
  killed: boolean;
}

/** Runs `node <args>` to its exit, killing it (SIGKILL) at `limitMs`; resolves with what it wrote and how it ended. */
export async function runNode(args: string[], options: { limitMs: number; env?: Record<string, string>; cwd?: URL }): Promise<NodeRun> {
  const started = performance.now();
  const proc = spawn(process.execPath, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    proc.kill('SIGKILL');
  }, options.limitMs);
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(proc, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr, ms: performance.now() - started, killed };
}

/** Waits for `exited` (the exit of `proc`); when it has not come within `ms`, kills `proc` (SIGKILL) and fails with `what`. */
export async function exitOrKill<T>(proc: ChildProcess, exited: Promise<T>, ms: number, what: string): Promise<T> {
  try {
    return await within(exited, ms, what);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
}

/** How long a server process may take to exit after SIGTERM: its graceful shutdown takes at most a few seconds. */
const STOP_DEADLINE_MS = 30_000;

/** Stops a server process (SIGTERM) and waits for it to exit; one still running after STOP_DEADLINE_MS is killed (SIGKILL) and fails the wait. */
export async function stopProcess(server: ServerProcess): Promise<void> {
  if (server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill('SIGTERM');
  await exitOrKill(server.proc, server.exited, STOP_DEADLINE_MS, `${server.command} to exit after SIGTERM`);
}

export interface ProcessCluster {
  redis: RedisServer;
  gateways: ServerProcess[];
  logic: ServerProcess;
  /** Stops the processes (a frozen one is woken first: SIGSTOP holds its SIGTERM back), then Redis. */
  stop(): Promise<void>;
}

/** A Redis of its own, `roomcast gateway` x2 and `roomcast logic` on it, on loopback; `extraArgs` go to all three. */
export async function startProcessCluster(extraArgs: string[] = []): Promise<ProcessCluster> {
  const redis = await RedisServer.start();
  const args = ['--host', '127.0.0.1', '--port', '0', '--broker', redis.url, ...extraArgs];
  const started = await Promise.allSettled([spawnRoomcast('gateway', args), spawnRoomcast('gateway', args), spawnRoomcast('logic', args)]);
  const processes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stop = async (): Promise<void> => {
    for (const p of processes) p.proc.kill('SIGCONT');
    await Promise.all(processes.map(stopProcess));
    await redis.stop();
  };
  const failed = started.find((s) => s.status === 'rejected');
  if (failed !== undefined) {
    await stop();
    throw failed.reason;
  }
  const [first, second, logic] = processes;
  return { redis, gateways: [first, second], logic, stop };
}

/** A process cluster started before the tests of the calling suite and stopped after them: read its fields inside the tests. */
export function processClusterPerSuite(extraArgs: string[] = []): ProcessCluster {
  const cluster = {} as ProcessCluster;
  before(async () => {
    Object.assign(cluster, await startProcessCluster(extraArgs));
  });
  after(() => cluster.stop?.());
  return cluster;
}
