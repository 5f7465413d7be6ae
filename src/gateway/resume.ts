/**
 * Resume (PROTOCOL.md §4): a reconnecting client hands in its old session's
 * token and how far it got in each stream; the connection takes back the old
 * wsId and rooms, receives what it missed in order, then `resumed`.
 *
 * Live frames are held from the welcome on, so nothing reaches the client
 * before the replay; held pushes the replay already covered are dropped.
 */
import type { Logger } from 'pino';
import type { HistoryEntry, StreamPosition } from '../broker/broker.js';
import type { AuthMode } from '../config.js';
import { errorFrame, joinedFrame, leftFrame, resumedFrame, type ReplyId } from '../protocol/frames.js';
import { ALL_STREAM, toRoomId } from '../protocol/room-id.js';
import { encodeTextFrame } from '../protocol/ws-frame.js';
import type { Connection } from './connection.js';
import type { GatewayNode } from './node.js';
import { errorMessage } from '../error-message.js';

/** At most this many publications are replayed per stream. */
export const REPLAY_LIMIT = 10_000;
/**
 * `since` may name this many streams, or this node's rooms limit and `*` if
 * that is more. Not this node's limit alone: a session may come from a node
 * with a higher one and keeps every room it was given.
 */
export const MAX_SINCE_STREAMS = 10_000;
/**
 * History is read on one broker connection and live publications arrive on
 * another, so this node may see a publication the replay covered only after
 * the replay. Live frames stay held until the node has caught up with what was
 * replayed (they are then dropped as duplicates), or this long.
 */
const CATCH_UP_MS = 2000;
/**
 * A resume that ended before its node caught up: the publications it replayed may still be fanned out
 * here, and reach the connection live. It drops those until the node has caught up, or this long.
 */
const SKIP_REPLAYED_MS = 60_000;

export interface ResumeRequest {
  token: string;
  since: Record<string, unknown>;
  id: ReplyId | undefined;
}

/**
 * The most bytes one stream of `since` takes: a room id of 128 characters,
 * quoted, with a 16-digit seq and an epoch of up to 32 characters.
 */
const SINCE_STREAM_BYTES = 200;
/** The token, the frame's other fields and some whitespace. */
const RESUME_FRAME_OVERHEAD = 4096;

/**
 * How large a client's first frame may be when it is a resume: one naming
 * every room a connection may be in on this node (`*` too) can outgrow
 * `--max-payload`, and a client refused its resume would lose its session.
 * Every other frame is held to `--max-payload`.
 */
export function resumeFrameLimit(maxRoomsPerConnection: number, maxPayload: number): number {
  // a limit above MAX_SINCE_STREAMS raises what a resume may name (maxSinceStreams), so it raises this too
  const streams = maxRoomsPerConnection === 0 ? MAX_SINCE_STREAMS : maxRoomsPerConnection + 1;
  return Math.max(maxPayload, streams * SINCE_STREAM_BYTES + RESUME_FRAME_OVERHEAD);
}

function maxSinceStreams(node: GatewayNode): number {
  return Math.max(node.maxRoomsPerConnection + 1, MAX_SINCE_STREAMS);
}

/** Validates `since`: `{ "<room>" | "*": { seq: <n>, epoch: "<e>" } }`, naming at most `maxStreams` streams. */
function parseSince(since: Record<string, unknown>, maxStreams: number): Map<string, StreamPosition> | string {
  const keys = Object.keys(since);
  if (keys.length > maxStreams) return `since names ${keys.length} streams, more than the ${maxStreams} a resume may name`;
  const out = new Map<string, StreamPosition>();
  for (const key of keys) {
    if (key !== ALL_STREAM && toRoomId(key) === undefined) return `since.${key.slice(0, 64)} is not a room id or *`;
    const entry = since[key] as { seq?: unknown; epoch?: unknown } | null;
    if (typeof entry !== 'object' || entry === null || !Number.isSafeInteger(entry.seq) || (entry.seq as number) < 0 || typeof entry.epoch !== 'string') {
      return `since.${key} must be {"seq":<integer >= 0>,"epoch":"<string>"}`;
    }
    out.set(key, { seq: entry.seq as number, epoch: entry.epoch });
  }
  return out;
}

interface StreamReplay {
  stream: string;
  position: StreamPosition;
  complete: boolean;
  entries: HistoryEntry[];
}

/** What the stream holds after `start`, and where it now stands; nothing to replay when its epoch changed. `joinedAt`: see SharedHistoryReads. */
async function fetchReplay(node: GatewayNode, stream: string, start: StreamPosition, joinedAt: number): Promise<StreamReplay> {
  const page = await node.historyReads.history(stream, start.seq, REPLAY_LIMIT, joinedAt);
  const position = { seq: page.seq, epoch: page.epoch };
  if (page.epoch !== start.epoch) return { stream, position, complete: false, entries: [] };
  return { stream, position, complete: page.complete, entries: page.entries };
}

/** Sends the publications of every stream in the order they were accepted, waiting for the client to read as it goes. */
async function sendReplays(node: GatewayNode, conn: Connection, replays: StreamReplay[]): Promise<void> {
  const entries = replays.flatMap((r) => r.entries).sort((a, b) => a.order - b.order);
  await sendPaced(conn, entries, (pub) => node.replayFrames.frameOf(pub));
}

/**
 * Queues each item's frame once the client has read most of the ones before, so however many there are,
 * none is closed as slow for them. A frame is encoded only when its turn comes: none for a client gone mid-way.
 */
async function sendPaced<T>(conn: Connection, items: readonly T[], frameOf: (item: T) => Buffer): Promise<void> {
  for (const item of items) {
    if (!conn.enqueue(frameOf(item))) return;
    // awaited only when the client is behind: a promise per frame would cost more than the frame
    if (!conn.isWritable) await conn.writable();
  }
}

/**
 * True when nothing was published to a room after the client's position in it. For a room the session left while
 * the client was away, a publication after `since` may have come before the leave, while it was a member: the
 * session keeps no record of where it left, so any publication after `since` (or another epoch) makes the resume
 * say recovered:false rather than claim a push it never replayed.
 */
async function nothingAfter(node: GatewayNode, room: string, since: StreamPosition): Promise<boolean> {
  // the broker's, not this node's view: a node still filling a gap (cut off from Redis a moment ago) may lag behind it
  const now = await node.broker.streamPosition(room);
  return now.epoch === since.epoch && now.seq <= since.seq;
}

/** True when the client's position in `*` is at or past the one in this connection's welcome (same epoch). */
function reachedWelcome(conn: Connection, start: StreamPosition | undefined): boolean {
  const welcome = conn.welcomeAll;
  return start !== undefined && welcome !== undefined && start.epoch === welcome.epoch && start.seq >= welcome.seq;
}

/** Runs the tasks at once; once every one has settled, their results, or the first failure thrown. */
async function settleAll<T>(tasks: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(tasks);
  const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
  return results.map((result) => (result as PromiseFulfilledResult<T>).value);
}

/** A resume reading its streams, once the connection holds the session and its rooms. */
interface Resuming {
  node: GatewayNode;
  conn: Connection;
  since: Map<string, StreamPosition>;
  sessionRooms: ReadonlyMap<string, StreamPosition | undefined>;
  /** Pushes to all went out live before the hold began (the resume came past the grace period)... */
  allWentLive: boolean;
  /** ...up to this position. */
  allAtHold: StreamPosition | undefined;
  /** When the connection had entered every stream it resumes (Connection.enteredAt): history reads issued after it may be shared. */
  joinedAt: number;
}

/** Where the connection stands in one stream after the resume, whether it missed nothing, and what to replay. */
interface StreamOutcome {
  position: StreamPosition;
  complete: boolean;
  replay?: StreamReplay;
}

async function resumeStream({ node, conn, since, sessionRooms, allWentLive, allAtHold, joinedAt }: Resuming, stream: string): Promise<StreamOutcome> {
  let start = since.get(stream);
  if (start === undefined && stream !== ALL_STREAM) {
    // a room the client does not know it is in (joined while it was away): announce it, replay from the join
    start = sessionRooms.get(stream);
    // a room left by wsId meanwhile is no longer tracked here
    const announced = start ?? node.position(stream) ?? (await node.broker.streamPosition(stream));
    conn.enqueue(encodeTextFrame(joinedFrame(stream, announced.seq, announced.epoch)));
  }
  if (stream === ALL_STREAM && allWentLive) {
    // every push to all since the welcome reached this connection: complete if the client had what came before it
    const complete = reachedWelcome(conn, start);
    return { position: allAtHold ?? (await node.broker.streamPosition(stream)), complete };
  }
  if (start === undefined) return { position: node.position(stream) ?? (await node.broker.streamPosition(stream)), complete: false };
  const replay = await fetchReplay(node, stream, start, joinedAt);
  return { position: replay.position, complete: replay.complete, replay };
}

/** What a resume needs of its gateway: the node, its --auth mode (which bounds what a token takes back) and its log. */
export interface ResumeContext {
  node: GatewayNode;
  auth: AuthMode;
  log: Logger;
}

export async function resume(ctx: ResumeContext, conn: Connection, request: ResumeRequest, firstFrame: boolean): Promise<void> {
  try {
    await resumeSession(ctx, conn, request, firstFrame);
  } finally {
    // only a resume as the first frame reads it; a late one must leave it to the first, which may still be under way
    if (firstFrame) conn.welcomeAll = undefined;
  }
}

/** Closes the resuming connection with 1013: its client resumes again, with the same token, after a backoff. `keepSession`: it holds the session, which goes back away. */
function retryLater(node: GatewayNode, conn: Connection, err: unknown, keepSession: boolean): void {
  node.removeConnection(conn, keepSession);
  // a connection its client (or a shutdown) closed meanwhile is not closed again, nor counted
  if (!conn.isOpen) return;
  conn.close('tryAgainLater', `cannot resume now: ${errorMessage(err)}`);
  node.counters.resumeRetryCloses++;
}

async function resumeSession({ node, auth, log }: ResumeContext, conn: Connection, request: ResumeRequest, firstFrame: boolean): Promise<void> {
  const refuse = (code: 'bad_request' | 'bad_resume', message: string): void => {
    // the client only sees an error frame (behind a replay still under way, for a late resume): say why here too
    log.debug({ wsId: conn.wsId, id: request.id, code, reason: message }, 'resume refused');
    // a late resume must leave the hold alone: it may be the one of a resume still replaying
    if (firstFrame) conn.releaseHeld();
    conn.send(encodeTextFrame(errorFrame(request.id, code, message)));
  };
  if (!firstFrame) return refuse('bad_request', 'resume must be the first frame after the welcome');
  const since = parseSince(request.since, maxSinceStreams(node));
  if (typeof since === 'string') return refuse('bad_request', since);

  // Until the resume ends, live frames wait whatever their size (a newcomer's hold lets them go past a
  // budget): one sent now would move the client's positions past what it missed, for this resume or
  // the next one if this is closed with 1013.
  if (conn.holding) conn.holdLive();
  // the session's owner is checked against who the client is, after the auth frames it sent before the resume
  await conn.tokenOps;
  // closed meanwhile (its client left, or a shutdown): nothing is claimed, the session stays as it is
  if (!conn.isOpen) return;
  const claim = node.tokens.verify(request.token, conn.uid);
  if (claim === undefined || claim.wsId === conn.wsId) return refuse('bad_resume', 'the resume token is forged, foreign or expired, or was signed with a secret this server does not have (as after a restart of the memory engine without --resume-secret)');
  const { wsId } = claim;
  let taken;
  try {
    taken = await node.claimSession(wsId, conn.uid);
  } catch (err) {
    // the session is left as it is: the client resumes again, with the same token, after a backoff
    return retryLater(node, conn, err, false);
  }
  const contended = `session ${wsId} is being resumed by another connection`;
  if (taken.status === 'busy') return refuse('bad_resume', contended);
  if (taken.status === 'foreign') return refuse('bad_resume', `session ${wsId} belongs to another user`);
  // a token issued before its session had a user (an anonymous welcome, where an auth frame may follow): once
  // the session has ended nothing says whose it became, so neither a user nor an anonymous connection takes its wsId
  if (taken.status === 'gone' && !claim.issuedToUser && (conn.uid !== undefined || auth !== 'off')) {
    node.giveBack(conn, taken, wsId);
    return refuse('bad_resume', `session ${wsId} has ended, and its token was issued before it had a user`);
  }
  const sessionRooms = taken.status === 'taken' ? taken.session.rooms : new Map<string, StreamPosition | undefined>();
  // the new connection is already gone: leave the session as it was found
  if (!conn.isOpen) return node.giveBack(conn, taken, wsId);
  if (!node.adopt(conn, wsId)) return refuse('bad_resume', contended);

  let recovered = taken.status === 'taken';
  // a room the session joined past the client's position in it (same epoch) was left and joined again by wsId
  // while the client did not hear it: what came between may have come while it was out, so it is replayed from
  // that join, and what the client missed before the leave is not (the session keeps no record of where it left)
  for (const [room, at] of sessionRooms) {
    const known = since.get(room);
    if (at === undefined || known === undefined || at.epoch !== known.epoch || at.seq <= known.seq) continue;
    since.set(room, at);
    recovered = false;
  }
  // past the grace period, pushes to all already went out live: from here on they are held, after this position
  const allWentLive = !conn.holding;
  const allAtHold = node.position(ALL_STREAM);
  conn.holdLive();
  try {
    const roomsBefore = [...conn.rooms.keys()];
    // a room the client names it knows from its since; one it does not, from where the session joined it
    const joinedAt = new Map([...sessionRooms].map(([room, at]) => [room, since.get(room) ?? at]));
    node.restoreBegins(conn, joinedAt);
    try {
      await settleAll([...joinedAt].map(([room, at]) => node.restore(conn, room, at)));
    } catch (err) {
      // a room the connection cannot be put back in (the broker failed) is not dropped: the session goes
      // back away with every room, the ones not restored too, and the client resumes again
      return retryLater(node, conn, err, true);
    } finally {
      node.restoreEnded(conn);
    }
    // `*`, then the rooms in the order they were restored one after another before; a room left by wsId since it
    // was restored is replayed too (up to its leave, whose `left` frame is held behind the replay)
    const restored = new Set([...roomsBefore, ...sessionRooms.keys()]);
    const order = [ALL_STREAM, ...restored];
    const resuming: Resuming = { node, conn, since, sessionRooms, allWentLive, allAtHold, joinedAt: conn.enteredAt };
    const outcomes = await settleAll(order.map((stream) => resumeStream(resuming, stream)));
    // a Map, not an object: a room may be named __proto__
    const streams = new Map<string, StreamPosition>();
    const replays: StreamReplay[] = [];
    outcomes.forEach((outcome, i) => {
      streams.set(order[i], outcome.position);
      if (!outcome.complete) recovered = false;
      if (outcome.replay !== undefined) replays.push(outcome.replay);
    });
    await sendReplays(node, conn, replays);
    const caught = await node.caughtUp(streams, CATCH_UP_MS);
    const replayedTo = new Map([...streams].map(([stream, position]) => [stream, position.seq]));
    // rooms the session had left before this resume took it; one left during the resume has its own `left` held
    const gone = [...since.keys()].filter((room) => room !== ALL_STREAM && !restored.has(room));
    if (recovered && !(await settleAll(gone.map((room) => nothingAfter(node, room, since.get(room)!)))).every(Boolean)) recovered = false;
    await sendPaced(conn, gone, (room) => encodeTextFrame(leftFrame(room)));
    node.counters.resumes++;
    conn.enqueue(encodeTextFrame(resumedFrame(wsId, node.tokens.issue(wsId, conn.uid), recovered, streams)));
    conn.releaseHeld(replayedTo);
    if (!caught) {
      conn.skipReplayed(replayedTo);
      // woken as the track reaches the last replayed seq, before that publication is fanned out: a then() runs after it
      void node.caughtUp(streams, SKIP_REPLAYED_MS).then(() => conn.skipReplayed(undefined));
    }
  } catch {
    // the broker failed mid-way: the connection keeps the session and its rooms, but cannot say what it missed
    conn.enqueue(encodeTextFrame(resumedFrame(wsId, node.tokens.issue(wsId, conn.uid), false, new Map())));
    conn.releaseHeld();
  }
}
