/** The bench's flags, validated into typed options; every bad value gets an error that names the flag. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { MIN_VAL_BYTES } from './pusher.js';
import { DEFAULT_SCENARIOS, DEFAULT_SIZES, SCENARIO_NAMES, type ScenarioName, type ScenarioSizes } from './scenarios.js';
import type { SourceChoice } from './source-addresses.js';
import { TARGET_NAMES, type TargetName } from './targets.js';
import type { BrokerChoice, HistoryChoice } from './variants.js';

export interface BenchOptions {
  scenarios: ScenarioName[];
  targets: TargetName[];
  /** Whether --targets was given (rather than left at its default: every target). */
  targetsNamed: boolean;
  /** Whether --scenarios was given (rather than left at its default). */
  scenariosNamed: boolean;
  /** The flags the speed targets are set for at their defaults that this run changed (--fanout-conns, --val-bytes, ...). */
  targetSizesChanged: string[];
  /** roomcast's gateway worker counts, a row each (0: one process). */
  workers: number[];
  /** Where roomcast's broker is; `auto` when --workers asks for workers and no --broker is given. */
  broker: BrokerChoice;
  history: HistoryChoice;
  sizes: ScenarioSizes;
  valBytes: number;
  warmupPushes: number;
  concurrency: number;
  connsPerWorker: number;
  host: string;
  sourceAddresses: SourceChoice;
  timeoutSeconds: number;
  drainTimeoutSeconds: number;
  settleSeconds: number;
  waitForIdleSeconds: number;
  seed: number;
  json: string | undefined;
  profileDir: string | undefined;
  progress: boolean;
}

/** The sizes the speed targets (issue 3) are set for: fanout's, the pushes' and idle's. */
const TARGET_SIZE_FLAGS = ['--fanout-conns', '--fanout-pushes', '--val-bytes', '--concurrency', '--idle-conns'];

function camelCase(flag: string): string {
  return flag.slice(2).replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
}

function integer(what: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max) throw new InvalidArgumentError(`${what} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
    return n;
  };
}

function listOf<T extends string>(what: string, allowed: readonly T[]) {
  return (value: string): T[] => {
    const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const unknown = items.filter((s) => !(allowed as readonly string[]).includes(s));
    if (unknown.length > 0 || items.length === 0) throw new InvalidArgumentError(`${what} must be a comma-separated list of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
    return [...new Set(items)] as T[];
  };
}

const IPV4 = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function parseSourceChoice(value: string): SourceChoice {
  return value.trim() === 'auto' ? 'auto' : parseSourceAddresses(value);
}

/** `127.0.0.2-127.0.0.9` or `127.0.0.2,127.0.0.3`: loopback addresses only, since the bench talks only to loopback. */
export function parseSourceAddresses(value: string): string[] {
  const bad = (): never => {
    throw new InvalidArgumentError(`source addresses must be loopback IPv4 addresses (127.x.y.z), as a range A-B or a comma-separated list, got ${JSON.stringify(value)}`);
  };
  const check = (a: string): RegExpExecArray => {
    const m = IPV4.exec(a.trim());
    if (m === null || m.slice(1).some((p) => Number(p) > 255)) bad();
    return m!;
  };
  if (value.includes('-')) {
    const [from, to] = value.split('-').map(check);
    if (from[1] !== to[1] || from[2] !== to[2] || Number(from[3]) > Number(to[3])) bad();
    const out: string[] = [];
    for (let last = Number(from[3]); last <= Number(to[3]); last++) out.push(`127.${from[1]}.${from[2]}.${last}`);
    return out;
  }
  return value.split(',').map((a) => check(a)[0]);
}

const count = (what: string, max = 1_000_000) => integer(what, 1, max);

/** roomcast's default --history-size: a room that missed more cannot be replayed whole. */
const RESUME_MISSED_MAX = 1000;

function integerList(what: string, min: number, max: number) {
  return (value: string): number[] => {
    const items = value.split(',').map((s) => s.trim());
    if (items.some((s) => !/^\d+$/.test(s) || Number(s) < min || Number(s) > max)) {
      throw new InvalidArgumentError(`${what} must be an integer from ${min} to ${max}, or a comma-separated list of them, got ${JSON.stringify(value)}`);
    }
    return [...new Set(items.map(Number))];
  };
}

const LOOPBACK_HOST = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\])$/;

/** `memory`, `auto` (the bench starts redis-server), or a redis://HOST:PORT URL on loopback: the bench talks only to loopback. */
export function parseBroker(value: string): BrokerChoice {
  if (value === 'memory' || value === 'auto') return { kind: value };
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url === undefined || url.protocol !== 'redis:') {
    throw new InvalidArgumentError(`--broker must be memory, auto (the bench starts its own redis-server) or redis://HOST:PORT, got ${JSON.stringify(value)}`);
  }
  if (!LOOPBACK_HOST.test(url.hostname)) {
    throw new InvalidArgumentError(`--broker must be a Redis on loopback (127.x.y.z, localhost or [::1]): the bench talks only to loopback, got host ${JSON.stringify(url.hostname)}`);
  }
  return { kind: 'url', url: value };
}

function historyChoice(value: string): HistoryChoice {
  if (value !== 'on' && value !== 'off' && value !== 'both') throw new InvalidArgumentError(`--history must be on, off or both, got ${JSON.stringify(value)}`);
  return value;
}

export function benchCommand(): Command {
  const d = DEFAULT_SIZES;
  return new Command('bench')
    .name('roomcast bench')
    .description('Measure fan-out: roomcast side by side with Socket.IO 4.8 and a bare ws loop (docs/BENCHMARKS.md)')
    .addOption(
      new Option(
        '--scenarios <list>',
        `scenarios to run: ${SCENARIO_NAMES.join(', ')} (hold, many connections and one push to all, runs only when named: 30,000 connections need --workers 2; ` +
          'resume, a reconnect storm, runs on roomcast with history only: the peers have no session resume; ' +
          'churn, connections coming and going while pushes flow, leaves Socket.IO out: its clients cannot PING)',
      )
        .argParser(listOf('--scenarios', SCENARIO_NAMES))
        .default([...DEFAULT_SCENARIOS], DEFAULT_SCENARIOS.join(',')),
    )
    .addOption(new Option('--targets <list>', `servers to compare: ${TARGET_NAMES.join(', ')}`).argParser(listOf('--targets', TARGET_NAMES)).default([...TARGET_NAMES], TARGET_NAMES.join(',')))
    .addOption(
      new Option('--workers <n>', 'roomcast as `roomcast start --workers N` on Redis (a comma-separated list runs each count; 0: one process)')
        .argParser(integerList('--workers', 0, 64))
        .default([0], '0'),
    )
    .addOption(new Option('--broker <url>', 'roomcast\'s broker: memory, auto (start a redis-server for each run) or redis://HOST:PORT on loopback (default: memory, or auto with --workers)').argParser(parseBroker))
    .addOption(new Option('--history <mode>', 'roomcast\'s history for session recovery: on (its default), off (--history-size 0), or both (a row each)').argParser(historyChoice).default('on'))
    .addOption(new Option('--fanout-conns <n>', 'fanout: connections in the one room').argParser(count('--fanout-conns', 19_000 * 8)).default(d.fanoutConns))
    .addOption(new Option('--fanout-pushes <n>', 'fanout: pushes to the room').argParser(count('--fanout-pushes')).default(d.fanoutPushes))
    .addOption(new Option('--rooms-conns <n>', 'rooms: connections in all').argParser(count('--rooms-conns', 19_000 * 8)).default(d.roomsConns))
    .addOption(new Option('--room-size <n>', 'rooms and resume: connections per room').argParser(count('--room-size')).default(d.roomSize))
    .addOption(new Option('--rooms-pushes <n>', 'rooms: pushes, each to a random room').argParser(count('--rooms-pushes')).default(d.roomsPushes))
    .addOption(new Option('--all-conns <n>', 'all: connections').argParser(count('--all-conns', 19_000 * 8)).default(d.allConns))
    .addOption(new Option('--all-pushes <n>', 'all: pushes to all').argParser(count('--all-pushes')).default(d.allPushes))
    .addOption(new Option('--idle-conns <n>', 'idle: connections held').argParser(count('--idle-conns', 19_000 * 8)).default(d.idleConns))
    .addOption(new Option('--hold-conns <n>', 'hold: connections held').argParser(count('--hold-conns', 19_000 * 8)).default(d.holdConns))
    .addOption(new Option('--hold-pushes <n>', 'hold: pushes to all (after as many warm-up pushes)').argParser(count('--hold-pushes', 1000)).default(d.holdPushes))
    .addOption(new Option('--resume-conns <n>', 'resume: connections, in rooms of --room-size, that drop and resume at once').argParser(count('--resume-conns', 19_000 * 8)).default(d.resumeConns))
    .addOption(
      new Option('--resume-missed <n>', "resume: pushes to each room while its members are away (at most 1000, roomcast's --history-size)")
        .argParser(count('--resume-missed', RESUME_MISSED_MAX))
        .default(d.resumeMissed),
    )
    .addOption(new Option('--churn-conns <n>', 'churn: the population of connections, each in one of --churn-rooms rooms').argParser(count('--churn-conns', 19_000 * 8)).default(d.churnConns))
    .addOption(new Option('--churn-rooms <n>', 'churn: rooms the population is spread over').argParser(count('--churn-rooms')).default(d.churnRooms))
    .addOption(new Option('--churn-cycles <n>', 'churn: cycles of connections leaving and new ones coming').argParser(count('--churn-cycles', 100_000)).default(d.churnCycles))
    .addOption(new Option('--churn-percent <n>', 'churn: percent of the connections that leave (and come back new) in each cycle').argParser(count('--churn-percent', 100)).default(d.churnPercent))
    .addOption(new Option('--churn-push-rate <n>', 'churn: pushes per second to the rooms, in turn, while the cycles run').argParser(count('--churn-push-rate', 100_000)).default(d.churnPushRate))
    .addOption(new Option('--val-bytes <n>', 'size of each pushed val').argParser(integer('--val-bytes', MIN_VAL_BYTES, 60_000)).default(100))
    .addOption(new Option('--warmup <n>', 'pushes sent before measuring (not counted), so every server runs optimized code').argParser(integer('--warmup', 0, 1_000_000)).default(200))
    .addOption(new Option('--concurrency <n>', 'concurrent keep-alive push requests').argParser(count('--concurrency', 256)).default(8))
    .addOption(new Option('--conns-per-worker <n>', 'connections per client process (at least 2 processes)').argParser(count('--conns-per-worker', 15_000)).default(2500))
    .addOption(new Option('--host <address>', 'address the servers listen on').default('127.0.0.1'))
    .addOption(new Option('--source-addresses <range>', 'loopback addresses the client sockets are spread over; auto: 127.0.0.2-127.0.0.9 when a run opens more connections than half the ephemeral port range, else the kernel picks (binding costs a search of the ports)').argParser(parseSourceChoice).default('auto'))
    .addOption(new Option('--timeout <s>', 'time limit for one target in one scenario').argParser(count('--timeout', 3600)).default(120))
    .addOption(new Option('--drain-timeout <s>', 'stop waiting for missing frames after this long without one').argParser(count('--drain-timeout', 600)).default(10))
    .addOption(new Option('--settle <s>', 'idle: seconds the connections are held before memory is read; churn: seconds of quiet after the cycles before memory is read again (0 also skips the short pauses before measuring)').argParser(integer('--settle', 0, 600)).default(3))
    .addOption(new Option('--wait-for-idle <s>', 'before each target, wait up to this long for other processes to leave the CPUs alone').argParser(integer('--wait-for-idle', 0, 3600)).default(0))
    .addOption(new Option('--seed <n>', 'seed of the random room choices').argParser(integer('--seed', 0, 2 ** 31)).default(1))
    .addOption(new Option('--json <file>', 'also write the results as JSON to this file'))
    .addOption(new Option('--profile <dir>', 'run each server with node --cpu-prof, writing .cpuprofile files here'))
    .addOption(new Option('--no-progress', 'do not print the progress line'))
    .allowExcessArguments(false);
}

export function readBenchOptions(cmd: Command): BenchOptions {
  const o = cmd.opts<Record<string, unknown>>();
  const n = (key: string): number => o[key] as number;
  const workers = o.workers as number[];
  return {
    scenarios: o.scenarios as ScenarioName[],
    targets: o.targets as TargetName[],
    targetsNamed: cmd.getOptionValueSource('targets') !== 'default',
    scenariosNamed: cmd.getOptionValueSource('scenarios') !== 'default',
    targetSizesChanged: TARGET_SIZE_FLAGS.filter((flag) => cmd.getOptionValueSource(camelCase(flag)) !== 'default'),
    workers,
    broker: (o.broker as BrokerChoice | undefined) ?? { kind: workers.some((w) => w > 0) ? 'auto' : 'memory' },
    history: o.history as HistoryChoice,
    sizes: {
      fanoutConns: n('fanoutConns'),
      fanoutPushes: n('fanoutPushes'),
      roomsConns: n('roomsConns'),
      roomSize: n('roomSize'),
      roomsPushes: n('roomsPushes'),
      allConns: n('allConns'),
      allPushes: n('allPushes'),
      idleConns: n('idleConns'),
      holdConns: n('holdConns'),
      holdPushes: n('holdPushes'),
      resumeConns: n('resumeConns'),
      resumeMissed: n('resumeMissed'),
      churnConns: n('churnConns'),
      churnRooms: n('churnRooms'),
      churnCycles: n('churnCycles'),
      churnPercent: n('churnPercent'),
      churnPushRate: n('churnPushRate'),
    },
    valBytes: n('valBytes'),
    warmupPushes: n('warmup'),
    concurrency: n('concurrency'),
    connsPerWorker: n('connsPerWorker'),
    host: o.host as string,
    sourceAddresses: o.sourceAddresses as SourceChoice,
    timeoutSeconds: n('timeout'),
    drainTimeoutSeconds: n('drainTimeout'),
    settleSeconds: n('settle'),
    waitForIdleSeconds: n('waitForIdle'),
    seed: n('seed'),
    json: o.json as string | undefined,
    profileDir: o.profile as string | undefined,
    progress: o.progress as boolean,
  };
}

/** Parses bench flags (throws a CommanderError on a bad one); for tests and tools. */
export function parseBenchFlags(argv: string[]): BenchOptions {
  const cmd = benchCommand().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  cmd.parse(argv, { from: 'user' });
  return readBenchOptions(cmd);
}
