/** `roomcast bench` / `npm run bench`: runs the chosen scenarios against every target and prints the tables. */
import { writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { CommanderError } from 'commander';
import { benchCommand, readBenchOptions, type BenchOptions } from './options.js';
import { stopChildrenOnExit } from './processes.js';
import { openFilesLimit, waitForIdleMachine } from './proc-stats.js';
import { redisServerInstalled } from './local-redis.js';
import { scenarioTable, speedChecks } from './report.js';
import { runTarget, type RunSettings, type TargetResult } from './run-target.js';
import { buildScenario, CHURN_TARGETS, RESUME_SCENARIOS, type ScenarioName } from './scenarios.js';
import { socketIoInstalled } from './targets.js';
import { canResume, gatewayProcesses, targetRuns, type TargetRun } from './variants.js';

function progressLine(enabled: boolean): { show(text: string): void; clear(): void } {
  const tty = process.stderr.isTTY === true;
  let shown = false;
  let lastStage = '';
  let lastAt = 0;
  return {
    show(text) {
      if (!enabled) return;
      if (tty) {
        const width = process.stderr.columns > 20 ? process.stderr.columns - 1 : 120;
        process.stderr.write(`\r${text.slice(0, width).padEnd(width)}`);
        shown = true;
        return;
      }
      // Not a terminal: a line per stage, and at most one every 2 s within one.
      const stage = text.slice(0, text.indexOf(']') + 1);
      if (stage === lastStage && Date.now() - lastAt < 2000) return;
      lastStage = stage;
      lastAt = Date.now();
      process.stderr.write(`${text}\n`);
    },
    clear() {
      if (shown) process.stderr.write(`\r${' '.repeat(process.stderr.columns > 20 ? process.stderr.columns - 1 : 120)}\r`);
      shown = false;
    },
  };
}

/** Files a server process needs besides its connections: listening sockets, Redis, logs, node itself. */
const FILES_SPARE = 1000;

/** The runs a scenario takes: resume only roomcast's with history, churn not Socket.IO. */
function runsOf(name: ScenarioName, runs: TargetRun[]): TargetRun[] {
  if (RESUME_SCENARIOS.includes(name)) return runs.filter(canResume);
  if (name === 'churn') return runs.filter((run) => CHURN_TARGETS.includes(run.target));
  return runs;
}

/** A line saying which runs a scenario leaves out (`runs` but not `taken`), and why; undefined when it takes them all. */
function leftOutLine(name: ScenarioName, runs: TargetRun[], taken: TargetRun[]): string | undefined {
  const left = runs.filter((run) => !taken.includes(run));
  if (left.length === 0) return undefined;
  const why =
    name === 'churn'
      ? 'roomcast and the bare ws loop only (a leaving client PINGs and reads the PONG, so every frame queued for it before it left is read; Socket.IO clients cannot PING)'
      : 'roomcast with history only (the peers have no session resume; without history nothing is replayed)';
  return `${name}: ${why}, so ${left.map((r) => r.label).join(', ')} ${left.length === 1 ? 'is' : 'are'} left out`;
}

/** Flags that do not fit together, and loads no server process could hold, are refused before anything starts. */
function checkOptions(options: BenchOptions, runs: TargetRun[]): void {
  const { roomsConns, roomSize, resumeConns, churnConns, churnRooms } = options.sizes;
  if (options.scenarios.includes('churn') && churnRooms > churnConns) {
    throw new Error(`--churn-rooms (${churnRooms}) must not be larger than --churn-conns (${churnConns})`);
  }
  if (options.scenarios.includes('rooms') && roomSize > roomsConns) {
    throw new Error(`--room-size (${roomSize}) must not be larger than --rooms-conns (${roomsConns})`);
  }
  if (options.scenarios.includes('resume') && roomSize > resumeConns) {
    throw new Error(`--room-size (${roomSize}) must not be larger than --resume-conns (${resumeConns})`);
  }
  if (options.scenariosNamed && options.scenarios.includes('resume') && !runs.some(canResume)) {
    throw new Error('--scenarios resume needs roomcast with history in the run (the peers have no session resume): add roomcast to --targets, and leave out --history off');
  }
  if (options.scenariosNamed && options.scenarios.includes('churn') && !runs.some((run) => CHURN_TARGETS.includes(run.target))) {
    throw new Error('--scenarios churn needs roomcast or ws in --targets (Socket.IO clients cannot PING, which a leaving churn client does to read every frame sent to it)');
  }
  const roomcast = options.targets.includes('roomcast');
  const clustered = options.workers.some((n) => n > 0);
  if (!roomcast && (clustered || options.history !== 'on')) {
    throw new Error('--workers and --history change how roomcast runs, and --targets leaves roomcast out');
  }
  if (clustered && options.broker.kind === 'memory') {
    throw new Error(
      `--workers ${options.workers.join(',')} needs Redis (gateway workers share rooms through it): leave out --broker, or give --broker auto or --broker redis://HOST:PORT`,
    );
  }
  if (roomcast && options.broker.kind === 'auto' && !redisServerInstalled()) {
    throw new Error('--broker auto starts a redis-server, which is not installed: run `apt-get install -y redis-server`, or give --broker redis://HOST:PORT');
  }
  const limit = openFilesLimit();
  for (const name of options.scenarios) {
    const conns = buildScenario(name, options.sizes, options.seed).conns;
    for (const run of runsOf(name, runs)) {
      const processes = gatewayProcesses(run);
      if (conns / processes <= limit - FILES_SPARE) continue;
      const needed = Math.ceil(conns / (limit - FILES_SPARE));
      const fix = run.target === 'roomcast' ? `run roomcast with --workers ${needed} or more` : `leave ${run.label} out of --targets`;
      throw new Error(
        `${name}: ${conns} connections are more than ${run.label} can hold in ${processes} process${processes === 1 ? '' : 'es'} ` +
          `(each may open ${limit} files, ${limit - FILES_SPARE} of them for connections): ${fix}, or use fewer connections`,
      );
    }
  }
}

export function runSettings(options: BenchOptions): RunSettings {
  return {
    host: options.host,
    sourceAddresses: options.sourceAddresses,
    connsPerWorker: options.connsPerWorker,
    concurrency: options.concurrency,
    valBytes: options.valBytes,
    warmupPushes: options.warmupPushes,
    timeoutMs: options.timeoutSeconds * 1000,
    drainTimeoutMs: options.drainTimeoutSeconds * 1000,
    settleMs: options.settleSeconds * 1000,
    serverNodeArgs: options.profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', options.profileDir],
    broker: options.broker,
  };
}

export async function runBenchWith(options: BenchOptions, write: (text: string) => void): Promise<TargetResult[]> {
  const runs = targetRuns(options.targets, options.workers, options.history, options.broker);
  checkOptions(options, runs);
  const settings = runSettings(options);
  const progress = progressLine(options.progress);
  const all: TargetResult[] = [];
  for (const name of options.scenarios) {
    const scenario = buildScenario(name, options.sizes, options.seed);
    const results: TargetResult[] = [];
    const taken = runsOf(name, runs);
    const leftOut = leftOutLine(name, runs, taken);
    if (taken.length === 0) {
      write(`${leftOut}: nothing to run\n\n`);
      continue;
    }
    for (const run of taken) {
      if (options.waitForIdleSeconds > 0) {
        progress.show(`[${name} ${run.label}] waiting for an idle machine`);
        if (!(await waitForIdleMachine(options.waitForIdleSeconds * 1000))) progress.show(`[${name} ${run.label}] the machine stayed busy; measuring anyway`);
      }
      results.push(await runTarget(run, scenario, settings, (text) => progress.show(text)));
    }
    progress.clear();
    write(`${scenarioTable(scenario, results)}\n\n`);
    if (leftOut !== undefined) write(`${leftOut}\n\n`);
    all.push(...results);
  }
  return all;
}

/**
 * Leaves the Socket.IO target out, with one line, when socket.io is not
 * installed and --targets did not name it; refuses to run when it did.
 */
function withInstalledPeers(options: BenchOptions, notice: (line: string) => void): BenchOptions {
  if (!options.targets.includes('socketio') || socketIoInstalled()) return options;
  const missing = 'socket.io is not installed (it is a devDependency of roomcast)';
  if (options.targetsNamed) throw new Error(`--targets names socketio, but ${missing}: run \`npm install socket.io@4.8\` beside roomcast, or leave socketio out of --targets`);
  notice(`roomcast bench: ${missing}, so the Socket.IO target is left out; \`npm install socket.io@4.8\` beside roomcast to compare with it\n`);
  return { ...options, targets: options.targets.filter((t) => t !== 'socketio') };
}

/** Runs the bench with command-line flags; resolves to the process exit code. */
export async function runBench(argv: string[]): Promise<number> {
  const cmd = benchCommand().exitOverride();
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    throw err;
  }
  let options: BenchOptions;
  try {
    options = withInstalledPeers(readBenchOptions(cmd), (line) => process.stderr.write(line));
  } catch (err) {
    process.stderr.write(`roomcast bench: ${(err as Error).message}\n`);
    return 1;
  }
  stopChildrenOnExit();
  const write = (text: string): boolean => process.stdout.write(text);
  const brokerText = options.broker.kind === 'url' ? options.broker.url : options.broker.kind === 'auto' ? 'a redis-server per run' : 'memory';
  write(
    `roomcast bench: node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown cpu'}); targets ${options.targets.join(', ')}` +
      (options.targets.includes('roomcast') ? `; roomcast workers ${options.workers.join(',')}, broker ${brokerText}, history ${options.history}` : '') +
      '\n\n',
  );
  const startedAt = new Date().toISOString();
  let results: TargetResult[];
  try {
    results = await runBenchWith(options, write);
  } catch (err) {
    process.stderr.write(`roomcast bench: ${(err as Error).message}\n`);
    return 1;
  }
  const checks = speedChecks(results);
  if (checks.length > 0) {
    const changed = options.targetSizesChanged;
    write(changed.length === 0 ? 'speed targets:\n' : `speed targets (set for the default sizes; this run changed ${changed.join(', ')}, so read them as indicative):\n`);
    for (const c of checks) write(`  [${c.met ? 'met' : 'NOT met'}] ${c.what}: ${c.measured}\n`);
  }
  if (options.json !== undefined) {
    const doc = { node: process.version, cores: cpus().length, cpu: cpus()[0]?.model, startedAt, finishedAt: new Date().toISOString(), options, results, checks };
    await writeFile(options.json, `${JSON.stringify(doc, null, 2)}\n`);
    write(`results written to ${options.json}\n`);
  }
  const incomplete = results.some((r) => r.errors.length > 0);
  return incomplete ? 1 : 0;
}
