/**
 * One client connection: its WebSocket (for the handshake, parsing inbound
 * frames and the close handshake), the raw socket its outbound frames are
 * written to, its rooms, and a byte-capped outbound queue.
 *
 * Outbound frames are pre-encoded WebSocket frames (see protocol/ws-frame.ts)
 * shared by every recipient; queueing one stores a reference, never a copy.
 */
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { CloseCode, closeReason, type CloseCodeName } from '../protocol/close-codes.js';
import type { Flushable, Outbox } from './outbox.js';

export interface ConnectionLimits {
  /** Bytes queued here plus bytes buffered in the socket above which the client is closed with 4000. */
  sendBufferLimit: number;
  /** How long a closing connection may take to finish the close handshake before it is destroyed. */
  closeGraceMs: number;
}

export class Connection implements Flushable {
  readonly rooms = new Set<string>();
  readonly connectedAt = Date.now();
  lastSeen = this.connectedAt;
  queued = false;
  /** Set once the close handshake has started; no frame is queued after it. */
  closeCode: number | undefined;
  badFrames = 0;
  badFramesSince = 0;

  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private closeTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly wsId: string,
    readonly remoteAddress: string,
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    private readonly outbox: Outbox,
    private readonly limits: ConnectionLimits,
    private readonly onSlowConsumer: (conn: Connection) => void,
  ) {}

  get isOpen(): boolean {
    return this.closeCode === undefined && this.ws.readyState === WebSocket.OPEN;
  }

  /** Bytes waiting to reach the client: queued here and buffered in the socket. */
  get bufferedBytes(): number {
    return this.pendingBytes + this.socket.writableLength;
  }

  /** Queues one encoded frame; false when the connection is closing or was just closed as slow. */
  send(frame: Buffer): boolean {
    if (!this.isOpen) return false;
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    if (this.pendingBytes + this.socket.writableLength > this.limits.sendBufferLimit) {
      this.closeSlow();
      return false;
    }
    this.outbox.schedule(this);
    return true;
  }

  flush(): void {
    const count = this.pending.length;
    if (count === 0) return;
    if (this.ws.readyState === WebSocket.OPEN) {
      this.socket.write(count === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes));
    }
    this.pending.length = 0;
    this.pendingBytes = 0;
  }

  /** Writes what is queued, then starts the close handshake; destroys the socket if it does not finish in time. */
  close(name: CloseCodeName): void {
    if (this.closeCode !== undefined) return;
    this.flush();
    this.startClose(name);
  }

  /** Destroys the socket at once, without a close handshake. */
  terminate(): void {
    this.ws.terminate();
  }

  /** Called by the server once the socket is gone. */
  closed(): void {
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    this.closeTimer = undefined;
    this.pending.length = 0;
    this.pendingBytes = 0;
  }

  private closeSlow(): void {
    // Drop what is queued: the client is not reading, and the close frame must not wait behind more data.
    this.pending.length = 0;
    this.pendingBytes = 0;
    this.onSlowConsumer(this);
    this.startClose('slowConsumer');
  }

  private startClose(name: CloseCodeName): void {
    this.closeCode = CloseCode[name];
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(this.closeCode, closeReason[name]);
    this.closeTimer = setTimeout(() => this.ws.terminate(), this.limits.closeGraceMs);
  }
}
