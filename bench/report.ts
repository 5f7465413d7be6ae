/** The bench's results as text tables (one per scenario, a ratio to roomcast beside each number) and as JSON. */
import type { TargetResult } from './run-target.js';
import type { Scenario } from './scenarios.js';
import { isStandard } from './variants.js';

interface Column {
  title: string;
  value(r: TargetResult): number | undefined;
  format(n: number): string;
  /** Ratios are shown for rates, latencies and costs, not for completeness. */
  ratio: boolean;
}

const integer = (n: number): string => Math.round(n).toLocaleString('en-US');
const fixed = (digits: number) => (n: number) => n.toFixed(digits);
/** Two decimals, or as many more as it takes for a share short of all never to read 100%. */
function percent(n: number): string {
  if (n === 1) return '100%';
  let digits = 2;
  while (n < 1 && digits < 12 && (n * 100).toFixed(digits).startsWith('100')) digits++;
  return `${(n * 100).toFixed(digits)}%`;
}

const TRAFFIC_COLUMNS: Column[] = [
  { title: 'pushes/s', value: (r) => r.pushesPerSecond, format: integer, ratio: true },
  { title: 'deliveries/s', value: (r) => r.deliveriesPerSecond, format: integer, ratio: true },
  { title: 'complete', value: (r) => r.completeness, format: percent, ratio: false },
  { title: 'p50 ms', value: (r) => r.latencyMs.p50, format: fixed(1), ratio: true },
  { title: 'p99 ms', value: (r) => r.latencyMs.p99, format: fixed(1), ratio: true },
  { title: 'max ms', value: (r) => r.latencyMs.max, format: fixed(1), ratio: true },
  { title: 'server CPU s', value: (r) => r.serverCpuSeconds, format: fixed(2), ratio: true },
  { title: 'server RSS MB', value: (r) => r.serverRssMB, format: fixed(0), ratio: true },
  { title: 'client CPU s', value: (r) => r.clientCpuSeconds, format: fixed(2), ratio: false },
  { title: 'other CPU s', value: (r) => r.otherCpuSeconds, format: fixed(2), ratio: false },
];

/** Shown only when some row ran on a redis-server the bench started. */
const REDIS_CPU: Column = { title: 'redis CPU s', value: (r) => r.redisCpuSeconds, format: fixed(2), ratio: false };

/** idle and hold: connections still open at the end (the server closed none). */
const HELD: Column = { title: 'connected', value: (r) => (r.connected - r.closedEarly) / r.conns, format: percent, ratio: false };

const HOLD_COLUMNS: Column[] = [
  HELD,
  { title: 'connect s', value: (r) => r.connectSeconds, format: fixed(2), ratio: true },
  { title: 'complete', value: (r) => r.completeness, format: percent, ratio: false },
  { title: 'first-to-last frame ms', value: (r) => r.deliverySpreadMs, format: fixed(1), ratio: true },
  { title: 'p50 ms', value: (r) => r.latencyMs.p50, format: fixed(1), ratio: true },
  { title: 'max ms', value: (r) => r.latencyMs.max, format: fixed(1), ratio: true },
  { title: 'server processes', value: (r) => r.serverProcesses, format: integer, ratio: false },
  { title: 'most files in one', value: (r) => (r.serverOpenFiles.length === 0 ? undefined : Math.max(...r.serverOpenFiles)), format: integer, ratio: false },
  { title: 'server RSS MB', value: (r) => r.serverRssMB, format: fixed(0), ratio: true },
  { title: 'RSS/conn KB', value: (r) => r.rssPerConnKB, format: fixed(2), ratio: true },
  { title: 'server CPU s', value: (r) => r.serverCpuSeconds, format: fixed(2), ratio: true },
  { title: 'other CPU s', value: (r) => r.otherCpuSeconds, format: fixed(2), ratio: false },
];

const IDLE_COLUMNS: Column[] = [
  HELD,
  { title: 'connect s', value: (r) => r.connectSeconds, format: fixed(2), ratio: true },
  { title: 'RSS/conn KB', value: (r) => r.rssPerConnKB, format: fixed(2), ratio: true },
  { title: 'server RSS MB', value: (r) => r.serverRssMB, format: fixed(0), ratio: true },
  { title: 'server CPU s', value: (r) => r.serverCpuSeconds, format: fixed(2), ratio: true },
];

/** resume: the reconnect storm, from the first reconnect to the last `resumed`. */
const RESUME_COLUMNS: Column[] = [
  { title: 'storm s', value: (r) => r.resume?.seconds, format: fixed(2), ratio: true },
  { title: 'resumes/s', value: (r) => r.resume?.resumesPerSecond, format: integer, ratio: true },
  { title: 'replayed frames/s', value: (r) => r.deliveriesPerSecond, format: integer, ratio: true },
  { title: 'complete', value: (r) => r.completeness, format: percent, ratio: false },
  { title: 'recovered', value: (r) => (r.resume === undefined ? undefined : r.resume.recovered / r.conns), format: percent, ratio: false },
  { title: 'resume p50 ms', value: (r) => r.resume?.timeMs.p50, format: fixed(1), ratio: true },
  { title: 'resume p99 ms', value: (r) => r.resume?.timeMs.p99, format: fixed(1), ratio: true },
  { title: 'resume max ms', value: (r) => r.resume?.timeMs.max, format: fixed(1), ratio: true },
  { title: 'server CPU s', value: (r) => r.serverCpuSeconds, format: fixed(2), ratio: true },
  { title: 'server RSS MB', value: (r) => r.serverRssMB, format: fixed(0), ratio: true },
  { title: 'client CPU s', value: (r) => r.clientCpuSeconds, format: fixed(2), ratio: false },
  { title: 'other CPU s', value: (r) => r.otherCpuSeconds, format: fixed(2), ratio: false },
];

/** churn: how fast connections came and went, what they received while connected, and the server's memory and counts before, after, and after a settle. */
const CHURN_COLUMNS: Column[] = [
  { title: 'connects/s', value: (r) => r.churn?.connectsPerSecond, format: integer, ratio: true },
  { title: 'disconnects/s', value: (r) => r.churn?.disconnectsPerSecond, format: integer, ratio: true },
  { title: 'pushes/s', value: (r) => r.pushesPerSecond, format: integer, ratio: true },
  { title: 'complete', value: (r) => r.completeness, format: percent, ratio: false },
  { title: 'p50 ms', value: (r) => r.latencyMs.p50, format: fixed(1), ratio: true },
  { title: 'p99 ms', value: (r) => r.latencyMs.p99, format: fixed(1), ratio: true },
  { title: 'RSS MB before', value: (r) => r.churn?.memory.before.rssMB, format: fixed(0), ratio: true },
  { title: 'RSS MB after', value: (r) => r.churn?.memory.afterChurn.rssMB, format: fixed(0), ratio: true },
  { title: 'RSS MB settled', value: (r) => r.churn?.memory.afterSettle.rssMB, format: fixed(0), ratio: true },
  { title: 'heap MB before', value: (r) => r.churn?.memory.before.heapUsedMB, format: fixed(1), ratio: false },
  { title: 'heap MB after', value: (r) => r.churn?.memory.afterChurn.heapUsedMB, format: fixed(1), ratio: false },
  { title: 'heap MB settled', value: (r) => r.churn?.memory.afterSettle.heapUsedMB, format: fixed(1), ratio: false },
  { title: 'conns settled', value: (r) => r.churn?.memory.afterSettle.connections, format: integer, ratio: false },
  { title: 'rooms settled', value: (r) => r.churn?.memory.afterSettle.rooms, format: integer, ratio: false },
  { title: 'server CPU s', value: (r) => r.serverCpuSeconds, format: fixed(2), ratio: true },
  { title: 'other CPU s', value: (r) => r.otherCpuSeconds, format: fixed(2), ratio: false },
];

const COLUMNS: Record<string, Column[]> = { idle: IDLE_COLUMNS, hold: HOLD_COLUMNS, resume: RESUME_COLUMNS, churn: CHURN_COLUMNS };

function cell(column: Column, r: TargetResult, base: TargetResult | undefined): string {
  const v = column.value(r);
  if (v === undefined || Number.isNaN(v)) return '-';
  let text = column.format(v);
  if (column.ratio && base !== undefined && base !== r) {
    const b = column.value(base);
    if (b !== undefined && b > 0 && Number.isFinite(b)) text += ` (${(v / b).toFixed(2)}x)`;
  }
  return text;
}

export function scenarioTable(scenario: Scenario, results: TargetResult[]): string {
  const base = COLUMNS[scenario.name] ?? TRAFFIC_COLUMNS;
  const withRedis = results.some((r) => r.redisCpuSeconds !== undefined);
  const columns = withRedis && scenario.name !== 'idle' ? [...base.slice(0, -1), REDIS_CPU, ...base.slice(-1)] : base;
  const first = results.find((r) => r.target === 'roomcast');
  const rows = [['target', ...columns.map((c) => c.title)], ...results.map((r) => [r.label, ...columns.map((c) => cell(c, r, first))])];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row: string[]): string => `| ${row.map((text, i) => (i === 0 ? text.padEnd(widths[i]) : text.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  const notes = results.flatMap((r) => r.errors.map((e) => `  ! ${r.label}: ${e}`));
  return [`${scenario.name}: ${scenario.description}`, '', line(rows[0]), rule, ...rows.slice(1).map(line), ...(notes.length > 0 ? ['', ...notes] : [])].join('\n');
}

export interface Check {
  what: string;
  measured: string;
  met: boolean;
}

/** Frames that fail a run however many arrived: no server may send them, they are malformed, or they came twice, out of order, without a seq, or to the wrong room. */
function frameFaults(r: TargetResult): string[] {
  const faults: [number, string][] = [
    [r.protocolErrors, 'frames no server may send'],
    [r.malformedFrames, 'malformed control frames'],
    [r.duplicateFrames, 'duplicate frames'],
    [r.outOfOrderFrames, 'frames out of order'],
    [r.unsequencedFrames, 'frames without a seq'],
    [r.extraFrames, 'frames of another room'],
  ];
  return faults.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}`);
}

/** Every connection resumed with recovered:true, and no replayed frame came after its `resumed`. */
function resumedAll(r: TargetResult): boolean {
  return r.resume !== undefined && r.resume.recovered === r.conns && r.resume.failed === 0 && r.resume.framesAfterResumed === 0;
}

/** churn: the server counts the population and its rooms again once the churn has settled. */
function countsReturned(r: TargetResult): boolean {
  if (r.churn === undefined) return false;
  const settled = r.churn.memory.afterSettle;
  return settled.connections === r.conns && settled.rooms === r.churn.rooms;
}

/**
 * Why a run's speed is not judged: it had errors, or (but idle, which sends
 * nothing) missed frames; undefined when it ran clean. A peer that crashed
 * halfway, or delivered nothing (0/s), is no measure to be faster than.
 */
function notJudged(r: TargetResult): string | undefined {
  const why = [];
  if (r.scenario !== 'idle' && r.completeness !== 1) why.push(`${percent(r.completeness)} complete`);
  if (r.errors.length > 0) why.push(`${r.errors.length} error${r.errors.length === 1 ? '' : 's'}`);
  return why.length === 0 ? undefined : `${r.label} ${why.join(', ')}`;
}

/** A speed check of `runs`: met only when each of them ran clean; else the measure is shown with why it is not judged. */
function speedCheck(what: string, measured: string, met: boolean, runs: TargetResult[]): Check {
  const why = runs.map(notJudged).filter((w) => w !== undefined);
  return why.length === 0 ? { what, measured, met } : { what, measured: `${measured}, not judged: ${why.join('; ')}`, met: false };
}

/**
 * The speed targets of the roadmap (issue 3), checked against one run; a
 * target whose inputs did not run is left out. The speed targets are about
 * roomcast as `roomcast start` runs (one process, memory, history on);
 * completeness is checked for every roomcast row.
 */
export function speedChecks(results: TargetResult[]): Check[] {
  const find = (scenario: string, target: string): TargetResult | undefined =>
    results.find((r) => r.scenario === scenario && r.target === target && (target !== 'roomcast' || isStandard(r)));
  const checks: Check[] = [];
  const fanout = find('fanout', 'roomcast');
  if (fanout !== undefined) {
    for (const [peer, factor] of [['socketio', 3], ['ws', 1.5]] as const) {
      const other = find('fanout', peer);
      if (other === undefined) continue;
      const ratio = fanout.deliveriesPerSecond / other.deliveriesPerSecond;
      checks.push(speedCheck(`fanout deliveries/s >= ${factor}x ${other.label}`, `${ratio.toFixed(2)}x`, ratio >= factor, [fanout, other]));
    }
    checks.push(speedCheck('fanout p99 <= 50 ms', `${fanout.latencyMs.p99} ms`, fanout.latencyMs.p99 <= 50, [fanout]));
  }
  const idle = find('idle', 'roomcast');
  if (idle?.rssPerConnKB !== undefined) {
    checks.push(speedCheck('idle RSS per connection <= 8 KB', `${idle.rssPerConnKB} KB`, idle.rssPerConnKB <= 8, [idle]));
  }
  for (const r of results.filter((x) => x.target === 'roomcast')) {
    const held = r.connected === r.conns && r.closedEarly === 0;
    const complete =
      r.scenario === 'idle'
        ? held
        : r.scenario === 'hold'
          ? held && r.completeness === 1
          : r.completeness === 1 && r.connected === r.conns && (r.scenario !== 'resume' || resumedAll(r)) && (r.scenario !== 'churn' || countsReturned(r));
    const connected = `${r.connected}/${r.conns} connected${r.closedEarly > 0 ? `, ${r.closedEarly} closed by the server` : ''}`;
    const measured =
      r.scenario === 'idle'
        ? connected
        : r.scenario === 'hold'
          ? `${r.deliveries}/${r.expectedDeliveries} frames, ${connected}`
          : r.resume !== undefined
            ? `${percent(r.completeness)} replayed, ${r.resume.recovered}/${r.conns} recovered`
            : r.churn !== undefined
              ? `${percent(r.completeness)}, ${r.churn.memory.afterSettle.connections}/${r.conns} connections and ${r.churn.memory.afterSettle.rooms}/${r.churn.rooms} rooms counted after settling`
              : percent(r.completeness);
    const faults = frameFaults(r);
    const who = r.label === 'roomcast' ? '' : ` (${r.label})`;
    checks.push({ what: `${r.scenario} complete${who}`, measured: [measured, ...faults].join(', '), met: complete && faults.length === 0 });
  }
  return checks;
}
