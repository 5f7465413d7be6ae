/** Runs the real `roomcast` command (the built CLI) as a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RedisServer } from './redis.js';

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
    const timer = setTimeout(() => reject(new Error(`server did not start within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
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
  return { proc, gatewayUrl: (line.gateway as string | undefined) ?? '', logicUrl: (line.logic as string | undefined) ?? '', lines, stderr: () => stderr, exited };
}

/**
 * Runs the CLI (this build's, or the one at `cli`) to completion and returns its exit code and output.
 * With `timeoutMs`, a run still going by then (a server that started where a refusal was expected) is killed: its code is null.
 */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  cli = CLI,
  timeoutMs?: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(proc, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Stops a server process (SIGTERM) and waits for it to exit. */
export async function stopProcess(server: ServerProcess): Promise<void> {
  if (server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill('SIGTERM');
  await server.exited;
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
