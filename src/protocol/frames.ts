/**
 * Server-to-client frames as JSON text (PROTOCOL.md §1). Builders return the
 * JSON string; the gateway turns it into WebSocket bytes once.
 */
import type { Publication, StreamPosition } from '../broker/broker.js';
import { ALL_STREAM } from './room-id.js';

export type ReplyId = number | string;

/** The codes of `error` frames (docs/REFERENCE.md lists each). */
export const CLIENT_ERROR_CODES = ['forbidden', 'bad_frame', 'unknown_op', 'bad_request', 'bad_resume'] as const;
export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[number];

export interface WelcomeFields {
  wsId: string;
  heartbeatMs: number;
  resume?: string;
  /** Position of the `*` stream when the connection opened. */
  epoch?: string;
  seq?: number;
  /** The authenticated user, if any. */
  uid?: string;
}

const q = JSON.stringify;

export function welcomeFrame(w: WelcomeFields): string {
  let text = `{"type":0,"op":"welcome","data":${q(w.wsId)},"wsId":${q(w.wsId)},"heartbeat":${w.heartbeatMs}`;
  if (w.resume !== undefined) text += `,"resume":${q(w.resume)}`;
  if (w.epoch !== undefined) text += `,"epoch":${q(w.epoch)}`;
  if (w.seq !== undefined) text += `,"seq":${w.seq}`;
  if (w.uid !== undefined) text += `,"uid":${q(w.uid)}`;
  return text + '}';
}

/**
 * Ends a resume: the session's id, a fresh token, whether nothing was lost, and where each stream now stands.
 * `streams` is turned into an object by Object.fromEntries, which defines a room named `__proto__` as a
 * field of its own (an assignment would set the object's prototype, and the room would be left out).
 */
export function resumedFrame(wsId: string, resume: string, recovered: boolean, streams: ReadonlyMap<string, StreamPosition>): string {
  return q({ type: 0, op: 'resumed', wsId, resume, recovered, streams: Object.fromEntries(streams) });
}

export const PING_FRAME = '{"type":1,"data":"PING"}';
export const PONG_FRAME = '{"type":1,"data":"PONG"}';

/** A push: `room` for room pushes, `seq` for pushes to a stream (room or all). */
export function pushFrame(tag: number, val: string, room?: string, seq?: number): string {
  let text = `{"type":${tag},"data":${q(val)}`;
  if (room !== undefined) text += `,"room":${q(room)}`;
  if (seq !== undefined) text += `,"seq":${seq}`;
  return text + '}';
}

/** A publication of a stream: pushes to all (`*`) name no room. */
export function publicationFrame(pub: Publication): string {
  return pushFrame(pub.tag, pub.val, pub.stream === ALL_STREAM ? undefined : pub.stream, pub.seq);
}

export function joinedFrame(room: string, seq?: number, epoch?: string): string {
  let text = `{"type":0,"op":"joined","room":${q(room)}`;
  if (seq !== undefined) text += `,"seq":${seq}`;
  if (epoch !== undefined) text += `,"epoch":${q(epoch)}`;
  return text + '}';
}

export function leftFrame(room: string): string {
  return `{"type":0,"op":"left","room":${q(room)}}`;
}

export function replyFrame(id: ReplyId | undefined, fields: Record<string, unknown>): string {
  return q({ type: 0, op: 'reply', ...(id === undefined ? {} : { id }), ...fields });
}

export function errorFrame(id: ReplyId | undefined, code: ClientErrorCode, message: string): string {
  return q({ type: 0, op: 'error', ...(id === undefined ? {} : { id }), code, message });
}
