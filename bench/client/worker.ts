/**
 * A bench client process: holds its share of the connections, counts the push
 * frames they receive and reports to the orchestrator over IPC. Each worker
 * stays far below the 20,000 open files one process may have.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { Histogram } from '../histogram.js';
import { nowUs, type ChurnOrder, type Churned, type ConnectOrder, type Lifetime, type Connected, type FromWorker, type ResumeOrder, type ResumeOutcome, type ToWorker, type WorkerReport } from '../messages.js';
import { ownCpuSeconds } from '../proc-stats.js';
import { BenchConnection, ClientStats } from './connection.js';
import { protocolHandler, type ProtocolHandler } from './protocols.js';
import { RoomcastSession } from './session.js';

const stats = new ClientStats();
const conns: BenchConnection[] = [];
/** The wsId of each connection in `conns`, in the same order. */
const wsIds: string[] = [];
let heartbeat: NodeJS.Timeout | undefined;
/** Where the connections went, and how they speak, for their reconnects. */
let target: { host: string; port: number; address: string; sourceAddresses: string[]; protocol: ProtocolHandler } | undefined;
/** churn: the lives of the connections that left, and when the final barrier began for each slot still open whose barrier was answered (a failed one is an error of its own). */
const ended: Lifetime[] = [];
const barrierAt = new Map<number, number>();

function reply(message: FromWorker, then: () => void = () => undefined): void {
  process.send?.(message, then);
}

/** The address socket i binds to, round robin; undefined (the kernel picks one, see bench/source-addresses.ts) when there are none. */
function sourceAddressOf(i: number): string | undefined {
  const { sourceAddresses } = target!;
  return sourceAddresses.length === 0 ? undefined : sourceAddresses[i % sourceAddresses.length];
}

/**
 * Opens `count` sockets, at most `inFlight` handshaking at once. `start(i,
 * socket, settle)` takes socket i over and returns what it made of it; its
 * outcome is taken only when `settle()` answers true, the first time it is
 * called for socket i. After `timeoutMs` with no outcome, `timedOut(i, made)`.
 */
function openSockets<T>(
  count: number,
  inFlight: number,
  timeoutMs: number,
  start: (i: number, socket: Socket, settle: () => boolean) => T,
  timedOut: (i: number, made: T) => void,
): Promise<void> {
  const { host, port } = target!;
  let next = 0;
  let active = 0;
  return new Promise<void>((resolve) => {
    const finishIfDone = (): void => {
      if (next >= count && active === 0) resolve();
    };
    const launch = (): void => {
      while (active < inFlight && next < count) {
        const i = next++;
        active++;
        let settled = false;
        const settle = (): boolean => {
          if (settled) return false;
          settled = true;
          clearTimeout(timer);
          active--;
          launch();
          finishIfDone();
          return true;
        };
        const socket = connect({ host, port, localAddress: sourceAddressOf(i) });
        socket.setNoDelay(true);
        const made = start(i, socket, settle);
        const timer = setTimeout(() => {
          if (settle()) timedOut(i, made);
        }, timeoutMs);
      }
    };
    launch();
    finishIfDone();
  });
}

interface Opened {
  failed: number;
  firstError: string | undefined;
}

/**
 * Opens `count` new connections to the target, at most `inFlight`
 * handshaking at once; `place(i, conn, wsId)` takes connection i once it is
 * welcomed. A connection not welcomed within `timeoutMs` fails.
 */
async function openConnections(count: number, inFlight: number, timeoutMs: number, trackSessions: boolean, place: (i: number, conn: BenchConnection, wsId: string) => void): Promise<Opened> {
  const { address, protocol } = target!;
  const key = randomBytes(16).toString('base64');
  const opened: Opened = { failed: 0, firstError: undefined };
  const failOne = (i: number, conn: BenchConnection, error: string): void => {
    opened.failed++;
    const source = sourceAddressOf(i);
    opened.firstError ??= `${source === undefined ? '' : `${source} `}-> ${address}: ${error}`;
    conn.close();
  };
  await openSockets(
    count,
    inFlight,
    timeoutMs,
    (i, socket, settle) => {
      const session = trackSessions ? new RoomcastSession() : undefined;
      const events = {
        ready(conn: BenchConnection, wsId: string) {
          if (settle()) place(i, conn, wsId);
        },
        fail(conn: BenchConnection, error: string) {
          if (settle()) failOne(i, conn, error);
        },
      };
      const conn = new BenchConnection(socket, protocol, stats, events, session);
      socket.once('connect', () => conn.handshake(address, key));
      return conn;
    },
    (i, conn) => failOne(i, conn, `not ready within ${timeoutMs} ms`),
  );
  return opened;
}

async function connectAll(order: ConnectOrder): Promise<Connected> {
  const protocol = protocolHandler(order.protocol);
  const url = new URL(order.gatewayUrl);
  target = { host: url.hostname, port: Number(url.port), address: `${url.hostname}:${url.port}`, sourceAddresses: order.sourceAddresses, protocol };
  // Heartbeats start with the first connection, not after the last: opening
  // thousands can take longer than the server's 10 s heartbeat timeout.
  if (protocol.heartbeat !== undefined && heartbeat === undefined) {
    const frame = protocol.heartbeat;
    heartbeat = setInterval(() => {
      for (const conn of conns) conn.heartbeat(frame);
    }, protocol.heartbeatEveryMs);
  }
  const opened = await openConnections(order.count, order.inFlight, order.timeoutMs, order.trackSessions === true, (_i, conn, wsId) => {
    conns.push(conn);
    wsIds.push(wsId);
  });
  return { op: 'connected', wsIds, ...opened };
}

/** Resolves when `start(done)` calls done, or after `timeoutMs` (to false). */
function settleWithin(timeoutMs: number, start: (done: (ok: boolean) => void) => void): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    start((ok) => {
      clearTimeout(timer);
      resolve(ok);
    });
  });
}

function lifetimeOf(slot: number, endUs: number): Lifetime {
  return { wsId: wsIds[slot], slot, endUs, seqs: conns[slot].receivedSeqs() };
}

/**
 * A churn cycle: each connection of the order first reads everything the
 * server queued for it before it began to leave (a barrier: PING, then its
 * PONG), then leaves (clean close or socket destroyed); then new
 * connections take the slots.
 */
async function churn(order: ChurnOrder): Promise<Churned> {
  const out: Churned = { op: 'churned', wsIds: order.leaves.map(() => null), cleanCloses: 0, destroyed: 0, failed: 0, firstError: undefined };
  const failOne = (error: string): void => {
    out.failed++;
    out.firstError ??= error;
  };
  await Promise.all(
    order.leaves.map(async ({ slot, clean }) => {
      const conn = conns[slot];
      // a slot whose new connection failed in an earlier cycle holds a connection that left then: only its new one is tried again
      if (conn.closing) return;
      const endUs = nowUs();
      // a life whose barrier failed is that error only: what it read is not known to be all it was sent
      if (await settleWithin(order.timeoutMs, (done) => conn.barrier(done))) ended.push(lifetimeOf(slot, endUs));
      else failOne(`${wsIds[slot]}: no PONG to the PING before leaving (the socket closed, or ${order.timeoutMs} ms passed)`);
      await settleWithin(order.timeoutMs, (done) => conn.leave(clean, () => done(true)));
      if (clean) out.cleanCloses++;
      else out.destroyed++;
    }),
  );
  const opened = await openConnections(order.leaves.length, order.inFlight, order.timeoutMs, false, (i, conn, wsId) => {
    const { slot } = order.leaves[i];
    conns[slot] = conn;
    wsIds[slot] = wsId;
    out.wsIds[i] = wsId;
  });
  out.failed += opened.failed;
  out.firstError ??= opened.firstError;
  return out;
}

/** churn's end: every open connection reads what the server queued for it (a barrier), and that is its end. */
async function barrierAll(timeoutMs: number): Promise<number> {
  let failed = 0;
  await Promise.all(
    conns.map(async (conn, slot) => {
      if (conn.closing) return; // it left, and its slot's new connection failed
      const endUs = nowUs();
      if (await settleWithin(timeoutMs, (done) => conn.barrier(done))) barrierAt.set(slot, endUs);
      else failed++;
    }),
  );
  return failed;
}

/** Destroys every connection's socket at once, with no close handshake: a network blip or a gateway restart, as clients see it. */
function dropAll(): void {
  for (const conn of conns) conn.close();
}

async function resumeAll(order: ResumeOrder): Promise<ResumeOutcome> {
  const { address } = target!;
  const key = randomBytes(16).toString('base64');
  const latency = new Histogram();
  const outcome: ResumeOutcome = { op: 'resumed', resumed: 0, recovered: 0, failed: 0, firstError: undefined, startedAtUs: nowUs(), lastResumedAtUs: 0, latency: latency.toSparse() };
  const failOne = (i: number, error: string): void => {
    outcome.failed++;
    outcome.firstError ??= `${wsIds[i]}: ${error}`;
    conns[i].close();
  };
  await openSockets(
    conns.length,
    order.inFlight,
    order.timeoutMs,
    (i, socket, settle) => {
      const startedAtUs = nowUs();
      conns[i].resume(socket, {
        resumed(_conn, recovered) {
          if (!settle()) return;
          const at = nowUs();
          outcome.resumed++;
          if (recovered) outcome.recovered++;
          outcome.lastResumedAtUs = Math.max(outcome.lastResumedAtUs, at);
          latency.record(at - startedAtUs);
        },
        fail(_conn, error) {
          if (settle()) failOne(i, error);
        },
      });
      socket.once('connect', () => conns[i].handshake(address, key));
    },
    (i) => failOne(i, `no resumed within ${order.timeoutMs} ms`),
  );
  outcome.latency = latency.toSparse();
  return outcome;
}

function report(): WorkerReport {
  return {
    op: 'report',
    pushFrames: stats.pushFrames,
    framesPerConnection: conns.map((conn) => conn.frames),
    firstFrameAtUs: stats.firstFrameAtUs,
    lastFrameAtUs: stats.lastFrameAtUs,
    latency: stats.latency.toSparse(),
    cpuSeconds: ownCpuSeconds(),
    lifetimes: [...ended, ...[...barrierAt].map(([slot, endUs]) => lifetimeOf(slot, endUs))],
  };
}

function closeAll(id: number): void {
  if (heartbeat !== undefined) clearInterval(heartbeat);
  for (const conn of conns) conn.close();
  reply({ id, op: 'closed' }, () => process.exit(0));
}

type Answer = FromWorker extends infer T ? (T extends { id: number } ? Omit<T, 'id'> : never) : never;

/** Replies to request `id` with what `work` resolves to, or with its error. */
function answer(id: number, work: Promise<Answer>): void {
  work.then(
    (done) => reply({ id, ...done } as FromWorker),
    (err: unknown) => reply({ id, op: 'error', message: String(err) }),
  );
}

// exit-with-parent.ts unrefs the channel; a worker lives to answer on it.
process.channel?.ref();
process.on('message', (message: ToWorker) => {
  const { id } = message;
  switch (message.op) {
    case 'connect':
      answer(id, connectAll(message));
      return;
    case 'drop':
      dropAll();
      reply({ id, op: 'dropped' });
      return;
    case 'resume':
      answer(id, resumeAll(message));
      return;
    case 'churn':
      answer(id, churn(message));
      return;
    case 'barrier':
      answer(id, barrierAll(message.timeoutMs).then((failed) => ({ op: 'barriered' as const, failed })));
      return;
    case 'progress':
      reply({
        id,
        op: 'progress',
        pushFrames: stats.pushFrames,
        warmupFrames: stats.warmupFrames,
        duplicates: stats.duplicates,
        outOfOrder: stats.outOfOrder,
        unsequenced: stats.unsequenced,
        closedEarly: stats.closedEarly,
        protocolErrors: stats.protocolErrors,
        malformedFrames: stats.malformedFrames,
        firstMalformed: stats.firstMalformed,
        afterResumed: stats.afterResumed,
        cpuSeconds: ownCpuSeconds(),
      });
      return;
    case 'report':
      reply({ id, ...report() });
      return;
    case 'close':
      closeAll(id);
      return;
  }
});
