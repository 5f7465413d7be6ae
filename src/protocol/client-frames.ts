/**
 * Parses what a client sends (PROTOCOL.md §1 "Client → server") into a small
 * union the gateway can act on. Never throws: every bad input becomes a
 * `problem` naming what is wrong.
 */
import { isUtf8 } from 'node:buffer';
import { inexactIntegerMessage, isInexactInteger } from './inexact-integer.js';
import { ROOM_ID_RULE, toRoomId } from './room-id.js';
import type { ClientErrorCode, ReplyId } from './frames.js';

export type ClientFrame =
  | { kind: 'ping' }
  | { kind: 'ignored' }
  | { kind: 'membership'; op: 'join' | 'leave'; room: string; id: ReplyId | undefined }
  | { kind: 'token'; op: 'auth' | 'refresh'; token: string; id: ReplyId | undefined }
  | { kind: 'resume'; token: string; since: Record<string, unknown>; id: ReplyId | undefined }
  | { kind: 'problem'; code: ClientErrorCode; message: string; id: ReplyId | undefined };

const MAX_REPLY_ID_LENGTH = 64;

function problem(code: ClientErrorCode, message: string, id?: ReplyId): ClientFrame {
  return { kind: 'problem', code, message, id };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parseClientFrame(data: Buffer): ClientFrame {
  // the WebSocket layer closes a text frame of bad UTF-8 (1007): this is a binary one, which it does not check
  if (!isUtf8(data)) return problem('bad_frame', 'frame is not valid UTF-8: a binary frame must hold a JSON object in UTF-8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString('utf8'));
  } catch {
    return problem('bad_frame', 'frame is not valid JSON');
  }
  if (!isPlainObject(parsed)) return problem('bad_frame', 'frame must be a JSON object');

  const rawId = parsed.id;
  let id: ReplyId | undefined;
  if (rawId !== undefined) {
    const validId =
      (typeof rawId === 'number' && Number.isSafeInteger(rawId)) ||
      (typeof rawId === 'string' && rawId.length <= MAX_REPLY_ID_LENGTH);
    if (isInexactInteger(rawId)) return problem('bad_request', inexactIntegerMessage('id'));
    if (!validId) return problem('bad_request', `id must be an integer or a string of at most ${MAX_REPLY_ID_LENGTH} characters`);
    id = rawId as ReplyId;
  }

  const op = parsed.op;
  if (op === undefined) return parsed.type === 1 ? { kind: 'ping' } : { kind: 'ignored' };
  if (typeof op !== 'string') return problem('bad_request', 'op must be a string', id);

  switch (op) {
    case 'join':
    case 'leave': {
      if (parsed.room === undefined) return problem('bad_request', 'room is required', id);
      if (isInexactInteger(parsed.room)) return problem('bad_request', inexactIntegerMessage('room'), id);
      const room = toRoomId(parsed.room);
      if (room === undefined) return problem('bad_request', `room must be ${ROOM_ID_RULE}`, id);
      return { kind: 'membership', op, room, id };
    }
    case 'auth':
    case 'refresh': {
      if (typeof parsed.token !== 'string' || parsed.token === '') {
        return problem('bad_request', 'token is required and must be a non-empty string', id);
      }
      return { kind: 'token', op, token: parsed.token, id };
    }
    case 'resume': {
      if (typeof parsed.token !== 'string' || parsed.token === '') {
        return problem('bad_request', 'token is required and must be a non-empty string', id);
      }
      const since = parsed.since ?? {};
      if (!isPlainObject(since)) return problem('bad_request', 'since must be an object', id);
      return { kind: 'resume', token: parsed.token, since, id };
    }
    default:
      return problem('unknown_op', `unknown op ${JSON.stringify(op.slice(0, 32))}`, id);
  }
}
