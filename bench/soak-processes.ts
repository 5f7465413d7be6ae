/** The real processes of the soak (bench/soak.ts): a redis-server and roomcast gateway/logic processes, on fixed loopback ports, each logging to a file. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { redisAnswersPing, redisServerArgs } from './local-redis.js';
import { readProcSample } from './proc-stats.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

/** What ended one run of a process: killed by the soak on purpose, or not. */
export interface Ending {
  name: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  expected: boolean;
}

/** One roomcast process (or redis-server) the soak restarts on the same port. */
export class SoakProcess {
  private proc: ChildProcess | undefined;
  private killing = false;
  private runs = 0;
  readonly endings: Ending[] = [];

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly command: string,
    private readonly args: string[],
    private readonly logPath: (run: number) => string,
    private readonly ready: () => Promise<boolean>,
  ) {}

  get pid(): number | undefined {
    return this.proc?.exitCode === null && this.proc.signalCode === null ? this.proc.pid : undefined;
  }

  get up(): boolean {
    return this.pid !== undefined && !this.killing;
  }

  /** Every log file this process wrote, one per run. */
  logFiles(): string[] {
    return Array.from({ length: this.runs }, (_, i) => this.logPath(i));
  }

  async start(): Promise<void> {
    const log = createWriteStream(this.logPath(this.runs++));
    const proc = spawn(this.command, this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.pipe(log);
    proc.stderr!.pipe(log);
    this.proc = proc;
    this.killing = false;
    proc.on('exit', (code, signal) => this.endings.push({ name: this.name, code, signal, expected: this.killing }));
    for (let i = 0; i < 200; i++) {
      if (proc.exitCode !== null) throw new Error(`${this.name} exited with ${proc.exitCode} while starting: see ${this.logPath(this.runs - 1)}`);
      if (await this.ready()) return;
      await sleep(50);
    }
    throw new Error(`${this.name} did not get ready on port ${this.port} within 10 s`);
  }

  /** SIGKILL (or SIGTERM), waiting for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.proc;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    this.killing = signal === 'SIGKILL';
    const exited = once(proc, 'exit');
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }

  /** Resident set size in bytes, or undefined when not running. */
  rss(): number | undefined {
    const pid = this.pid;
    return pid === undefined ? undefined : rssOf(pid);
  }
}

async function httpAnswers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(500) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

export function redisProcess(port: number, logPath: (run: number) => string): SoakProcess {
  return new SoakProcess('redis', port, 'redis-server', redisServerArgs('127.0.0.1', port), logPath, () => redisAnswersPing('127.0.0.1', port));
}

/** `roomcast gateway|logic` on 127.0.0.1:port. */
export function roomcastProcess(name: string, role: 'gateway' | 'logic', port: number, args: string[], logPath: (run: number) => string): SoakProcess {
  // the gateway answers plain HTTP on its port (426 or 404), the logic API /healthz
  const probe = role === 'gateway' ? `http://127.0.0.1:${port}/` : `http://127.0.0.1:${port}/healthz`;
  return new SoakProcess(name, port, process.execPath, [CLI, role, '--host', '127.0.0.1', '--port', String(port), ...args], logPath, () => httpAnswers(probe));
}

/** `roomcast start` (gateway and logic in one process, or a primary with --workers) on 127.0.0.1: ready once both ports answer. */
export function roomcastStart(name: string, gatewayPort: number, logicPort: number, args: string[], logPath: (run: number) => string): SoakProcess {
  const ports = ['--host', '127.0.0.1', '--gateway-port', String(gatewayPort), '--logic-port', String(logicPort)];
  const ready = async (): Promise<boolean> => (await httpAnswers(`http://127.0.0.1:${gatewayPort}/`)) && (await httpAnswers(`http://127.0.0.1:${logicPort}/healthz`));
  return new SoakProcess(name, gatewayPort, process.execPath, [CLI, 'start', ...ports, ...args], logPath, ready);
}

/** Resident set size in bytes of any process, or undefined when it is gone. */
export function rssOf(pid: number): number | undefined {
  try {
    return readProcSample(pid).rssBytes;
  } catch {
    return undefined;
  }
}

/** Runs one Redis command inline on a connection of its own; resolves with the raw answer. */
export function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    socket.setTimeout(2000);
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (d) => {
      answer += d.toString();
      if (answer.endsWith('\r\n')) socket.end();
    });
    socket.on('error', (err) => resolve(`error: ${err.message}`));
    socket.on('timeout', () => socket.destroy());
    socket.on('close', () => resolve(answer.trim()));
  });
}
