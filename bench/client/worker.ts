/**
 * A bench client process: holds its share of the connections, counts the push
 * frames they receive and reports to the orchestrator over IPC. Each worker
 * stays far below the 20,000 open files one process may have.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { ConnectOrder, Connected, FromWorker, ToWorker, WorkerReport } from '../messages.js';
import { ownCpuSeconds } from '../proc-stats.js';
import { BenchConnection, ClientStats } from './connection.js';
import { protocolHandler } from './protocols.js';

const stats = new ClientStats();
const conns: BenchConnection[] = [];
/** The wsId of each connection in `conns`, in the same order. */
const wsIds: string[] = [];
let heartbeat: NodeJS.Timeout | undefined;

function reply(message: FromWorker, then: () => void = () => undefined): void {
  process.send?.(message, then);
}

function connectAll(order: ConnectOrder): Promise<Connected> {
  const protocol = protocolHandler(order.protocol);
  const url = new URL(order.gatewayUrl);
  const host = url.hostname;
  const port = Number(url.port);
  const key = randomBytes(16).toString('base64');
  let next = 0;
  let active = 0;
  let failed = 0;
  let firstError: string | undefined;
  // Heartbeats start with the first connection, not after the last: opening
  // thousands can take longer than the server's 10 s heartbeat timeout.
  if (protocol.heartbeat !== undefined && heartbeat === undefined) {
    const frame = protocol.heartbeat;
    heartbeat = setInterval(() => {
      for (const conn of conns) conn.send(frame);
    }, protocol.heartbeatEveryMs);
  }
  return new Promise<Connected>((resolve) => {
    const finishIfDone = (): void => {
      if (next >= order.count && active === 0) resolve({ op: 'connected', wsIds, failed, firstError });
    };
    const launch = (): void => {
      while (active < order.inFlight && next < order.count) {
        const localAddress = order.sourceAddresses[next % order.sourceAddresses.length];
        next++;
        active++;
        let settled = false;
        const settle = (conn: BenchConnection, outcome: { wsId: string } | { error: string }): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          active--;
          if ('wsId' in outcome) {
            conns.push(conn);
            wsIds.push(outcome.wsId);
          } else {
            failed++;
            firstError ??= `${localAddress} -> ${host}:${port}: ${outcome.error}`;
            conn.close();
          }
          launch();
          finishIfDone();
        };
        const socket = connect({ host, port, localAddress });
        socket.setNoDelay(true);
        const conn = new BenchConnection(socket, protocol, stats, (c, wsId) => settle(c, { wsId }), (c, error) => settle(c, { error }));
        const timer = setTimeout(() => settle(conn, { error: `not ready within ${order.timeoutMs} ms` }), order.timeoutMs);
        socket.once('connect', () => conn.handshake(`${host}:${port}`, key));
      }
    };
    launch();
    finishIfDone();
  });
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
