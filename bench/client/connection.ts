/**
 * One bench client connection on a plain TCP socket: a minimal WebSocket
 * handshake and a frame reader that counts push frames without decoding them.
 *
 * The same code serves every target, so client cost per frame is equal: a
 * frame whose payload has `~` within its first bytes is a push; its send
 * time (µs) is read from the digits after the `~` (a `w` there marks a
 * warm-up push, counted apart), and its `seq` from the `"seq":N` that ends
 * it, so that a duplicate is not counted and a frame out of order is.
 * Nothing is allocated per push frame; other frames are decoded and handed
 * to the protocol handler (and, for the resume scenario, to the session).
 *
 * A connection that tracks its roomcast session can be dropped (its socket
 * destroyed, no close handshake) and resumed on a new socket: its seqs and
 * frame counts carry over, so a replayed frame it had already is a duplicate.
 */
import type { Socket } from 'node:net';
import { Histogram } from '../histogram.js';
import { PONG_FRAME } from '../../src/protocol/frames.js';
import { nowUs } from '../messages.js';
import { MalformedFrameError, maskedFrame, OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG, OPCODE_TEXT, type ProtocolHandler } from './protocols.js';
import { ReceivedSeqs, SeqOutcome } from './received-seqs.js';
import type { RoomcastSession, SessionEvent } from './session.js';

const TILDE = 0x7e;
const WARMUP = 0x77; // 'w'
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
/** The marker sits within this many bytes of a push frame's payload start (roomcast 17, Socket.IO 27). */
const MARKER_WITHIN = 64;
const HEADER_END = Buffer.from('\r\n\r\n');
const SEQ_KEY = Buffer.from('"seq":');
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
/** A close frame with status 1000: sent when the server closes first, or to leave cleanly. */
const CLOSE_NORMAL = maskedFrame(OPCODE_CLOSE, Buffer.from([0x03, 0xe8]));
/** How long a clean leave waits for the server to end the connection before destroying the socket. */
const CLEAN_CLOSE_TIMEOUT_MS = 5000;

export class ClientStats {
  /** Push frames of the measured pushes, each seq once per connection. */
  pushFrames = 0;
  /** Push frames of the warm-up (`~w...`): counted apart, no latency. */
  warmupFrames = 0;
  /** Push frames (warm-up or measured) whose seq their connection had received already: not counted. */
  duplicates = 0;
  /** Push frames that arrived after a frame with a higher seq on their connection. */
  outOfOrder = 0;
  /** Push frames with no `"seq":N` at their end: counted, but their order cannot be checked. */
  unsequenced = 0;
  firstFrameAtUs = 0;
  lastFrameAtUs = 0;
  closedEarly = 0;
  protocolErrors = 0;
  /** Control frames that are not the JSON object their protocol says; the first one's problem. */
  malformedFrames = 0;
  firstMalformed: string | undefined;
  /** Measured push frames that arrived after their connection's `resumed` (a replay must end before it). */
  afterResumed = 0;
  readonly latency = new Histogram();
}

/** What becomes of a new connection: welcomed with its wsId, or failed before. */
export interface ConnectEvents {
  ready(conn: BenchConnection, wsId: string): void;
  fail(conn: BenchConnection, reason: string): void;
}

/** What becomes of a resume: `resumed` read (recovered or not), or refused, or the socket failed before. */
export interface ResumeEvents {
  resumed(conn: BenchConnection, recovered: boolean): void;
  fail(conn: BenchConnection, reason: string): void;
}

export class BenchConnection {
  wsId: string | undefined;
  /** True once the bench closes it: a close after that is not counted as early. */
  closing = false;
  /** Measured push frames this connection received, each seq once. */
  frames = 0;
  private readonly seqs = new ReceivedSeqs();
  private upgraded = false;
  /** Welcomed and answered (a ping, or the resume): heartbeats may go. */
  private live = false;
  private rest: Buffer | undefined;
  private closedSeen = false;
  /** When the chunk being read arrived: every frame in it counts as received then. */
  private chunkAtUs = 0;
  /** Set while a resume waits for its `resumed`. */
  private resuming: ResumeEvents | undefined;
  private resumed = false;
  /** Heartbeat frames (PINGs) sent, and PONGs read: the server answers each PING, in order after every frame it queued before. */
  private pingsSent = 0;
  private pongs = 0;
  /** Set while a barrier waits for the PONG of the PING it sent. */
  private barrierWait: { pongs: number; done: (ok: boolean) => void } | undefined;
  /** Set once the bench closes it on purpose (a leave): called when the socket is gone. */
  private onGone: (() => void) | undefined;
  socket!: Socket;

  constructor(
    socket: Socket,
    private readonly protocol: ProtocolHandler,
    private readonly stats: ClientStats,
    private readonly events: ConnectEvents,
    /** roomcast only, and only when the scenario resumes: control frames are then also read for the session. */
    private readonly session?: RoomcastSession,
  ) {
    this.attach(socket);
  }

  /** Resumes the session on a new socket: its welcome is answered with the resume frame. */
  resume(socket: Socket, events: ResumeEvents): void {
    if (this.session === undefined || this.wsId === undefined) throw new Error('only a welcomed connection that tracks its session can resume');
    this.resuming = events;
    this.resumed = false;
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    this.closing = false;
    this.closedSeen = false;
    this.upgraded = false;
    this.live = false;
    this.rest = undefined;
    // a socket dropped before may still report its end: only the current one counts
    socket.on('data', (chunk: Buffer) => socket === this.socket && this.onData(chunk));
    socket.on('error', (err) => socket === this.socket && this.fail(err.message));
    socket.on('close', () => socket === this.socket && this.fail('the socket closed'));
  }

  /** Sends a heartbeat once the welcome has been answered (a resume must be a connection's first frame). */
  heartbeat(frame: Buffer): void {
    if (this.live) this.send(frame);
  }

  handshake(host: string, key: string): void {
    this.socket.write(
      `GET ${this.protocol.path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  }

  send(frame: Buffer): void {
    if (this.closing || !this.socket.writable) return;
    if (frame === this.protocol.heartbeat) this.pingsSent++;
    this.socket.write(frame);
  }

  close(): void {
    this.closing = true;
    this.socket.destroy();
  }

  /** Every seq this connection received (warm-up frames' too), lowest first. */
  receivedSeqs(): number[] {
    return this.seqs.list();
  }

  /**
   * Sends a PING and calls `done` once its PONG is read: every frame the
   * server queued for this connection before it read the PING has been read
   * then; `done(false)` when the socket is gone first. Only for protocols
   * whose heartbeat is a PING the server answers.
   */
  barrier(done: (ok: boolean) => void): void {
    const ping = this.protocol.heartbeat;
    if (ping === undefined) throw new Error('a barrier needs a protocol whose clients PING');
    // a socket that can no longer be written would never carry the PING: its PONG count would pass at once
    if (this.closedSeen || this.closing || !this.socket.writable) return done(false);
    this.send(ping);
    this.barrierWait = { pongs: this.pingsSent, done };
    this.checkBarrier();
  }

  /**
   * Leaves on purpose: a clean close (a close frame, then the server's close
   * and the end of the socket) or the socket destroyed; `done` once it is gone.
   */
  leave(clean: boolean, done: () => void): void {
    this.closing = true;
    if (this.closedSeen) return done();
    this.onGone = done;
    if (!clean) {
      this.socket.destroy();
      return;
    }
    this.socket.write(CLOSE_NORMAL);
    const timer = setTimeout(() => this.socket.destroy(), CLEAN_CLOSE_TIMEOUT_MS);
    this.socket.once('close', () => clearTimeout(timer));
  }

  private checkBarrier(): void {
    const wait = this.barrierWait;
    if (wait === undefined || this.pongs < wait.pongs) return;
    this.barrierWait = undefined;
    wait.done(true);
  }

  private fail(reason: string): void {
    if (this.closedSeen) return;
    this.closedSeen = true;
    const gone = this.onGone;
    this.onGone = undefined;
    gone?.();
    const wait = this.barrierWait;
    this.barrierWait = undefined;
    wait?.done(false);
    if (this.closing) return;
    const resuming = this.resuming;
    this.resuming = undefined;
    if (resuming !== undefined) resuming.fail(this, reason);
    else if (this.wsId === undefined) this.events.fail(this, reason);
    else this.stats.closedEarly++;
  }

  private onData(chunk: Buffer): void {
    this.chunkAtUs = nowUs();
    let buf = chunk;
    if (this.rest !== undefined) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = undefined;
    }
    let offset = 0;
    if (!this.upgraded) {
      const end = buf.indexOf(HEADER_END);
      if (end === -1) {
        this.rest = buf;
        return;
      }
      const status = buf.toString('latin1', 0, Math.min(end, 200)).split('\r\n')[0];
      if (!status.startsWith('HTTP/1.1 101')) {
        this.fail(`handshake answered ${status}`);
        this.socket.destroy();
        return;
      }
      this.upgraded = true;
      offset = end + HEADER_END.length;
    }
    offset = this.readFrames(buf, offset);
    if (offset < buf.length) this.rest = buf.subarray(offset);
  }

  /** Reads every whole frame from `offset`; returns where the first incomplete one starts. */
  private readFrames(buf: Buffer, offset: number): number {
    const length = buf.length;
    while (length - offset >= 2) {
      const b0 = buf[offset];
      const b1 = buf[offset + 1];
      let payloadLength = b1 & 0x7f;
      let header = 2;
      if (payloadLength === 126) {
        if (length - offset < 4) break;
        payloadLength = buf.readUInt16BE(offset + 2);
        header = 4;
      } else if (payloadLength === 127) {
        if (length - offset < 10) break;
        payloadLength = buf.readUInt32BE(offset + 2) * 0x100000000 + buf.readUInt32BE(offset + 6);
        header = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      const start = offset + header + (masked ? 4 : 0);
      const end = start + payloadLength;
      if (end > length) break;
      const opcode = b0 & 0x0f;
      // servers never mask, and no extension is agreed that could give the RSV bits a meaning: counted, not read
      if (masked || (b0 & 0x70) !== 0) this.stats.protocolErrors++;
      else if (opcode !== OPCODE_TEXT || !this.readPush(buf, start, end)) this.onOtherFrame(opcode, buf, start, end);
      offset = end;
    }
    return offset;
  }

  /** Counts a push frame and records its latency; false when the frame is not a push. */
  private readPush(buf: Buffer, start: number, end: number): boolean {
    const scanEnd = Math.min(end, start + MARKER_WITHIN);
    let i = start;
    while (i < scanEnd && buf[i] !== TILDE) i++;
    if (i === scanEnd) return false;
    const stats = this.stats;
    const seq = seqAtEnd(buf, start, end);
    if (seq === -1) {
      stats.unsequenced++;
    } else {
      const outcome = this.seqs.add(seq);
      if (outcome === SeqOutcome.Duplicate) {
        stats.duplicates++;
        return true;
      }
      if (outcome === SeqOutcome.Late) stats.outOfOrder++;
    }
    if (buf[i + 1] === WARMUP) {
      stats.warmupFrames++;
      return true;
    }
    let sentAtUs = 0;
    for (i++; i < end; i++) {
      const c = buf[i];
      if (c < DIGIT_0 || c > DIGIT_9) break;
      sentAtUs = sentAtUs * 10 + (c - DIGIT_0);
    }
    const now = this.chunkAtUs;
    if (stats.firstFrameAtUs === 0) stats.firstFrameAtUs = now;
    stats.lastFrameAtUs = now;
    stats.pushFrames++;
    if (this.resumed) stats.afterResumed++;
    this.frames++;
    stats.latency.record(now - sentAtUs);
    return true;
  }

  private onOtherFrame(opcode: number, buf: Buffer, start: number, end: number): void {
    if (opcode === OPCODE_TEXT) {
      try {
        this.onControlFrame(buf.toString('utf8', start, end));
      } catch (err) {
        if (!(err instanceof MalformedFrameError)) throw err;
        this.onMalformed(err.message);
      }
    } else if (opcode === OPCODE_PING) {
      this.send(maskedFrame(OPCODE_PONG, buf.subarray(start, Math.min(end, start + 125))));
    } else if (opcode === OPCODE_CLOSE) {
      this.send(CLOSE_NORMAL);
      this.socket.end();
    } else if (opcode !== OPCODE_PONG) {
      this.stats.protocolErrors++;
    }
  }

  private onControlFrame(text: string): void {
    if (text === PONG_FRAME) {
      this.pongs++;
      return this.checkBarrier();
    }
    const event = this.session?.read(text, this.resuming !== undefined);
    if (this.resuming !== undefined) return this.onResumeEvent(event);
    const wsId = this.protocol.onControl(text, (frame) => this.send(frame));
    if (wsId !== undefined && this.wsId === undefined) {
      this.wsId = wsId;
      this.live = true;
      this.events.ready(this, wsId);
    }
  }

  /**
   * Counted, as an error of the run. A connection still waiting for its welcome
   * or its `resumed` fails at once: it cannot tell whether this was the frame it
   * waits for, and would otherwise wait until its timeout.
   */
  private onMalformed(problem: string): void {
    this.stats.malformedFrames++;
    this.stats.firstMalformed ??= problem;
    if (this.resuming !== undefined || this.wsId === undefined) this.fail(problem);
  }

  private onResumeEvent(event: SessionEvent): void {
    const resuming = this.resuming!;
    if (event?.kind === 'welcome') {
      let frame: Buffer;
      try {
        frame = this.session!.resumeFrame(this.seqs.highest);
      } catch (err) {
        // e.g. the first welcome carried no resume token (a server without history): this resume fails, not the worker
        return this.fail(`cannot resume: ${(err as Error).message}`);
      }
      this.send(frame);
      this.live = true;
    } else if (event?.kind === 'resumed') {
      this.resuming = undefined;
      this.resumed = true;
      resuming.resumed(this, event.recovered);
    } else if (event?.kind === 'refused') {
      this.resuming = undefined;
      resuming.fail(this, `resume refused: ${event.message}`);
    }
  }
}

/**
 * The seq of a push frame's JSON, read from its end: `{...,"seq":N}` (roomcast,
 * the bare ws peer) or `42["push",{...,"seq":N}]` (Socket.IO); -1 when it has none.
 */
function seqAtEnd(buf: Buffer, start: number, end: number): number {
  let i = end - 1;
  while (i > start && (buf[i] === CLOSE_BRACE || buf[i] === CLOSE_BRACKET)) i--;
  let seq = 0;
  let scale = 1;
  const lastDigit = i;
  for (; i >= start && buf[i] >= DIGIT_0 && buf[i] <= DIGIT_9 && lastDigit - i < 15; i--) {
    seq += (buf[i] - DIGIT_0) * scale;
    scale *= 10;
  }
  if (i === lastDigit || i - SEQ_KEY.length + 1 < start) return -1;
  for (let k = 0; k < SEQ_KEY.length; k++) if (buf[i - SEQ_KEY.length + 1 + k] !== SEQ_KEY[k]) return -1;
  return seq;
}
