/**
 * What travels between processes over Redis pub/sub.
 *
 * Publications use a compact text form, `seq|epoch|id|tag|val`, built inside
 * the publish script so the seq is the one Redis assigned; `val` comes last and
 * may hold any character. Everything else is JSON: a union keyed on `type`,
 * each message naming the process it came from.
 */
import type { ConnCommand, ConnInfo, NodeReport, NodeStats, Publication, UserPush } from '../broker.js';
import type { MemberPage, NodeRooms, RoomQuery } from '../room-page.js';

export function decodePublication(stream: string, text: string): Publication | undefined {
  const a = text.indexOf('|');
  const b = text.indexOf('|', a + 1);
  const c = text.indexOf('|', b + 1);
  const d = text.indexOf('|', c + 1);
  if (a < 0 || b < 0 || c < 0 || d < 0) return undefined;
  return {
    stream,
    seq: Number(text.slice(0, a)),
    epoch: text.slice(a + 1, b),
    id: text.slice(b + 1, c),
    tag: Number(text.slice(c + 1, d)),
    val: text.slice(d + 1),
  };
}

/** A push to a user travels as `id|tag|val`. */
export function decodeUserPush(uid: string, text: string): UserPush | undefined {
  const a = text.indexOf('|');
  const b = text.indexOf('|', a + 1);
  if (a < 0 || b < 0) return undefined;
  return { uid, id: text.slice(0, a), tag: Number(text.slice(a + 1, b)), val: text.slice(b + 1) };
}

export type NodeQuery =
  | { kind: 'rooms'; query: RoomQuery }
  /** How many members the node has in `room`, and the first `first` of their wsIds. */
  | { kind: 'roomMembers'; room: string; first: number }
  | { kind: 'userConnections'; uid: string }
  | { kind: 'holds'; wsId: string }
  | { kind: 'stats' }
  | { kind: 'report' };

export interface QueryAnswers {
  rooms: NodeRooms;
  roomMembers: MemberPage;
  userConnections: ConnInfo[];
  /** Whether the answering node holds the wsId. */
  holds: boolean;
  stats: NodeStats;
  report: NodeReport;
}

/** Sent to one node's channel, or to every node. `yield`: a resume elsewhere takes the session `wsId` over. */
export type NodeRequest =
  | { type: 'command'; from: string; reqId: number; cmd: ConnCommand }
  | { type: 'query'; from: string; reqId: number; query: NodeQuery }
  | { type: 'yield'; from: string; reqId: number; wsId: string; uid?: string };

/** Sent back to the requesting process's reply channel. */
export interface NodeReply {
  type: 'reply';
  from: string;
  reqId: number;
  /** undefined when the wsId is not (or no longer) on that node */
  result?: unknown;
  error?: string;
  /** The key holding the whole reply, when it was too large to publish (then the only other fields are type, from and reqId). */
  stored?: string;
}

export function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
