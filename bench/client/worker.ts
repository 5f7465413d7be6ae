/**
 * A bench client process: holds its share of the connections, counts the push
 * frames they receive and reports to the orchestrator over IPC. Each worker
 * stays far below the 20,000 open files one process may have.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { Histogram } from '../histogram.js';
import { nowUs, type ConnectOrder, type Connected, type FromWorker, type ResumeOrder, type ResumeOutcome, type ToWorker, type WorkerReport } from '../messages.js';
import { ownCpuSeconds } from '../proc-stats.js';
import { BenchConnection, ClientStats } from './connection.js';
import { protocolHandler } from './protocols.js';
import { RoomcastSession } from './session.js';

const stats = new ClientStats();
const conns: BenchConnection[] = [];
/** The wsId of each connection in `conns`, in the same order. */
const wsIds: string[] = [];
let heartbeat: NodeJS.Timeout | undefined;
/** Where the connections went, for their reconnects. */
let target: { host: string; port: number; sourceAddresses: string[] } | undefined;

function reply(message: FromWorker, then: () => void = () => undefined): void {
  process.send?.(message, then);
}

/**
 * Opens `count` sockets, at most `inFlight` handshaking at once; `start(i,
 * socket, done)` takes socket i over and calls `done` once, when it is ready
 * or has failed (or after `timeoutMs`, with `timedOut` set).
 */
function openSockets(
  count: number,
  inFlight: number,
  timeoutMs: number,
  start: (i: number, socket: Socket, done: () => void) => void,
  timedOut: (i: number) => void,
): Promise<void> {
  const { host, port, sourceAddresses } = target!;
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
        const done = (): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          active--;
          launch();
          finishIfDone();
        };
        const timer = setTimeout(() => {
          timedOut(i);
          done();
        }, timeoutMs);
        const socket = connect({ host, port, localAddress: sourceAddresses[i % sourceAddresses.length] });
        socket.setNoDelay(true);
        start(i, socket, done);
      }
    };
    launch();
    finishIfDone();
  });
}

async function connectAll(order: ConnectOrder): Promise<Connected> {
  const protocol = protocolHandler(order.protocol);
  const url = new URL(order.gatewayUrl);
  target = { host: url.hostname, port: Number(url.port), sourceAddresses: order.sourceAddresses };
  const address = `${url.hostname}:${url.port}`;
  const key = randomBytes(16).toString('base64');
  let failed = 0;
  let firstError: string | undefined;
  // Heartbeats start with the first connection, not after the last: opening
  // thousands can take longer than the server's 10 s heartbeat timeout.
  if (protocol.heartbeat !== undefined && heartbeat === undefined) {
    const frame = protocol.heartbeat;
    heartbeat = setInterval(() => {
      for (const conn of conns) conn.heartbeat(frame);
    }, protocol.heartbeatEveryMs);
  }
  const pending = new Map<number, BenchConnection>();
  const failOne = (i: number, conn: BenchConnection | undefined, error: string): void => {
    failed++;
    firstError ??= `${order.sourceAddresses[i % order.sourceAddresses.length]} -> ${address}: ${error}`;
    conn?.close();
  };
  await openSockets(
    order.count,
    order.inFlight,
    order.timeoutMs,
    (i, socket, done) => {
      const settle = (conn: BenchConnection, wsId: string | undefined, error: string): void => {
        if (!pending.delete(i)) return;
        if (wsId === undefined) failOne(i, conn, error);
        else {
          conns.push(conn);
          wsIds.push(wsId);
        }
        done();
      };
      const session = order.trackSessions === true ? new RoomcastSession() : undefined;
      const conn = new BenchConnection(socket, protocol, stats, { ready: (c, wsId) => settle(c, wsId, ''), fail: (c, error) => settle(c, undefined, error) }, session);
      pending.set(i, conn);
      socket.once('connect', () => conn.handshake(address, key));
    },
    (i) => {
      const conn = pending.get(i);
      if (pending.delete(i)) failOne(i, conn, `not ready within ${order.timeoutMs} ms`);
    },
  );
  return { op: 'connected', wsIds, failed, firstError };
}

/** Destroys every connection's socket at once, with no close handshake: a network blip or a gateway restart, as clients see it. */
function dropAll(): void {
  for (const conn of conns) conn.close();
}

async function resumeAll(order: ResumeOrder): Promise<ResumeOutcome> {
  const { host, port } = target!;
  const key = randomBytes(16).toString('base64');
  const latency = new Histogram();
  const outcome: ResumeOutcome = { op: 'resumed', resumed: 0, recovered: 0, failed: 0, firstError: undefined, startedAtUs: nowUs(), lastResumedAtUs: 0, latency: latency.toSparse() };
  const waiting = new Set<number>();
  const fail = (i: number, error: string): void => {
    if (!waiting.delete(i)) return;
    outcome.failed++;
    outcome.firstError ??= `${wsIds[i]}: ${error}`;
    conns[i].close();
  };
  await openSockets(
    conns.length,
    order.inFlight,
    order.timeoutMs,
    (i, socket, done) => {
      const startedAtUs = nowUs();
      waiting.add(i);
      conns[i].resume(socket, {
        resumed(_conn, recovered) {
          if (!waiting.delete(i)) return;
          const at = nowUs();
          outcome.resumed++;
          if (recovered) outcome.recovered++;
          outcome.lastResumedAtUs = Math.max(outcome.lastResumedAtUs, at);
          latency.record(at - startedAtUs);
          done();
        },
        fail(_conn, error) {
          fail(i, error);
          done();
        },
      });
      socket.once('connect', () => conns[i].handshake(`${host}:${port}`, key));
    },
    (i) => fail(i, `no resumed within ${order.timeoutMs} ms`),
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
  };
}

function closeAll(id: number): void {
  if (heartbeat !== undefined) clearInterval(heartbeat);
  for (const conn of conns) conn.close();
  reply({ id, op: 'closed' }, () => process.exit(0));
}

// exit-with-parent.ts unrefs the channel; a worker lives to answer on it.
process.channel?.ref();
process.on('message', (message: ToWorker) => {
  const { id } = message;
  switch (message.op) {
    case 'connect':
      connectAll(message).then(
        (connected) => reply({ id, ...connected }),
        (err: unknown) => reply({ id, op: 'error', message: String(err) }),
      );
      return;
    case 'drop':
      dropAll();
      reply({ id, op: 'dropped' });
      return;
    case 'resume':
      resumeAll(message).then(
        (outcome) => reply({ id, ...outcome }),
        (err: unknown) => reply({ id, op: 'error', message: String(err) }),
      );
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
