/**
 * What a bench connection to roomcast must remember to resume its session
 * (PROTOCOL.md §4): the resume token and `*` position of its welcome, and the
 * position of each room its `joined` frames announced. Only control frames
 * are read here; push frames never are (their seq comes from connection.ts).
 */
import { maskedFrame, OPCODE_TEXT, parseControlObject } from './protocols.js';

interface Position {
  seq: number;
  epoch: string;
}

/** What a control frame told the session. */
export type SessionEvent =
  | { kind: 'welcome' }
  | { kind: 'resumed'; recovered: boolean }
  | { kind: 'refused'; message: string }
  | undefined;

interface ControlFrame {
  op?: unknown;
  resume?: unknown;
  seq?: unknown;
  epoch?: unknown;
  room?: unknown;
  recovered?: unknown;
  streams?: unknown;
  code?: unknown;
  message?: unknown;
}

function position(seq: unknown, epoch: unknown): Position | undefined {
  return typeof seq === 'number' && typeof epoch === 'string' ? { seq, epoch } : undefined;
}

export class RoomcastSession {
  private token: string | undefined;
  private all: Position | undefined;
  private readonly rooms = new Map<string, Position>();

  /**
   * Reads a control frame; `resuming`: the welcome is a new connection's, whose token must not replace the session's.
   * Throws a MalformedFrameError for a frame that names an op but is not a JSON object.
   */
  read(text: string, resuming: boolean): SessionEvent {
    if (!text.includes('"op":')) return undefined;
    const frame: ControlFrame = parseControlObject(text, text);
    switch (frame.op) {
      case 'welcome':
        if (!resuming) {
          this.token = typeof frame.resume === 'string' ? frame.resume : undefined;
          this.all = position(frame.seq, frame.epoch);
        }
        return { kind: 'welcome' };
      case 'joined': {
        const at = position(frame.seq, frame.epoch);
        if (typeof frame.room === 'string' && at !== undefined) this.rooms.set(frame.room, at);
        return undefined;
      }
      case 'resumed':
        this.afterResume(frame);
        return { kind: 'resumed', recovered: frame.recovered === true };
      case 'error':
        return resuming ? { kind: 'refused', message: `${String(frame.code)}: ${String(frame.message)}` } : undefined;
      default:
        return undefined;
    }
  }

  /**
   * The resume frame: every stream at the highest seq the connection received.
   * Each bench connection is on one stream, its one room or else `*`, so
   * `highest` (-1: none) is that stream's; the other streams stand where
   * their welcome or joined frame put them.
   */
  resumeFrame(highest: number): Buffer {
    if (this.token === undefined || this.all === undefined) throw new Error('no welcome with a resume token and a * position was read');
    if (this.rooms.size > 1) throw new Error('a bench connection resumes one room at most');
    const since: Record<string, Position> = {};
    const at = (p: Position): Position => ({ seq: Math.max(p.seq, highest), epoch: p.epoch });
    since['*'] = this.rooms.size === 0 ? at(this.all) : this.all;
    for (const [room, p] of this.rooms) since[room] = at(p);
    return maskedFrame(OPCODE_TEXT, Buffer.from(JSON.stringify({ op: 'resume', token: this.token, since })));
  }

  /** The new token and positions, so the session can be resumed again. */
  private afterResume(frame: ControlFrame): void {
    if (typeof frame.resume === 'string') this.token = frame.resume;
    const streams = (typeof frame.streams === 'object' && frame.streams !== null ? frame.streams : {}) as Record<string, { seq?: unknown; epoch?: unknown }>;
    for (const [stream, p] of Object.entries(streams)) {
      const at = position(p.seq, p.epoch);
      if (at === undefined) continue;
      if (stream === '*') this.all = at;
      else this.rooms.set(stream, at);
    }
  }
}
