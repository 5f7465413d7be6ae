/**
 * Sends the pushes of a scenario through the target's HTTP API from a fixed
 * number of concurrent keep-alive requests. Each `val` carries its send time
 * (`~<µs>~`, see client/connection.ts), padded to the requested size.
 */
import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { nowUs } from './messages.js';

export interface PushPlan {
  count: number;
  /** The room push `i` goes to, or undefined for a push to all. */
  roomOf(i: number): string | undefined;
}

export interface PushOutcome {
  accepted: number;
  failed: number;
  firstError: string | undefined;
  startedAtUs: number;
  /** When the last answer arrived. */
  finishedAtUs: number;
}

/** `count` per second of the pushes' span, from the first sent to the last answered. */
export function perSecondOfPushes(count: number, pushed: PushOutcome): number {
  return Math.round(count / ((pushed.finishedAtUs - pushed.startedAtUs) / 1e6));
}

/** The smallest `val` that holds the marker and a 16-digit µs time. */
export const MIN_VAL_BYTES = 24;

export function stampedVal(sentAtUs: number, bytes: number): string {
  const stamp = `~${sentAtUs}~`;
  return stamp + 'x'.repeat(Math.max(0, bytes - stamp.length));
}

/** A warm-up push's val: `~w~`, padded; clients count it apart and take no latency from it. */
export function warmupVal(bytes: number): string {
  return '~w~' + 'x'.repeat(Math.max(0, bytes - 3));
}

export interface PostResult {
  status: number;
  body: string;
}

export function post(agent: Agent, url: URL, body: string, timeoutMs: number): Promise<PostResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: timeoutMs },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** A request's time limit: 30 s, or what is left until `deadline` (ms, Date.now()), so a hung server cannot keep a run past its --timeout. */
export function requestTimeoutMs(deadline: number): number {
  return Math.max(1, Math.min(30_000, deadline - Date.now()));
}

/** Runs `calls` from `concurrency` loops over one keep-alive agent; stops early at `deadline` (ms, Date.now()). */
export async function runConcurrently(count: number, concurrency: number, deadline: number, call: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < count && Date.now() < deadline) await call(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, loop));
}

/** A push of a paced run: its room, its seq (from the answer), and when it was sent and answered (monotonic µs). */
export interface LoggedPush {
  room: string;
  seq: number;
  sentUs: number;
  answeredUs: number;
}

/**
 * Pushes to `roomOf(i)` at `perSecond`, from `concurrency` keep-alive
 * requests, until `stop` aborts or `deadline`; every accepted push is logged
 * with the seq its answer gave. A request waiting for its turn ends at once
 * then: at a low rate it may be due many seconds later.
 */
export async function runPacedPushes(
  logicUrl: string,
  roomOf: (i: number) => string,
  perSecond: number,
  valBytes: number,
  concurrency: number,
  deadline: number,
  stop: AbortSignal,
): Promise<PushOutcome & { log: LoggedPush[] }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const url = new URL('/push/room', logicUrl);
  const outcome: PushOutcome & { log: LoggedPush[] } = { accepted: 0, failed: 0, firstError: undefined, startedAtUs: nowUs(), finishedAtUs: 0, log: [] };
  const startedAt = performance.now();
  const ended = AbortSignal.any([stop, AbortSignal.timeout(Math.max(0, deadline - Date.now()))]);
  let next = 0;
  const loop = async (): Promise<void> => {
    while (!ended.aborted) {
      const i = next++;
      const wait = startedAt + (i * 1000) / perSecond - performance.now();
      if (wait > 0 && !(await sleep(wait, true, { signal: ended }).catch(() => false))) return;
      const room = roomOf(i);
      const sentUs = nowUs();
      try {
        const res = await post(agent, url, JSON.stringify({ val: stampedVal(sentUs, valBytes), tag: 3, id: room }), requestTimeoutMs(deadline));
        const seq = res.status === 200 ? seqIn(res.body) : undefined;
        if (seq === undefined) throw new Error(`answered ${res.status} ${res.body.slice(0, 200)}`);
        outcome.accepted++;
        outcome.log.push({ room, seq, sentUs, answeredUs: nowUs() });
      } catch (err) {
        outcome.failed++;
        outcome.firstError ??= `push ${i}: ${(err as Error).message}`;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, loop));
  } finally {
    outcome.finishedAtUs = nowUs();
    agent.destroy();
  }
  return outcome;
}

/** `data.seq` of a push's answer; undefined when the body is not JSON or has none. */
function seqIn(body: string): number | undefined {
  try {
    const seq = (JSON.parse(body) as { data?: { seq?: unknown } }).data?.seq;
    return typeof seq === 'number' ? seq : undefined;
  } catch {
    return undefined;
  }
}

export async function runPushes(logicUrl: string, plan: PushPlan, valBytes: number, concurrency: number, deadline: number, warmup = false): Promise<PushOutcome> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const toRoom = new URL('/push/room', logicUrl);
  const toAll = new URL('/push/all', logicUrl);
  const outcome: PushOutcome = { accepted: 0, failed: 0, firstError: undefined, startedAtUs: nowUs(), finishedAtUs: 0 };
  try {
    await runConcurrently(plan.count, concurrency, deadline, async (i) => {
      const room = plan.roomOf(i);
      const val = warmup ? warmupVal(valBytes) : stampedVal(nowUs(), valBytes);
      const body = JSON.stringify(room === undefined ? { val, tag: 3 } : { val, tag: 3, id: room });
      try {
        const res = await post(agent, room === undefined ? toAll : toRoom, body, requestTimeoutMs(deadline));
        if (res.status === 200) outcome.accepted++;
        else throw new Error(`answered ${res.status} ${res.body.slice(0, 200)}`);
      } catch (err) {
        outcome.failed++;
        outcome.firstError ??= `push ${i}: ${(err as Error).message}`;
      }
    });
  } finally {
    outcome.finishedAtUs = nowUs();
    agent.destroy();
  }
  return outcome;
}
