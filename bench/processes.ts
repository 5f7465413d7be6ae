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
/**
 * Process groups of servers under test (a cluster primary and its gateway
 * workers), until all of each is gone: a hung worker does not stop on
 * SIGTERM, nor with its primary, and would run on after the bench.
 */
const groups = new Set<number>();

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

/**
 * Starts `node [nodeArgs] script args` with an IPC channel; the child stops
 * when the bench goes away. With `ownGroup` it leads a process group of its
 * own, which stopProcess() ends whole: the child and every process it started.
 */
export function startNode(
  script: string,
  args: string[],
  nodeArgs: string[] = [],
  stdio: StdioOptions = ['ignore', 'pipe', 'pipe', 'ipc'],
  ownGroup = false,
): ChildProcess {
  const child = spawn(process.execPath, ['--import', EXIT_WITH_PARENT, ...nodeArgs, script, ...args], { stdio, detached: ownGroup });
  running.add(child);
  if (ownGroup && child.pid !== undefined) groups.add(child.pid);
  child.once('exit', () => running.delete(child));
  return child;
}

/** SIGKILL to every process left in the group `pgid` leads (none: nothing happens). */
function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // the group is empty
  }
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * `signal` (SIGTERM), then SIGKILL if the process has not exited within
 * `graceMs`; a group leader's group gets SIGKILL then, and once the leader
 * has exited, whatever of its group is left.
 */
export async function stopProcess(child: ChildProcess, graceMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const pgid = child.pid !== undefined && groups.has(child.pid) ? child.pid : undefined;
  if (!hasExited(child)) {
    const exited = once(child, 'exit');
    child.kill(signal);
    const timer = setTimeout(() => (pgid === undefined ? child.kill('SIGKILL') : killGroup(pgid)), graceMs);
    await exited;
    clearTimeout(timer);
  }
  if (pgid !== undefined) {
    killGroup(pgid);
    groups.delete(pgid);
  }
}

function killAll(): void {
  for (const child of running) if (!hasExited(child)) child.kill('SIGKILL');
  for (const pgid of groups) killGroup(pgid);
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
