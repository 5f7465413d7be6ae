/** What the bench's processes say to each other: the orchestrator and its client workers (over IPC). */

/** How a target's clients speak: roomcast's frames (roomcast and the bare ws peer), or Socket.IO over Engine.IO v4. */
export type ClientProtocol = 'roomcast' | 'socketio';

export interface ConnectOrder {
  op: 'connect';
  /** ws://host:port of the target's gateway; the protocol adds the path. */
  gatewayUrl: string;
  protocol: ClientProtocol;
  count: number;
  /** Source addresses the sockets are spread over, round robin. */
  sourceAddresses: string[];
  /** Handshakes in flight at once. */
  inFlight: number;
  /** Give up on a connection that is not ready (welcomed) within this. */
  timeoutMs: number;
}

export type ToWorker = { id: number } & (ConnectOrder | { op: 'progress' } | { op: 'report' } | { op: 'close' });

export interface Connected {
  op: 'connected';
  wsIds: string[];
  failed: number;
  firstError: string | undefined;
}

export interface Progress {
  op: 'progress';
  pushFrames: number;
  warmupFrames: number;
  /** Sockets that closed before the bench closed them. */
  closedEarly: number;
  /** Frames no server may send: masked, of a reserved opcode, or with RSV bits set. */
  protocolErrors: number;
  cpuSeconds: number;
}

export interface SparseHistogram {
  pairs: number[];
  max: number;
}

export interface WorkerReport {
  op: 'report';
  pushFrames: number;
  /** Wall-clock µs of the first and last push frame received (0 when none). */
  firstFrameAtUs: number;
  lastFrameAtUs: number;
  latency: SparseHistogram;
  cpuSeconds: number;
}

export type FromWorker = { id: number } & (Connected | Progress | WorkerReport | { op: 'closed' } | { op: 'error'; message: string });

/** Wall-clock time in µs, comparable between processes on one machine. */
export function nowUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}
