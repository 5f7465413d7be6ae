/**
 * One target in one scenario: start the server, connect the clients from
 * worker processes, join rooms through the API, push, wait until every frame
 * has arrived (or progress stops), measure, and stop everything.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { runChurn, type ChurnResult } from './churn.js';
import { Histogram, quantilesMs, round } from './histogram.js';
import { megabytes, openFiles, ownCpuSeconds, readMachineBusySeconds, readProcSample, readTreeSample, type ProcSample } from './proc-stats.js';
import { CONNECT_IN_FLIGHT, type Progress, type WorkerReport } from './messages.js';
import { perSecondOfPushes, runPushes, type PushOutcome, type PushPlan } from './pusher.js';
import { joinRooms, serverCounts } from './server-reads.js';
import { startRedis, type RunningRedis } from './redis.js';
import type { Scenario } from './scenarios.js';
import { startTarget, TARGETS, type RunningTarget, type ServerShape, type TargetName } from './targets.js';
import type { BrokerChoice, RoomcastVariant, TargetRun } from './variants.js';
import { connectionsOpened, sourceAddressesFor, type SourceChoice } from './source-addresses.js';
import { tallyFrames } from './tally.js';
import { Worker, WorkerTimeoutError } from './workers.js';

export interface RunSettings {
  host: string;
  sourceAddresses: SourceChoice;
  connsPerWorker: number;
  concurrency: number;
  valBytes: number;
  /** Hard limit for this target in this scenario, ms. */
  timeoutMs: number;
  /** Give up waiting for missing frames after this long without progress, ms. */
  drainTimeoutMs: number;
  /** Pushes sent (and delivered) before measuring starts. */
  warmupPushes: number;
  /** Time for the server to settle before memory is read (idle), ms. */
  settleMs: number;
  serverNodeArgs: string[];
  /** Where roomcast variants on Redis find it. */
  broker: BrokerChoice;
}

export interface TargetResult {
  scenario: string;
  target: TargetName;
  label: string;
  /** roomcast only: workers, engine, history. */
  variant: RoomcastVariant | undefined;
  conns: number;
  connected: number;
  connectSeconds: number;
  pushes: number;
  pushesAccepted: number;
  pushesPerSecond: number;
  expectedDeliveries: number;
  /**
   * Measured push frames received: each seq once per connection, and no more
   * per connection than its room was sent (see extraFrames).
   */
  deliveries: number;
  /** deliveries / expectedDeliveries. */
  completeness: number;
  /** Push frames (warm-up included) whose seq their connection had received already: no delivery. */
  duplicateFrames: number;
  /** Push frames (warm-up included) that arrived after a frame with a higher seq on their connection. */
  outOfOrderFrames: number;
  /** Push frames that carried no seq, so their order could not be checked. */
  unsequencedFrames: number;
  /** Measured push frames beyond what their connection's room was sent (frames of another room): no delivery. */
  extraFrames: number;
  deliveriesPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Of every server process: a cluster's primary and its gateway workers, summed. */
  serverCpuSeconds: number;
  serverRssMB: number;
  /** The sum of each server process's peak. */
  serverPeakRssMB: number;
  /** How many processes the server ran as (1, or a primary and its workers). */
  serverProcesses: number;
  /** Open files of each server process once every client is connected (a cluster: the primary first), each under the limit of 20,000. */
  serverOpenFiles: number[];
  /** idle and hold: (RSS with the connections − RSS before them) / connections. */
  rssPerConnKB: number | undefined;
  /** redis-server's CPU over the same span as the server's, when the bench started it (--broker auto). */
  redisCpuSeconds: number | undefined;
  redisRssMB: number | undefined;
  /** From the first push frame received to the last, over every client. */
  deliverySpreadMs: number;
  clientCpuSeconds: number;
  /** CPU seconds that other processes on the machine used meanwhile: noise in this measurement. */
  otherCpuSeconds: number;
  /** Connections the server closed before the bench did, by the end of the run. */
  closedEarly: number;
  /** Frames no server may send (masked, of a reserved opcode, or with RSV bits set), by the end of the run. */
  protocolErrors: number;
  /** Control frames that are not the JSON object their protocol says (bad JSON, or JSON but not an object), by the end of the run. */
  malformedFrames: number;
  /** Processes this run started (all stopped when it returns). */
  pids: number[];
  /** The resume scenario only. */
  resume: ResumeResult | undefined;
  /** The churn scenario only. */
  churn: ChurnResult | undefined;
  errors: string[];
}

/**
 * How the reconnect storm went. Its replayed frames are the run's deliveries
 * (deliveriesPerSecond: replayed frames per second of the storm).
 */
export interface ResumeResult {
  /** Connections that read their `resumed`; of those, how many said `recovered:true`. */
  resumed: number;
  recovered: number;
  failed: number;
  /** From the first reconnect to the last `resumed` read, over every client. */
  seconds: number;
  resumesPerSecond: number;
  /** Replayed frames that arrived after their connection's `resumed`. */
  framesAfterResumed: number;
  /** Each client's time from its reconnect to its `resumed`. */
  timeMs: { p50: number; p99: number; max: number };
}

export type ProgressSink = (text: string) => void;

const POLL_MS = 100;

/** Splits `total` into `parts` nearly equal counts. */
function shares(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

function workerCount(conns: number, perWorker: number): number {
  return Math.max(Math.min(2, conns), Math.ceil(conns / perWorker));
}

type ProgressSum = Omit<Progress, 'op'>;

async function sumProgress(workers: Worker[], deadline: number): Promise<ProgressSum> {
  const all = await Promise.all(workers.map((w) => w.request({ op: 'progress' }, deadline)));
  const sum = (key: Exclude<keyof ProgressSum, 'firstMalformed'>): number => all.reduce((n, p) => n + p[key], 0);
  return {
    pushFrames: sum('pushFrames'),
    warmupFrames: sum('warmupFrames'),
    duplicates: sum('duplicates'),
    outOfOrder: sum('outOfOrder'),
    unsequenced: sum('unsequenced'),
    afterResumed: sum('afterResumed'),
    closedEarly: sum('closedEarly'),
    protocolErrors: sum('protocolErrors'),
    malformedFrames: sum('malformedFrames'),
    firstMalformed: all.find((p) => p.firstMalformed !== undefined)?.firstMalformed,
    cpuSeconds: sum('cpuSeconds'),
  };
}

/**
 * Connections the server closed (held, warming up or pushing), frames no
 * server may send, malformed control frames, and push frames duplicated, out
 * of order or without a seq: each an error of the run.
 */
async function checkConnections(workers: Worker[], connected: number, deadline: number, result: TargetResult): Promise<void> {
  const { closedEarly, protocolErrors, malformedFrames, firstMalformed, duplicates, outOfOrder, unsequenced, afterResumed } = await sumProgress(workers, deadline);
  result.closedEarly = closedEarly;
  result.protocolErrors = protocolErrors;
  result.malformedFrames = malformedFrames;
  result.duplicateFrames = duplicates;
  result.outOfOrderFrames = outOfOrder;
  result.unsequencedFrames = unsequenced;
  if (closedEarly > 0) result.errors.push(`${closedEarly} of ${connected} connections were closed by the server`);
  if (protocolErrors > 0) result.errors.push(`the server sent ${protocolErrors} frames no server may send (masked, of a reserved opcode, or with RSV bits set)`);
  if (malformedFrames > 0) result.errors.push(`the server sent ${malformedFrames} malformed control frames, first: ${firstMalformed}`);
  if (duplicates > 0) result.errors.push(`${duplicates} push frames were duplicates (a seq their connection had received already)`);
  if (outOfOrder > 0) result.errors.push(`${outOfOrder} push frames arrived out of order (after a higher seq on their connection)`);
  if (unsequenced > 0) result.errors.push(`${unsequenced} push frames carried no seq, so their order could not be checked`);
  if (result.resume !== undefined) {
    result.resume.framesAfterResumed = afterResumed;
    if (afterResumed > 0) result.errors.push(`${afterResumed} replayed frames arrived after their connection's resumed`);
  }
}

/** Starts redis-server when this run needs the bench's own; returns the broker URL for the server (undefined: memory). */
async function brokerFor(run: TargetRun, settings: RunSettings): Promise<{ url: string | undefined; redis: RunningRedis | undefined }> {
  if (run.variant?.redis !== true) return { url: undefined, redis: undefined };
  const broker = settings.broker;
  if (broker.kind === 'url') return { url: broker.url, redis: undefined };
  const redis = await startRedis('127.0.0.1');
  return { url: redis.url, redis };
}

export async function runTarget(run: TargetRun, scenario: Scenario, settings: RunSettings, progress: ProgressSink): Promise<TargetResult> {
  const name = run.target;
  const spec = TARGETS[name];
  const deadline = Date.now() + settings.timeoutMs;
  const errors: string[] = [];
  const result: TargetResult = {
    scenario: scenario.name,
    target: name,
    label: run.label,
    variant: run.variant,
    conns: scenario.conns,
    connected: 0,
    connectSeconds: NaN,
    pushes: scenario.pushes.count,
    pushesAccepted: 0,
    pushesPerSecond: NaN,
    expectedDeliveries: scenario.expectedDeliveries,
    deliveries: 0,
    completeness: NaN,
    duplicateFrames: 0,
    outOfOrderFrames: 0,
    unsequencedFrames: 0,
    extraFrames: 0,
    deliveriesPerSecond: NaN,
    latencyMs: { p50: NaN, p99: NaN, max: NaN },
    serverCpuSeconds: NaN,
    serverRssMB: NaN,
    serverPeakRssMB: NaN,
    serverProcesses: 0,
    serverOpenFiles: [],
    rssPerConnKB: undefined,
    redisCpuSeconds: undefined,
    redisRssMB: undefined,
    deliverySpreadMs: NaN,
    clientCpuSeconds: NaN,
    otherCpuSeconds: NaN,
    closedEarly: 0,
    protocolErrors: 0,
    malformedFrames: 0,
    pids: [],
    resume: undefined,
    churn: undefined,
    errors,
  };
  const say = (what: string): void => progress(`[${scenario.name} ${run.label}] ${what}`);
  let server: RunningTarget | undefined;
  let redis: RunningRedis | undefined;
  const workers: Worker[] = [];
  /** A worker did not answer in time: the workers are killed rather than asked to close. */
  let stuck = false;
  const overtime = setTimeout(() => errors.push(`stopped at the ${settings.timeoutMs / 1000} s limit`), settings.timeoutMs);
  const pids = new Set<number>();
  /** The server's processes (a cluster primary and its workers) summed; every pid seen is checked at the end of the tests. */
  const sampleServer = (): ProcSample & { pids: number[] } => {
    const sample = readTreeSample(server!.pid);
    for (const pid of sample.pids) pids.add(pid);
    result.serverProcesses = sample.pids.length;
    return sample;
  };
  const sampleRedis = (): ProcSample | undefined => (redis === undefined ? undefined : readProcSample(redis.pid));
  try {
    if (run.variant?.redis === true && settings.broker.kind === 'auto') say('starting redis-server');
    const broker = await brokerFor(run, settings);
    redis = broker.redis;
    if (redis !== undefined) pids.add(redis.pid).add(redis.keeperPid);
    say('starting the server');
    const shape: ServerShape | undefined = run.variant && { workers: run.variant.workers, brokerUrl: broker.url, history: run.variant.history };
    server = await startTarget(name, shape, settings.host, settings.serverNodeArgs, Math.min(30_000, settings.timeoutMs));
    for (let i = 0; i < workerCount(scenario.conns, settings.connsPerWorker); i++) workers.push(new Worker());
    for (const w of workers) pids.add(w.pid);
    const pause = settings.settleMs === 0 ? 0 : 300; // --settle 0 (the smoke test) skips every pause
    await sleep(pause); // let the server and workers finish starting before the baseline is read
    const empty = sampleServer();

    const sourceAddresses = sourceAddressesFor(settings.sourceAddresses, connectionsOpened(scenario));
    const sources = sourceAddresses.length === 0 ? '' : `, over ${sourceAddresses.length} source addresses`;
    say(`connecting ${scenario.conns} clients from ${workers.length} processes${sources}`);
    const connectStart = performance.now();
    const counts = shares(scenario.conns, workers.length);
    const connectedAll = await Promise.all(
      workers.map((w, i) =>
        w.request({
          op: 'connect',
          gatewayUrl: server!.gatewayUrl,
          protocol: spec.protocol,
          count: counts[i],
          sourceAddresses,
          inFlight: CONNECT_IN_FLIGHT,
          timeoutMs: Math.max(1000, deadline - Date.now()),
          trackSessions: scenario.name === 'resume',
        }, deadline),
      ),
    );
    result.connectSeconds = round((performance.now() - connectStart) / 1000, 2);
    const wsIds = connectedAll.flatMap((c) => c.wsIds);
    result.connected = wsIds.length;
    result.serverOpenFiles = sampleServer().pids.map(openFiles);
    const failed = connectedAll.reduce((n, c) => n + c.failed, 0);
    if (failed > 0) errors.push(`${failed} connections failed, first: ${connectedAll.find((c) => c.firstError)?.firstError}`);

    say('joining rooms');
    const joinedAtUs = new Map<string, number>();
    const members = wsIds.map((wsId, i) => ({ wsId, room: scenario.roomOf(i) }));
    // only churn counts a connection's pushes from when its join was answered
    const joined = scenario.churn === undefined ? undefined : (wsId: string, atUs: number): void => void joinedAtUs.set(wsId, atUs);
    await joinRooms(server.logicUrl, members, settings.concurrency, deadline, errors, joined);

    let before: ProcSample;
    let after: ProcSample;
    if (scenario.name === 'idle') {
      say(`holding ${wsIds.length} connections for ${settings.settleMs / 1000} s`);
      await sleep(settings.settleMs);
      before = empty; // idle: the CPU it took to accept and hold the connections
      after = sampleServer();
    } else {
      if (scenario.name === 'hold') {
        say(`holding ${wsIds.length} connections for ${settings.settleMs / 1000} s`);
        await sleep(settings.settleMs);
      }
      say('warming up');
      await warmUp(server.logicUrl, scenario, workers, settings, deadline, errors, say);
      await sleep(pause);
      if (scenario.name === 'resume') await dropAndMiss(server.logicUrl, scenario, workers, settings, deadline, result, say);
      const clientCpuBefore = (await sumProgress(workers, deadline)).cpuSeconds;
      const machineBefore = readMachineBusySeconds();
      const ownBefore = ownCpuSeconds();
      const redisBefore = sampleRedis();
      before = sampleServer();
      if (scenario.name === 'resume') await resumeStorm(scenario, workers, deadline, result, say);
      else if (scenario.churn !== undefined) {
        const held = connectedAll.map((c) => c.wsIds.length);
        const serverRss = (): number => sampleServer().rssBytes;
        await runChurn({ logicUrl: server.logicUrl, scenario, workers, held, joinedAtUs, settings, deadline, result, say, serverRss }, name === 'roomcast');
      } else await push(server, scenario, workers, settings, deadline, result, say);
      after = sampleServer();
      const redisAfter = sampleRedis();
      const redisCpu = redisBefore === undefined || redisAfter === undefined ? 0 : redisAfter.cpuSeconds - redisBefore.cpuSeconds;
      if (redisAfter !== undefined) {
        result.redisCpuSeconds = round(redisCpu, 2);
        result.redisRssMB = megabytes(redisAfter.rssBytes);
      }
      const clientCpu = (await sumProgress(workers, deadline)).cpuSeconds - clientCpuBefore;
      const ours = after.cpuSeconds - before.cpuSeconds + clientCpu + redisCpu + ownCpuSeconds() - ownBefore;
      result.clientCpuSeconds = round(clientCpu, 2);
      result.otherCpuSeconds = round(Math.max(0, readMachineBusySeconds() - machineBefore - ours), 2);
    }
    await checkConnections(workers, wsIds.length, deadline, result);
    if (scenario.name === 'idle' || scenario.name === 'hold') {
      result.rssPerConnKB = wsIds.length === 0 ? NaN : round((after.rssBytes - empty.rssBytes) / 1024 / wsIds.length, 2);
    }
    result.serverCpuSeconds = round(after.cpuSeconds - before.cpuSeconds, 2);
    result.serverRssMB = megabytes(after.rssBytes);
    result.serverPeakRssMB = megabytes(after.peakRssBytes);
    const exited = server.exitedEarly();
    if (exited !== undefined) errors.push(exited);
  } catch (err) {
    errors.push((err as Error).message);
    stuck = err instanceof WorkerTimeoutError;
  } finally {
    clearTimeout(overtime);
    say('stopping');
    await Promise.all(workers.map((w) => (stuck ? w.kill() : w.stop())));
    await server?.stop();
    await redis?.stop();
    result.pids.push(...pids);
  }
  return result;
}

interface PushPhase {
  label: string;
  plan: PushPlan;
  warmup: boolean;
  expectedFrames: number;
}

/** Pushes the plan and polls the clients until every frame has arrived, progress stops, or the deadline passes. */
async function pushAndWait(phase: PushPhase, logicUrl: string, workers: Worker[], settings: RunSettings, deadline: number, errors: string[], say: (what: string) => void): Promise<PushOutcome> {
  const expected = phase.expectedFrames;
  let outcome: PushOutcome | undefined;
  let frames = 0;
  const started = performance.now();
  const pushing = runPushes(logicUrl, phase.plan, settings.valBytes, settings.concurrency, deadline, phase.warmup).then((o) => (outcome = o));
  let lastChange = performance.now();
  while (Date.now() < deadline) {
    await sleep(POLL_MS);
    const now = await sumProgress(workers, deadline);
    const seen = phase.warmup ? now.warmupFrames : now.pushFrames;
    if (seen !== frames) lastChange = performance.now();
    frames = seen;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    say(`${phase.label}: ${seconds} s, frames ${frames.toLocaleString('en-US')} / ${expected.toLocaleString('en-US')} (${((100 * frames) / Math.max(1, expected)).toFixed(1)}%)`);
    if (outcome === undefined) continue;
    if (frames >= expected) break;
    if (performance.now() - lastChange > settings.drainTimeoutMs) {
      errors.push(`${phase.label}: no frame arrived for ${settings.drainTimeoutMs / 1000} s, ${expected - frames} missing`);
      break;
    }
  }
  const pushed = await pushing;
  if (pushed.failed > 0) errors.push(`${phase.label}: ${pushed.failed} pushes failed, first: ${pushed.firstError}`);
  return pushed;
}

/** Warm-up pushes (not measured) so every server runs optimized code when measuring starts. */
async function warmUp(logicUrl: string, scenario: Scenario, workers: Worker[], settings: RunSettings, deadline: number, errors: string[], say: (what: string) => void): Promise<void> {
  const plan = scenario.pushes;
  const count = Math.min(settings.warmupPushes, plan.count);
  if (count === 0) return;
  const perPush = scenario.expectedDeliveries / plan.count;
  await pushAndWait({ label: 'warm-up', plan: { count, roomOf: plan.roomOf }, warmup: true, expectedFrames: count * perPush }, logicUrl, workers, settings, deadline, errors, say);
}

/** The measured pushes the server accepted, and how fast. */
function countPushes(pushed: PushOutcome, result: TargetResult): void {
  result.pushesAccepted = pushed.accepted;
  result.pushesPerSecond = perSecondOfPushes(pushed.accepted, pushed);
}

async function push(
  server: RunningTarget,
  scenario: Scenario,
  workers: Worker[],
  settings: RunSettings,
  deadline: number,
  result: TargetResult,
  say: (what: string) => void,
): Promise<void> {
  const expected = scenario.expectedDeliveries;
  const phase: PushPhase = { label: 'pushing', plan: scenario.pushes, warmup: false, expectedFrames: expected };
  const pushed = await pushAndWait(phase, server.logicUrl, workers, settings, deadline, result.errors, say);
  countPushes(pushed, result);

  const reports = await tallyReports(scenario, workers, deadline, result);
  const latency = new Histogram();
  let lastFrameAtUs = 0;
  let firstFrameAtUs = Infinity;
  for (const r of reports) {
    latency.addSparse(r.latency);
    lastFrameAtUs = Math.max(lastFrameAtUs, r.lastFrameAtUs);
    if (r.firstFrameAtUs > 0) firstFrameAtUs = Math.min(firstFrameAtUs, r.firstFrameAtUs);
  }
  const deliverySeconds = (lastFrameAtUs - pushed.startedAtUs) / 1e6;
  result.deliveriesPerSecond = result.deliveries === 0 ? 0 : Math.round(result.deliveries / deliverySeconds);
  result.deliverySpreadMs = result.deliveries === 0 ? NaN : round((lastFrameAtUs - firstFrameAtUs) / 1000, 1);
  result.latencyMs = quantilesMs(latency);
}

/** The workers' reports, with the measured frames of each connection counted against what its room was sent. */
async function tallyReports(scenario: Scenario, workers: Worker[], deadline: number, result: TargetResult): Promise<WorkerReport[]> {
  const reports = await Promise.all(workers.map((w) => w.request({ op: 'report' }, deadline)));
  // connection i of the run is the i-th wsId, in the order the workers are asked, as joinRooms saw them
  const tally = tallyFrames(reports.flatMap((r) => r.framesPerConnection), (i) => scenario.framesFor(i));
  result.deliveries = tally.deliveries;
  result.extraFrames = tally.extra;
  if (tally.extra > 0) result.errors.push(`${tally.extra} push frames reached connections beyond what their room was sent (frames of another room)`);
  const expected = scenario.expectedDeliveries;
  result.completeness = expected === 0 ? 1 : result.deliveries / expected;
  return reports;
}

/**
 * resume, before measuring: every client destroys its socket at once (no
 * close handshake), the server sees them all go, and the missed pushes go out
 * through the HTTP API to nobody.
 */
async function dropAndMiss(logicUrl: string, scenario: Scenario, workers: Worker[], settings: RunSettings, deadline: number, result: TargetResult, say: (what: string) => void): Promise<void> {
  say('dropping every connection at once');
  await Promise.all(workers.map((w) => w.request({ op: 'drop' }, deadline)));
  const until = Math.min(deadline, Date.now() + settings.drainTimeoutMs);
  let open = (await serverCounts(logicUrl, deadline)).connections;
  while (open > 0 && Date.now() < until) {
    await sleep(POLL_MS);
    open = (await serverCounts(logicUrl, deadline)).connections;
  }
  if (open > 0) result.errors.push(`the server still counted ${open} connections ${settings.drainTimeoutMs / 1000} s after every client dropped its socket`);
  say(`pushing ${scenario.pushes.count} messages while every client is away`);
  const pushed = await runPushes(logicUrl, scenario.pushes, settings.valBytes, settings.concurrency, deadline);
  countPushes(pushed, result);
  if (pushed.failed > 0) result.errors.push(`missed pushes: ${pushed.failed} failed, first: ${pushed.firstError}`);
}

/** resume, measured: every client reconnects and resumes at once; each must get what its room missed, in order, then recovered:true. */
async function resumeStorm(scenario: Scenario, workers: Worker[], deadline: number, result: TargetResult, say: (what: string) => void): Promise<void> {
  say(`${scenario.conns} clients reconnect and resume`);
  const outcomes = await Promise.all(workers.map((w) => w.request({ op: 'resume', inFlight: CONNECT_IN_FLIGHT, timeoutMs: Math.max(1000, deadline - Date.now()) }, deadline)));
  const time = new Histogram();
  for (const o of outcomes) time.addSparse(o.latency);
  const sum = (key: 'resumed' | 'recovered' | 'failed'): number => outcomes.reduce((n, o) => n + o[key], 0);
  const startedAtUs = Math.min(...outcomes.map((o) => o.startedAtUs));
  const lastAtUs = Math.max(...outcomes.map((o) => o.lastResumedAtUs));
  const seconds = lastAtUs > startedAtUs ? (lastAtUs - startedAtUs) / 1e6 : NaN;
  const resumed = sum('resumed');
  const resume: ResumeResult = {
    resumed,
    recovered: sum('recovered'),
    failed: sum('failed'),
    seconds: round(seconds, 3),
    resumesPerSecond: Math.round(resumed / seconds),
    framesAfterResumed: 0,
    timeMs: quantilesMs(time),
  };
  result.resume = resume;
  const errors = result.errors;
  if (resume.failed > 0) errors.push(`${resume.failed} of ${scenario.conns} resumes failed, first: ${outcomes.find((o) => o.firstError)?.firstError}`);
  if (resume.resumed > resume.recovered) errors.push(`${resume.resumed - resume.recovered} resumes ended recovered:false`);
  await tallyReports(scenario, workers, deadline, result);
  result.deliveriesPerSecond = Math.round(result.deliveries / seconds);
  const missing = scenario.expectedDeliveries - result.deliveries;
  if (missing > 0) errors.push(`${missing} of ${scenario.expectedDeliveries} missed frames were not replayed`);
}
