/**
 * What a bench client says beyond WebSocket framing, per target. Push frames
 * are told apart by the `~<µs>~` marker in their payload (see connection.ts),
 * so only the rare control frames reach these handlers.
 */
import { randomBytes } from 'node:crypto';
import { PING_FRAME } from '../../src/protocol/frames.js';
import type { ClientProtocol } from '../messages.js';

export interface ProtocolHandler {
  /** Path and query of the WebSocket endpoint. */
  path: string;
  /** A frame to send every `heartbeatEveryMs`, or undefined when the server pings instead. */
  heartbeat: Buffer | undefined;
  heartbeatEveryMs: number;
  /** Handles a control frame; returns the connection's id once the frame tells it; throws a MalformedFrameError for one it cannot read. */
  onControl(text: string, reply: (frame: Buffer) => void): string | undefined;
}

/** A client-to-server frame (masked, as RFC 6455 §5.3 requires), built once and reused; control frames carry at most 125 bytes. */
export function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const control = (opcode & 0x08) !== 0;
  if (payload.length > (control ? 125 : 0xffff)) throw new Error(`a bench client ${control ? 'control ' : ''}frame carries at most ${control ? 125 : 0xffff} bytes, not ${payload.length}`);
  const header = payload.length < 126 ? 2 : 4;
  const mask = randomBytes(4);
  const frame = Buffer.allocUnsafe(header + 4 + payload.length);
  frame[0] = 0x80 | opcode;
  if (header === 2) {
    frame[1] = 0x80 | payload.length;
  } else {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(payload.length, 2);
  }
  mask.copy(frame, header);
  for (let i = 0; i < payload.length; i++) frame[header + 4 + i] = payload[i] ^ mask[i & 3];
  return frame;
}

export const OPCODE_TEXT = 0x1;
export const OPCODE_CLOSE = 0x8;
export const OPCODE_PING = 0x9;
export const OPCODE_PONG = 0xa;

/** A control frame that is not the JSON object its protocol says it is: the server broke the protocol. */
export class MalformedFrameError extends Error {}

/** At most this much of a malformed frame is quoted in its error. */
const QUOTED = 80;

/** Parses `json`, the JSON of control frame `frame`, which must be an object; else throws a MalformedFrameError quoting the frame. */
export function parseControlObject(json: string, frame: string): Record<string, unknown> {
  const quoted = JSON.stringify(frame.length > QUOTED ? `${frame.slice(0, QUOTED)}...` : frame);
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new MalformedFrameError(`a control frame is not JSON (${(err as Error).message}): ${quoted}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new MalformedFrameError(`a control frame is JSON but not an object: ${quoted}`);
  return value as Record<string, unknown>;
}

function textFrame(text: string): Buffer {
  return maskedFrame(OPCODE_TEXT, Buffer.from(text));
}

/**
 * roomcast's frames: the welcome frame names the wsId; clients ping a third of
 * the 10 s heartbeat timeout, and once at once: roomcast holds live frames
 * back until a new connection's first frame says it does not resume.
 */
function roomcastFrames(): ProtocolHandler {
  const ping = textFrame(PING_FRAME);
  return {
    path: '/connect',
    heartbeat: ping,
    heartbeatEveryMs: 3000,
    onControl(text, reply) {
      if (!text.includes('"welcome"')) return undefined;
      const frame = parseControlObject(text, text);
      reply(ping);
      return typeof frame.wsId === 'string' ? frame.wsId : undefined;
    },
  };
}

/**
 * Socket.IO v5 over Engine.IO v4, WebSocket transport only: the server opens
 * with `0{...}`, the client joins the main namespace with `40` and learns its
 * socket id from `40{"sid":...}`; the server pings with `2`, the client answers `3`.
 */
function socketIo(): ProtocolHandler {
  const joinNamespace = textFrame('40');
  const pong = textFrame('3');
  return {
    path: '/socket.io/?EIO=4&transport=websocket',
    heartbeat: undefined,
    heartbeatEveryMs: 0,
    onControl(text, reply) {
      if (text === '2') {
        reply(pong);
        return undefined;
      }
      if (text.startsWith('0{')) {
        reply(joinNamespace);
        return undefined;
      }
      if (text.startsWith('40{')) {
        const packet = parseControlObject(text.slice(2), text);
        return typeof packet.sid === 'string' ? packet.sid : undefined;
      }
      return undefined;
    },
  };
}

export function protocolHandler(protocol: ClientProtocol): ProtocolHandler {
  return protocol === 'socketio' ? socketIo() : roomcastFrames();
}
