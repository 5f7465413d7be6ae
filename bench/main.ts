/** `roomcast bench` / `npm run bench`: runs the chosen scenarios against every target and prints the tables. */
import { writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { CommanderError } from 'commander';
import { benchCommand, readBenchOptions, type BenchOptions } from './options.js';
import { stopChildrenOnExit } from './processes.js';
import { waitForIdleMachine } from './proc-stats.js';
import { scenarioTable, speedChecks } from './report.js';
import { runTarget, type RunSettings, type TargetResult } from './run-target.js';
import { buildScenario } from './scenarios.js';

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

function checkSizes(options: BenchOptions): void {
  const { roomsConns, roomSize } = options.sizes;
  if (options.scenarios.includes('rooms') && roomSize > roomsConns) {
    throw new Error(`--room-size (${roomSize}) must not be larger than --rooms-conns (${roomsConns})`);
  }
}

export async function runBenchWith(options: BenchOptions, write: (text: string) => void): Promise<TargetResult[]> {
  checkSizes(options);
  const settings: RunSettings = {
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
  };
  const progress = progressLine(options.progress);
  const all: TargetResult[] = [];
  for (const name of options.scenarios) {
    const scenario = buildScenario(name, options.sizes, options.seed);
    const results: TargetResult[] = [];
    for (const target of options.targets) {
      if (options.waitForIdleSeconds > 0) {
        progress.show(`[${name} ${target}] waiting for an idle machine`);
        if (!(await waitForIdleMachine(options.waitForIdleSeconds * 1000))) progress.show(`[${name} ${target}] the machine stayed busy; measuring anyway`);
      }
      results.push(await runTarget(target, scenario, settings, (text) => progress.show(text)));
    }
    progress.clear();
    write(`${scenarioTable(scenario, results)}\n\n`);
    all.push(...results);
  }
  return all;
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
  const options = readBenchOptions(cmd);
  stopChildrenOnExit();
  const write = (text: string): boolean => process.stdout.write(text);
  write(`roomcast bench: node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown cpu'}); targets ${options.targets.join(', ')}\n\n`);
  let results: TargetResult[];
  try {
    results = await runBenchWith(options, write);
  } catch (err) {
    process.stderr.write(`roomcast bench: ${(err as Error).message}\n`);
    return 1;
  }
  const checks = speedChecks(results);
  if (checks.length > 0) {
    write('speed targets:\n');
    for (const c of checks) write(`  [${c.met ? 'met' : 'NOT met'}] ${c.what}: ${c.measured}\n`);
  }
  if (options.json !== undefined) {
    const doc = { node: process.version, cores: cpus().length, cpu: cpus()[0]?.model, startedAt: new Date().toISOString(), options, results, checks };
    await writeFile(options.json, `${JSON.stringify(doc, null, 2)}\n`);
    write(`results written to ${options.json}\n`);
  }
  const incomplete = results.some((r) => r.errors.length > 0);
  return incomplete ? 1 : 0;
}
