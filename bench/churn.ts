/**
 * The churn scenario, measured: cycles in which some connections leave (half
 * with a clean close, half by destroying the socket) and as many new ones
 * connect and join, while pushes go to the rooms at a steady rate; then the
 * server's memory and counts after the churn and after a quiet settle.
 *
 * Completeness is counted per connection life. A push counts for a
 * connection when it was sent after the connection's join was answered and
 * answered before the connection began to leave. A leaving connection first
 * sends a PING and reads until its PONG (a barrier), and the server queues
 * the PONG behind every frame it queued before, so each push it must count
 * has been read when it leaves; a connection still open at the end leaves
 * that way too, at the final barrier. Pushes answered while a connection
 * joins or leaves may arrive or not: they count neither way.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Histogram, quantilesMs, round } from './histogram.js';
import { CONNECT_IN_FLIGHT, type Lifetime } from './messages.js';
import { megabytes } from './proc-stats.js';
import { perSecondOfPushes, runPacedPushes, type LoggedPush } from './pusher.js';
import type { ChurnPlan, Scenario } from './scenarios.js';
import { heapUsedBytes, joinRooms, serverCounts, type Membership, type ServerCounts } from './server-reads.js';
import type { RunSettings, TargetResult } from './run-target.js';
import type { Worker } from './workers.js';

/** The server at one point of the run: RSS of every process, heap used (GET /metrics), and GET /stats counts; undefined where the server has no such API. */
export interface MemoryPoint {
  rssMB: number;
  heapUsedMB: number | undefined;
  connections: number | undefined;
  rooms: number | undefined;
}

export interface ChurnResult {
  cycles: number;
  /** From the first leave to the last new connection's join answered. */
  seconds: number;
  /** New connections welcomed (and joined), and connections that left: cleanly and by destroying the socket. */
  connects: number;
  disconnects: number;
  cleanCloses: number;
  destroyed: number;
  connectsPerSecond: number;
  disconnectsPerSecond: number;
  /** Connection lives whose pushes were counted. */
  lifetimes: number;
  /** The rooms the connections are in, all the time: what the server should count after the settle. */
  rooms: number;
  /** Before the cycles (after the warm-up), right after them, and after --settle seconds of quiet. */
  memory: { before: MemoryPoint; afterChurn: MemoryPoint; afterSettle: MemoryPoint };
}

export interface ChurnRun {
  logicUrl: string;
  scenario: Scenario;
  workers: Worker[];
  /** How many connections each worker holds, in the order of `workers`: connection i of the run is its i-th. */
  held: number[];
  /** When each connection's join was answered (monotonic µs), by wsId; filled in by the churn too. */
  joinedAtUs: Map<string, number>;
  settings: RunSettings;
  deadline: number;
  result: TargetResult;
  say: (what: string) => void;
  /** RSS of every server process, in bytes. */
  serverRss: () => number;
}

/** The server's memory and counts now; the counts only from a server with GET /stats (roomcast). */
async function memoryPoint(run: ChurnRun, withStats: boolean): Promise<MemoryPoint> {
  const [counts, heap]: [ServerCounts | undefined, number | undefined] = withStats
    ? await Promise.all([serverCounts(run.logicUrl, run.deadline), heapUsedBytes(run.logicUrl, run.deadline)])
    : [undefined, undefined];
  return { rssMB: megabytes(run.serverRss()), heapUsedMB: heap === undefined ? undefined : megabytes(heap), connections: counts?.connections, rooms: counts?.rooms };
}

/** The run's connection indexes that leave in cycle `cycle`, and which worker holds each. */
function leavesOf(cycle: number, plan: ChurnPlan, held: number[]): { worker: number; slot: number; global: number; clean: boolean }[] {
  const total = held.reduce((a, b) => a + b, 0);
  const leaves = [];
  for (let j = 0; j < Math.min(plan.perCycle, total); j++) {
    const position = cycle * plan.perCycle + j;
    const global = position % total;
    let worker = 0;
    let slot = global;
    while (slot >= held[worker]) slot -= held[worker++];
    // clean and destroyed take turns over the whole run, so they are half and half however many leave per cycle
    leaves.push({ worker, slot, global, clean: position % 2 === 0 });
  }
  return leaves;
}

/** One cycle: the leaving connections leave, new ones take their places and join their rooms. */
async function cycleOnce(run: ChurnRun, cycle: number, plan: ChurnPlan, totals: ChurnResult, errors: string[]): Promise<void> {
  const leaves = leavesOf(cycle, plan, run.held);
  const timeoutMs = Math.max(1000, run.deadline - Date.now());
  const outcomes = await Promise.all(
    run.workers.map((w, i) => {
      const mine = leaves.filter((l) => l.worker === i);
      return mine.length === 0 ? undefined : w.request({ op: 'churn', leaves: mine.map(({ slot, clean }) => ({ slot, clean })), inFlight: CONNECT_IN_FLIGHT, timeoutMs }, run.deadline).then((o) => ({ o, mine }));
    }),
  );
  const members: Membership[] = [];
  for (const outcome of outcomes) {
    if (outcome === undefined) continue;
    const { o, mine } = outcome;
    totals.cleanCloses += o.cleanCloses;
    totals.destroyed += o.destroyed;
    if (o.failed > 0) errors.push(`churn cycle ${cycle + 1}: ${o.failed} leaves or new connections failed, first: ${o.firstError}`);
    o.wsIds.forEach((wsId, k) => {
      if (wsId !== null) members.push({ wsId, room: run.scenario.roomOf(mine[k].global) });
    });
  }
  totals.disconnects = totals.cleanCloses + totals.destroyed;
  totals.connects += members.length;
  await joinRooms(run.logicUrl, members, run.settings.concurrency, run.deadline, errors, (wsId, atUs) => run.joinedAtUs.set(wsId, atUs));
}

/** Pushes each life should have received (see the top of this file), how many of them it did, and the first it did not. */
function countLives(
  lives: Lifetime[],
  pushes: LoggedPush[],
  joinedAtUs: Map<string, number>,
  roomOf: (i: number) => string | undefined,
): { expected: number; delivered: number; lives: number; firstMissing: string | undefined } {
  const byRoom = new Map<string, LoggedPush[]>();
  for (const p of pushes) {
    let list = byRoom.get(p.room);
    if (list === undefined) byRoom.set(p.room, (list = []));
    list.push(p);
  }
  let expected = 0;
  let delivered = 0;
  let counted = 0;
  let firstMissing: string | undefined;
  for (const life of lives) {
    const joinedUs = joinedAtUs.get(life.wsId);
    const room = roomOf(life.slot);
    if (joinedUs === undefined || room === undefined) continue; // its join failed: an error of the run already
    counted++;
    const seqs = new Set(life.seqs);
    for (const p of byRoom.get(room) ?? []) {
      if (p.sentUs <= joinedUs || p.answeredUs >= life.endUs) continue;
      expected++;
      if (seqs.has(p.seq)) delivered++;
      else
        firstMissing ??=
          `${life.wsId} in ${room} lacks seq ${p.seq} (sent ${p.sentUs - joinedUs} µs after its join was answered, answered ${life.endUs - p.answeredUs} µs before it began to leave; ` +
          `it received ${life.seqs.length} seqs, of them near it: ${life.seqs.filter((seq) => Math.abs(seq - p.seq) <= 3).join(',') || 'none'})`;
    }
  }
  return { expected, delivered, lives: counted, firstMissing };
}

/** Runs the cycles with pushes flowing, reads the server before, after and after a settle, and counts every life's pushes. */
export async function runChurn(run: ChurnRun, withStats: boolean): Promise<void> {
  const { scenario, settings, deadline, result, say, workers } = run;
  const plan = scenario.churn!;
  const errors = result.errors;
  const before = await memoryPoint(run, withStats);
  const totals: ChurnResult = {
    cycles: 0,
    seconds: NaN,
    connects: 0,
    disconnects: 0,
    cleanCloses: 0,
    destroyed: 0,
    connectsPerSecond: NaN,
    disconnectsPerSecond: NaN,
    lifetimes: 0,
    rooms: plan.rooms,
    memory: { before, afterChurn: before, afterSettle: before },
  };
  result.churn = totals;
  const cyclesDone = new AbortController();
  // the rooms in turn, as the warm-up pushed them: churn's roomOf names a room for every i
  const pushing = runPacedPushes(run.logicUrl, (i) => scenario.roomOf(i)!, plan.pushesPerSecond, settings.valBytes, settings.concurrency, deadline, cyclesDone.signal);
  const started = performance.now();
  try {
    for (let cycle = 0; cycle < plan.cycles && Date.now() < deadline; cycle++) {
      say(`churn cycle ${cycle + 1} / ${plan.cycles}: ${plan.perCycle} connections leave and come back new`);
      await cycleOnce(run, cycle, plan, totals, errors);
      totals.cycles++;
    }
  } finally {
    cyclesDone.abort();
  }
  const seconds = (performance.now() - started) / 1000;
  totals.seconds = round(seconds, 2);
  totals.connectsPerSecond = Math.round(totals.connects / seconds);
  totals.disconnectsPerSecond = Math.round(totals.disconnects / seconds);
  const pushed = await pushing;
  if (pushed.failed > 0) errors.push(`churn pushes: ${pushed.failed} failed, first: ${pushed.firstError}`);
  result.pushes = pushed.accepted + pushed.failed;
  result.pushesAccepted = pushed.accepted;
  result.pushesPerSecond = perSecondOfPushes(pushed.accepted, pushed);

  say('every open connection reads what was sent to it (PING, then its PONG)');
  const barriers = await Promise.all(workers.map((w) => w.request({ op: 'barrier', timeoutMs: Math.max(1000, deadline - Date.now()) }, deadline)));
  const unanswered = barriers.reduce((n, b) => n + b.failed, 0);
  if (unanswered > 0) errors.push(`${unanswered} open connections got no PONG to the final PING`);
  totals.memory.afterChurn = await memoryPoint(run, withStats);
  say(`settling for ${settings.settleMs / 1000} s`);
  await sleep(settings.settleMs);
  totals.memory.afterSettle = await memoryPoint(run, withStats);

  const reports = await Promise.all(workers.map((w) => w.request({ op: 'report' }, deadline)));
  let offset = 0;
  const lives: Lifetime[] = [];
  reports.forEach((r, i) => {
    for (const life of r.lifetimes) lives.push({ ...life, slot: offset + life.slot });
    offset += run.held[i];
  });
  const counted = countLives(lives, pushed.log, run.joinedAtUs, scenario.roomOf);
  totals.lifetimes = counted.lives;
  result.expectedDeliveries = counted.expected;
  result.deliveries = counted.delivered;
  result.completeness = counted.expected === 0 ? 1 : counted.delivered / counted.expected;
  const missing = counted.expected - counted.delivered;
  if (missing > 0) errors.push(`${missing} of ${counted.expected} pushes a connection should have received while it was connected did not arrive; first: ${counted.firstMissing}`);
  const latency = new Histogram();
  for (const r of reports) latency.addSparse(r.latency);
  result.latencyMs = quantilesMs(latency);
  result.deliveriesPerSecond = perSecondOfPushes(counted.delivered, pushed);
  checkCountsReturned(totals.memory.afterSettle, offset, plan.rooms, settings.settleMs, errors);
}

/** After the settle, the server counts the population again and every room: a connection or room it kept would show here. */
function checkCountsReturned(after: MemoryPoint, population: number, rooms: number, settleMs: number, errors: string[]): void {
  const settled = `${settleMs / 1000} s after the churn`;
  if (after.connections !== undefined && after.connections !== population) errors.push(`the server counted ${after.connections} connections ${settled}, not the ${population} still open`);
  if (after.rooms !== undefined && after.rooms !== rooms) errors.push(`the server counted ${after.rooms} rooms ${settled}, not the ${rooms} the connections are in`);
}
