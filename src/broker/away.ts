/**
 * Commands by wsId for a session that is away (its connection dropped, the
 * recovery window still open). Both engines keep away sessions in their own
 * store and share these rules: join and leave apply to the session and take
 * effect on resume, a join within the rooms limit of the node the session left
 * (refused past it, as for a connection); info shows it as away; kick ends it;
 * a push to the connection is not kept (it has no stream to replay from).
 */
import type { CommandReplies, ConnCommand, ConnInfo, ReplyTo, StreamPosition } from './broker.js';

export const DEFAULT_RECOVERY_WINDOW_MS = 2 * 60_000;

export interface AwayStore {
  /** The session's rooms and when its window closes, or undefined when there is no such session. */
  get(wsId: string): Promise<{ uid: string | undefined; rooms: string[]; expiresAt: number } | undefined>;
  /**
   * Adds a room joined while away, in one step with the check of the session's
   * rooms limit: unchanged when the session was already in it (or is gone),
   * refused (roomLimitRefusal) when it holds its limit; the store counts the
   * refusals (for GET /stats and /metrics).
   */
  addRoom(wsId: string, room: string, joinedAt: StreamPosition): Promise<CommandReplies['join']>;
  /** Removes a room; false when the session was not in it. */
  removeRoom(wsId: string, room: string): Promise<boolean>;
  /** Ends the session; false when there was none, or a connection took it meanwhile (a resume). */
  end(wsId: string): Promise<boolean>;
}

export async function commandAway<C extends ConnCommand>(
  cmd: C,
  store: AwayStore,
  positionOf: (room: string) => Promise<StreamPosition>,
): Promise<ReplyTo<C> | undefined> {
  const session = await store.get(cmd.wsId);
  if (session === undefined) return undefined;
  let reply: ReplyTo<ConnCommand>;
  switch (cmd.op) {
    case 'join':
      reply = session.rooms.includes(cmd.room) ? { changed: false } : await store.addRoom(cmd.wsId, cmd.room, await positionOf(cmd.room));
      break;
    case 'leave':
      reply = { changed: await store.removeRoom(cmd.wsId, cmd.room) };
      break;
    case 'push':
      reply = { delivered: false };
      break;
    case 'kick':
      reply = { kicked: await store.end(cmd.wsId) };
      break;
    case 'info':
      reply = awayInfo(cmd.wsId, session);
      break;
  }
  return reply as ReplyTo<C>;
}

/** What GET /conns/:wsId shows of a session that is away. */
export function awayInfo(wsId: string, { uid, rooms, expiresAt }: { uid: string | undefined; rooms: string[]; expiresAt: number }): ConnInfo {
  return { wsId, state: 'away', ...(uid === undefined ? {} : { uid }), rooms, awayUntil: new Date(expiresAt).toISOString() };
}
