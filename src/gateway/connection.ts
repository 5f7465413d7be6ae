/**
 * One client connection: its WebSocket (for the handshake, parsing inbound
 * frames and the close handshake), the raw socket its outbound frames are
 * written to, its rooms, and a byte-capped outbound queue.
 *
 * Outbound frames are pre-encoded WebSocket frames (see protocol/ws-frame.ts)
 * shared by every recipient; queueing one stores a reference, never a copy.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { CloseCode, closeReason, type CloseCodeName } from '../protocol/close-codes.js';
import type { StreamPosition } from '../broker/broker.js';
import type { ClientIdentity } from './auth.js';
import type { MalformedFrames } from './malformed.js';
import type { Flushable, Outbox } from './outbox.js';
import { takeToken, type RateBucket } from './rate-bucket.js';

export interface ConnectionLimits {
  /** Bytes queued here plus bytes buffered in the socket above which the client is closed with 4000 (one frame alone never is). */
  sendBufferLimit: number;
  /** How long a closing connection may take to finish the close handshake before it is destroyed. */
  closeGraceMs: number;
}

/**
 * Frames held while the connection is being resumed (or has not said whether
 * it resumes); pushes carry their stream and seq so replayed ones can be
 * skipped. Parallel arrays: holding a frame allocates no object per recipient.
 */
class HeldFrames {
  readonly frames: Buffer[] = [];
  readonly streams: (string | undefined)[] = [];
  readonly seqs: number[] = [];

  push(frame: Buffer, stream: string | undefined, seq: number): void {
    this.frames.push(frame);
    this.streams.push(stream);
    this.seqs.push(seq);
  }
}

/** A close reason is at most 123 bytes of UTF-8; longer ones are cut at a character boundary. */
export function fitReason(reason: string): string {
  let fitted = reason;
  while (Buffer.byteLength(fitted) > 123) fitted = fitted.slice(0, -1);
  return fitted;
}

/** What every connection of one gateway shares: one object, so each connection holds one reference. */
export interface ConnectionShared {
  outbox: Outbox;
  limits: ConnectionLimits;
  onSlowConsumer(conn: Connection): void;
}

const NO_ROOMS: ReadonlyMap<string, StreamPosition> = new Map();
/** Fills emptied queue slots, so they hold no frame and keep one element kind. */
const EMPTY_FRAME = Buffer.alloc(0);
/** A queue array longer than this (after a burst) is dropped after its write rather than kept for the next. */
const MAX_KEPT_SLOTS = 64;
const NOTHING_REPLAYED: ReadonlyMap<string, number> = new Map();

export class Connection implements Flushable, RateBucket {
  readonly connectedAt = Date.now();
  lastSeen = this.connectedAt;
  queued = false;
  /** Set once the close handshake has started; no frame is queued after it. */
  closeCode: number | undefined;
  /** Made on the first malformed frame: most connections never send one. */
  badFrames: MalformedFrames | undefined;
  /** A resume is only accepted as the client's first frame after the welcome (auth and refresh frames aside). */
  firstFrameSeen = false;
  /** Where `*` stood in the welcome: every push to all after it reaches this connection. Kept until the first frame is handled. */
  welcomeAll: StreamPosition | undefined;
  /** node.historyReads' clock when this connection last entered a stream (`*` as it opened, or a room): a resume's history reads must be issued after it. */
  enteredAt = 0;
  /** Who the client is, once it authenticated (a JWT). */
  identity: ClientIdentity | undefined;
  /** The last auth or refresh frame still being handled: the next one waits for it, so tokens apply in the order they were sent. */
  tokenOps: Promise<void> | undefined;
  /** Frame-rate budget (--max-frames-per-second): full at the first frame. */
  rateTokens = Infinity;
  rateRefilledAt = 0;
  /** The client's address as its trusted proxy named it (--trust-proxy); unset without one. */
  forwardedFor: string | undefined;

  /**
   * Each room with where it stood when the connection joined it (a takeover
   * replays a room its client never heard of from there). Created on the first
   * join: most connections of a large node are in no room or one.
   */
  private roomMap: Map<string, StreamPosition> | undefined;
  /** The first frame queued for the next write: most writes carry one frame, and an idle connection needs no array. */
  private firstPending: Buffer | undefined;
  /**
   * Once two or more frames wait, all of them: the first `pendingCount` slots.
   * The array keeps its capacity between writes, so queueing under load allocates nothing.
   */
  private pending: Buffer[] | undefined;
  private pendingCount = 0;
  private pendingBytes = 0;
  /** What the socket still buffered right after the last write (see enqueue). */
  private socketBytesAtWrite = 0;
  private heldBytes = 0;
  private closeTimer: NodeJS.Timeout | undefined;
  /** Set while a resume replays history (or a new connection has not said whether it resumes): live frames wait here. */
  private held: HeldFrames | undefined;
  /** Set while a resume that ended before its node caught up may still see what it replayed fanned out live. */
  private replayedPast: ReadonlyMap<string, number> | undefined;
  /** Held bytes above which live frames are let go instead of held (a newcomer's hold); undefined: close as slow. */
  private holdBudget: number | undefined;

  constructor(
    /** Changes once, when a resume takes back the session's old id. */
    public wsId: string,
    private readonly ws: WebSocket,
    /** The raw socket: outbound frames are written to it, and the server's admission counts hang on it. */
    readonly socket: Duplex,
    private readonly shared: ConnectionShared,
  ) {}

  get uid(): string | undefined {
    return this.identity?.uid;
  }

  /** Takes one frame from the rate budget (`perSecond`, bursts of twice that); false when it is spent. */
  takeFrameToken(now: number, perSecond: number): boolean {
    return takeToken(this, now, perSecond, perSecond * 2);
  }

  /** Read when asked for (GET /conns/:wsId), not kept per connection. */
  get remoteAddress(): string {
    return this.forwardedFor ?? (this.socket as Partial<Socket>).remoteAddress ?? '';
  }

  /** The connection's rooms, each with where it stood when the connection joined it. */
  get rooms(): ReadonlyMap<string, StreamPosition> {
    return this.roomMap ?? NO_ROOMS;
  }

  /** True when the connection was not in the room yet. */
  addRoom(room: string, joinedAt: StreamPosition): boolean {
    this.roomMap ??= new Map();
    if (this.roomMap.has(room)) return false;
    this.roomMap.set(room, joinedAt);
    return true;
  }

  /** True when the connection was in the room. */
  removeRoom(room: string): boolean {
    return this.roomMap?.delete(room) ?? false;
  }

  clearRooms(): void {
    this.roomMap = undefined;
  }

  get isOpen(): boolean {
    return this.closeCode === undefined && this.ws.readyState === WebSocket.OPEN;
  }

  /** Bytes waiting to reach the client: queued here and buffered in the socket. */
  get bufferedBytes(): number {
    return this.pendingBytes + this.heldBytes + this.socket.writableLength;
  }

  /**
   * Queues one encoded frame; false when the connection is closing or was just
   * closed as slow. A push names its stream and seq, which matter only while a
   * resume holds live frames back.
   */
  send(frame: Buffer, stream?: string, seq = 0): boolean {
    if (this.held !== undefined) return this.hold(frame, stream, seq);
    if (this.replayedPast !== undefined && stream !== undefined && seq <= (this.replayedPast.get(stream) ?? 0)) return false;
    return this.enqueue(frame);
  }

  /** From now on (undefined: no longer) live pushes at or below the seq a resume replayed of their stream are dropped. */
  skipReplayed(replayedTo: ReadonlyMap<string, number> | undefined): void {
    this.replayedPast = replayedTo;
  }

  /** Queues a frame even while live frames are held (the replay itself). */
  enqueue(frame: Buffer): boolean {
    if (!this.isOpen) return false;
    if (this.pendingCount === 0) {
      this.firstPending = frame;
    } else {
      const pending = (this.pending ??= []);
      if (this.pendingCount === 1) pending[0] = this.firstPending!;
      pending[this.pendingCount] = frame;
    }
    this.pendingCount++;
    this.pendingBytes += frame.length;
    if (this.overLimit(frame)) {
      this.closeSlow();
      return false;
    }
    this.shared.outbox.schedule(this);
    return true;
  }

  flush(): void {
    const count = this.pendingCount;
    if (count === 0) return;
    if (this.ws.readyState === WebSocket.OPEN) {
      this.socket.write(count === 1 ? this.firstPending! : this.shared.outbox.join(this.pending!, count, this.pendingBytes));
      this.socketBytesAtWrite = this.socket.writableLength;
    }
    this.releasePending();
  }

  /** Empties the queue; its slots let go of the frames, and a burst's large array is not kept. */
  private releasePending(): void {
    this.firstPending = undefined;
    if (this.pending !== undefined && this.pendingCount > 1) {
      if (this.pending.length > MAX_KEPT_SLOTS) this.pending = undefined;
      else this.pending.fill(EMPTY_FRAME, 0, this.pendingCount);
    }
    this.pendingCount = 0;
    this.pendingBytes = 0;
  }

  /** Writes what is queued, then starts the close handshake; destroys the socket if it does not finish in time. */
  close(name: CloseCodeName, reason?: string): void {
    if (this.closeCode !== undefined) return;
    // A newcomer kicked before its first frame gets what waited for it: its session ends, so no
    // resume will. Any other close drops them, so the resume that follows replays them in order
    // (a frame sent now would move the client's position past what it missed).
    if (name === 'kicked' && !this.firstFrameSeen && this.holdBudget !== undefined) this.releaseHeld();
    this.flush();
    this.startClose(name, reason);
  }

  get holding(): boolean {
    return this.held !== undefined;
  }

  /**
   * From now on live frames wait until `releaseHeld`. With a `budget`, a hold
   * that grows past it lets its frames go rather than close the connection.
   */
  holdLive(budget?: number): void {
    this.held ??= new HeldFrames();
    this.holdBudget = budget;
  }

  /** Sends the held frames in order, skipping pushes at or below the position each stream was replayed to. */
  releaseHeld(replayedTo: ReadonlyMap<string, number> = NOTHING_REPLAYED): void {
    const held = this.held;
    this.held = undefined;
    if (held === undefined) return;
    this.heldBytes = 0;
    for (let i = 0; i < held.frames.length; i++) {
      const stream = held.streams[i];
      if (stream !== undefined && held.seqs[i] <= (replayedTo.get(stream) ?? 0)) continue;
      if (!this.enqueue(held.frames[i])) return;
    }
  }

  /** What is queued and buffered for the client (not what is held) is under half the send-buffer limit, or the connection closed. */
  get isWritable(): boolean {
    return !this.isOpen || this.pendingBytes + this.socket.writableLength <= this.shared.limits.sendBufferLimit / 2;
  }

  /** Resolves once the connection `isWritable`. */
  async writable(): Promise<void> {
    while (!this.isWritable) {
      this.flush();
      // the socket may have taken it all at once, and then it never emits 'drain'
      if (this.isWritable) return;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.socket.off('drain', done);
          this.socket.off('close', done);
          resolve();
        };
        this.socket.once('drain', done);
        this.socket.once('close', done);
      });
    }
  }

  /** Destroys the socket at once, without a close handshake. */
  terminate(): void {
    this.ws.terminate();
  }

  /**
   * ws failed the connection for a client's protocol error (an unmasked frame, invalid UTF-8, a
   * frame past its limit) and sent its close frame: the client gets the grace any close gets, not
   * the 30 s ws would wait for its answer.
   */
  failed(): void {
    this.terminateAfterGrace();
  }

  /** Destroys the socket if its close handshake, already under way, has not ended within the grace. */
  private terminateAfterGrace(): void {
    this.closeTimer ??= setTimeout(() => this.ws.terminate(), this.shared.limits.closeGraceMs);
  }

  /** Called by the server once the socket is gone. */
  closed(): void {
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    this.closeTimer = undefined;
    this.dropQueued();
  }

  private hold(frame: Buffer, stream: string | undefined, seq: number): boolean {
    if (!this.isOpen) return false;
    if (this.holdBudget !== undefined && this.passesHoldBudget(frame)) {
      // a newcomer's hold lets its frames go rather than close a client that reads: what it held is
      // written now, and this frame is queued behind it, held to the limit like any other
      this.releaseHeld();
      this.flush();
      return this.enqueue(frame);
    }
    this.held!.push(frame, stream, seq);
    this.heldBytes += frame.length;
    // held bytes count against the limit, so a resume that takes too long ends like any slow consumer
    if (this.overLimit(frame)) {
      this.closeSlow();
      return false;
    }
    return true;
  }

  /** Holding `frame` too would pass the hold's budget, or the send-buffer limit (which is lower when set below 64 KiB). */
  private passesHoldBudget(frame: Buffer): boolean {
    const held = this.heldBytes + frame.length;
    return held > this.holdBudget! || this.pendingBytes + held + this.socketBytesAtWrite > this.shared.limits.sendBufferLimit;
  }

  /**
   * The bytes waiting, `frame` among them, pass the limit, and `frame` is not
   * all of them: a frame larger than the limit that finds nothing else waiting
   * goes out (a client that reads is never closed for one large push), and the
   * next frame queued behind it closes a client that stopped reading.
   */
  private overLimit(frame: Buffer): boolean {
    const limit = this.shared.limits.sendBufferLimit;
    // the socket only drains between two writes, so its count at the last write bounds it; the exact one is read only near the limit
    if (this.pendingBytes + this.heldBytes + this.socketBytesAtWrite <= limit) return false;
    const buffered = this.bufferedBytes;
    return buffered > limit && buffered > frame.length;
  }

  private dropQueued(): void {
    this.releasePending();
    this.held = undefined;
    this.heldBytes = 0;
  }

  private closeSlow(): void {
    // Drop what is queued: the client is not reading, and the close frame must not wait behind more data.
    this.dropQueued();
    this.shared.onSlowConsumer(this);
    this.startClose('slowConsumer');
  }

  private startClose(name: CloseCodeName, reason = closeReason[name]): void {
    this.closeCode = CloseCode[name];
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(this.closeCode, fitReason(reason));
    // a close decided after the socket went (a token judged once it had dropped) has nothing to wait for
    if (this.ws.readyState !== WebSocket.CLOSED) this.terminateAfterGrace();
  }
}
