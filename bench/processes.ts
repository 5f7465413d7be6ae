/**
 * Every process the bench starts goes through here, so that all of them are
 * stopped however the bench ends: normally, on an error, on Ctrl-C or SIGTERM.
 * (If the bench itself is killed outright, exit-with-parent.ts stops them.)
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const EXIT_WITH_PARENT = new URL('./exit-with-parent.js', import.meta.url).href;
const running = new Set<ChildProcess>();
/** Processes that are not the bench's children (redis-server, under its keeper), killed with them. */
const alsoKill = new Set<number>();

export function killAlsoOnExit(pid: number): void {
  alsoKill.add(pid);
}

export function forgetPid(pid: number): void {
  alsoKill.delete(pid);
}

/** A script of the built bench (or of the built server), by its path relative to dist/bench/. */
export function benchScript(relative: string): string {
  return fileURLToPath(new URL(relative, import.meta.url));
}

/** Starts `node [nodeArgs] script args` with an IPC channel; the child stops when the bench goes away. */
export function startNode(script: string, args: string[], nodeArgs: string[] = [], stdio: StdioOptions = ['ignore', 'pipe', 'pipe', 'ipc']): ChildProcess {
  const child = spawn(process.execPath, ['--import', EXIT_WITH_PARENT, ...nodeArgs, script, ...args], { stdio });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** `signal` (SIGTERM), then SIGKILL if the process has not exited within `graceMs`. */
export async function stopProcess(child: ChildProcess, graceMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (hasExited(child)) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function killAll(): void {
  for (const child of running) if (!hasExited(child)) child.kill('SIGKILL');
  for (const pid of alsoKill) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Stops every child when the bench exits or is interrupted. */
export function stopChildrenOnExit(): void {
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal}: stopping the bench and every process it started\n`);
      killAll();
      process.exit(130);
    });
  }
}
