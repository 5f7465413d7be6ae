/** What the bench's processes say to each other: the orchestrator and its client workers (over IPC). */

/** How a target's clients speak: roomcast's frames (roomcast and the bare ws peer), or Socket.IO over Engine.IO v4. */
export type ClientProtocol = 'roomcast' | 'socketio';

/** Handshakes each worker keeps in flight at once, when it connects, resumes or churns. */
export const CONNECT_IN_FLIGHT = 200;

export interface ConnectOrder {
  op: 'connect';
  /** ws://host:port of the target's gateway; the protocol adds the path. */
  gatewayUrl: string;
  protocol: ClientProtocol;
  count: number;
  /** Source addresses the sockets are spread over, round robin; none: the kernel picks one. */
  sourceAddresses: string[];
  /** Handshakes in flight at once. */
  inFlight: number;
  /** Give up on a connection that is not ready (welcomed) within this. */
  timeoutMs: number;
  /** roomcast only: remember each connection's resume token and stream positions, so it can resume later. */
  trackSessions?: boolean;
}

/** Every connection reconnects (from the same source address) and resumes its session at once. */
export interface ResumeOrder {
  op: 'resume';
  /** Handshakes in flight at once. */
  inFlight: number;
  /** Give up on a resume whose `resumed` has not arrived within this. */
  timeoutMs: number;
}

/**
 * churn: connections leave, with a clean close or by destroying the socket,
 * and new connections take their slots.
 */
export interface ChurnOrder {
  op: 'churn';
  /** The slots (indexes into the worker's connections) that leave, and how. */
  leaves: { slot: number; clean: boolean }[];
  /** Handshakes in flight at once. */
  inFlight: number;
  /** Give up on a leave or a new connection that takes longer. */
  timeoutMs: number;
}

/** How a worker's churn cycle went: the new connections' wsIds, in the order of the leaves (null: that slot's new connection failed). */
export interface Churned {
  op: 'churned';
  wsIds: (string | null)[];
  /** Leaves that closed cleanly (close handshake) and by destroying the socket. */
  cleanCloses: number;
  destroyed: number;
  failed: number;
  firstError: string | undefined;
}

/**
 * One connection's life in the churn scenario: its wsId, its slot, when it
 * began to leave (monotonic µs; for a connection still open at the end, when
 * the final barrier began) and every seq it received.
 */
export interface Lifetime {
  wsId: string;
  slot: number;
  endUs: number;
  seqs: number[];
}

export type ToWorker = { id: number } & (ConnectOrder | ResumeOrder | ChurnOrder | { op: 'barrier'; timeoutMs: number } | { op: 'drop' } | { op: 'progress' } | { op: 'report' } | { op: 'close' });

export interface Connected {
  op: 'connected';
  wsIds: string[];
  failed: number;
  firstError: string | undefined;
}

/** What a worker's connections made of the push frames they read (see client/connection.ts). */
export interface FrameCounts {
  /** Measured push frames, each seq once per connection. */
  pushFrames: number;
  warmupFrames: number;
  duplicates: number;
  outOfOrder: number;
  unsequenced: number;
}

export interface Progress extends FrameCounts {
  op: 'progress';
  /** Measured push frames that arrived after their connection's `resumed`. */
  afterResumed: number;
  /** Sockets that closed before the bench closed them. */
  closedEarly: number;
  /** Frames no server may send: masked, of a reserved opcode, or with RSV bits set. */
  protocolErrors: number;
  /** Control frames that are not the JSON object their protocol says (bad JSON, or JSON but not an object); the first one's problem. */
  malformedFrames: number;
  firstMalformed: string | undefined;
  cpuSeconds: number;
}

export interface SparseHistogram {
  pairs: number[];
  max: number;
}

export interface WorkerReport {
  op: 'report';
  pushFrames: number;
  /** Measured push frames of each connection, in the order of the wsIds it connected. */
  framesPerConnection: number[];
  /** Wall-clock µs of the first and last push frame received (0 when none). */
  firstFrameAtUs: number;
  lastFrameAtUs: number;
  latency: SparseHistogram;
  cpuSeconds: number;
  /** churn only: every connection's life, those that left and those still open. */
  lifetimes: Lifetime[];
}

/** How a worker's resumes went. */
export interface ResumeOutcome {
  op: 'resumed';
  /** Connections that read their `resumed`, and how many of those said `recovered:true`. */
  resumed: number;
  recovered: number;
  failed: number;
  firstError: string | undefined;
  /** Monotonic µs (see nowUs) when the first reconnect started, and when the last `resumed` was read (0: none). */
  startedAtUs: number;
  lastResumedAtUs: number;
  /** Each connection's time from its reconnect to its `resumed`, µs. */
  latency: SparseHistogram;
}

export type FromWorker = { id: number } & (
  | Connected
  | ResumeOutcome
  | Churned
  | Progress
  | WorkerReport
  | { op: 'barriered'; failed: number }
  | { op: 'dropped' }
  | { op: 'closed' }
  | { op: 'error'; message: string }
);

/**
 * CLOCK_MONOTONIC at this process's `performance.now()` 0, in µs. The
 * monotonic clock is one for every process on the machine, where
 * `performance.timeOrigin` is the wall clock read at each process's start: a
 * wall clock stepped or slewed between the bench's start and a client
 * worker's would shift every latency by as much.
 *
 * Each clock is read once before: the first `performance.now()` of a process
 * loads code, and read between the two it put the origin 0.5 ms (more on a
 * busy machine) early, differently in every process, enough for a push
 * answered just before a churn connection left to count as one it missed.
 * Of a few pairs, the one read closest together is taken (each pair can only
 * put the origin early).
 */
function monotonicOriginUs(): number {
  performance.now();
  process.hrtime.bigint();
  let best = -Infinity;
  for (let i = 0; i < 5; i++) best = Math.max(best, Number(process.hrtime.bigint()) / 1000 - performance.now() * 1000);
  return best;
}
const MONOTONIC_ORIGIN_US = monotonicOriginUs();

/** Monotonic time in µs, comparable between processes on one machine; allocates nothing. */
export function nowUs(): number {
  return Math.round(MONOTONIC_ORIGIN_US + performance.now() * 1000);
}
