/**
 * Sessions in Redis: each connection's registry entry (the node holding its
 * wsId) and session hash (its user and rooms), written as the node's
 * connections come, join, leave and go; the handover of a session to a resume
 * on another node; and away sessions, which commands by wsId change while no
 * connection holds them.
 */
import { commandAway, type AwayStore } from '../away.js';
import {
  BrokerUnavailableError,
  roomLimitRefusal,
  type ConnCommand,
  type GatewayHandler,
  type LeftSession,
  type ReplyTo,
  type StreamPosition,
  type TakenSession,
} from '../broker.js';
import type { RedisCalls } from './calls.js';
import type { RedisNames } from './keys.js';
import type { NodeRequests } from './node-requests.js';
import { NodeRegistry } from './registry.js';
import { ADD_AWAY_ROOM, CLOSE_CONN, DROP_AWAY, END_AWAY, RELEASE_CONN, REMOVE_AWAY_ROOM, ROOMS_LIMIT_FIELD, SESSION_HELD, SESSION_MARKER, TAKE_SESSION } from './scripts.js';

/**
 * A change to an away session that a resume took between finding it and
 * changing it: a node holds the wsId now, so the command goes to that node.
 */
export class SessionHeldError extends BrokerUnavailableError {
  constructor(wsId: string) {
    super(`session ${wsId} was resumed while the command was applied to it; try again`);
    this.name = 'SessionHeldError';
  }
}

function heldOr(reply: number | typeof SESSION_HELD, wsId: string): number {
  if (reply === SESSION_HELD) throw new SessionHeldError(wsId);
  return reply;
}

/** How long a resume waits for the node that holds the session to hand it over; a silent node keeps it (the client retries). */
const TAKEOVER_PROBE_MS = 1000;

/** The fields of a session hash that are not rooms start with `#`, which is in no room id. */
function isRoomField(field: string): boolean {
  return !field.startsWith('#');
}

function parsePosition(value: string | undefined): StreamPosition | undefined {
  const colon = value?.indexOf(':') ?? -1;
  if (value === undefined || colon < 1) return undefined;
  return { seq: Number(value.slice(0, colon)), epoch: value.slice(colon + 1) };
}

export interface SessionSettings {
  /** How long a wsId stays in the registry unless its node refreshes it. */
  registryTtlMs: number;
  /** How long a dropped connection's session waits to be resumed; 0 ends sessions at once. */
  recoveryWindowMs: number;
}

export class RedisSessions {
  /** The attached gateway node's rooms limit, written with each of its sessions. */
  roomsLimit = 0;
  private readonly registry: NodeRegistry;
  /** The closes of the node's connections that failed to reach Redis (e.g. its connection dropped), by wsId. */
  private readonly unwrittenCloses = new Map<string, { args: string[]; at: number }>();
  private readonly registryTtlMs: number;
  private readonly recoveryWindowMs: number;

  constructor(
    private readonly names: RedisNames,
    private readonly calls: RedisCalls,
    private readonly nodes: NodeRequests,
    private readonly positionOf: (room: string) => Promise<StreamPosition>,
    settings: SessionSettings,
  ) {
    this.registryTtlMs = settings.registryTtlMs;
    this.recoveryWindowMs = settings.recoveryWindowMs;
    this.registry = new NodeRegistry(names, (lua, keys, args) => calls.runScript(lua, keys, args), (err, doing) => calls.logError(err, doing));
  }

  /** A connected session outlives its registry entry by the recovery window, so a killed node's sessions can still be resumed. */
  get sessionTtlMs(): number {
    return this.registryTtlMs + this.recoveryWindowMs;
  }

  opened(nodeId: string, wsId: string, uid?: string): void {
    this.unwrittenCloses.delete(wsId);
    const batch = this.calls.client.multi().set(this.names.connKey(wsId), nodeId, { PX: this.registryTtlMs });
    if (this.recoveryWindowMs > 0) {
      const session = this.names.sessionKey(wsId);
      batch.hSet(session, this.sessionMeta(uid)).pExpire(session, this.sessionTtlMs);
    }
    batch.execAsPipeline().catch((err: unknown) => this.missed(wsId, err, 'registering a connection'));
  }

  closed(nodeId: string, wsId: string, away?: LeftSession): void {
    this.registry.forget(wsId);
    const keep = away !== undefined && this.recoveryWindowMs > 0;
    const args = keep ? [nodeId, String(this.recoveryWindowMs), away.uid ?? '', String(this.roomsLimit)] : [nodeId, '0'];
    if (keep) for (const [room, at] of away.rooms) args.push(room, at === undefined ? '' : `${at.seq}:${at.epoch}`);
    this.writeClose(wsId, args, Date.now());
  }

  /**
   * A close that did not reach Redis is written again with the next refresh
   * (at once when the connection is back): left as it was, the session would
   * stay named as connected, then look away, and a resume would take it back
   * (a kick undone). Past the session's lifetime Redis has let it go by itself.
   */
  private writeClose(wsId: string, args: string[], at: number): void {
    this.calls.runScript(CLOSE_CONN, [this.names.connKey(wsId), this.names.sessionKey(wsId)], args).catch((err: unknown) => {
      this.calls.logError(err, 'releasing a connection');
      const newer = this.unwrittenCloses.get(wsId);
      if (Date.now() - at < this.sessionTtlMs && (newer === undefined || newer.at < at)) this.unwrittenCloses.set(wsId, { args, at });
    });
  }

  async dropAway(nodeId: string, wsId: string): Promise<boolean> {
    return (await this.calls.runScriptBounded(DROP_AWAY, [this.names.connKey(wsId), this.names.sessionKey(wsId)], [nodeId])) === 1;
  }

  joined(wsId: string, room: string): void {
    if (this.recoveryWindowMs === 0) return;
    this.calls.client.hSet(this.names.sessionKey(wsId), room, '').catch((err: unknown) => this.missed(wsId, err, 'recording a join'));
  }

  left(wsId: string, room: string): void {
    if (this.recoveryWindowMs === 0) return;
    this.calls.client.hDel(this.names.sessionKey(wsId), room).catch((err: unknown) => this.missed(wsId, err, 'recording a leave'));
  }

  /**
   * Rewrites the node's registry entries so they do not expire; with `full`
   * (after a reconnect, when Redis may have lost its data) the sessions' rooms
   * too (src/broker/redis/registry.ts).
   */
  refresh(gateway: GatewayHandler, full: boolean): void {
    for (const [wsId, { args, at }] of this.unwrittenCloses) {
      this.unwrittenCloses.delete(wsId);
      // a connection here holds the wsId again (a resume on this node): that close is past
      if (!gateway.holds(wsId)) this.writeClose(wsId, args, at);
    }
    const sessionTtlMs = this.recoveryWindowMs > 0 ? this.sessionTtlMs : 0;
    this.registry.refresh(gateway, { registryTtlMs: this.registryTtlMs, sessionTtlMs, roomsLimit: this.roomsLimit }, full);
  }

  async take(nodeId: string, wsId: string, uid: string | undefined): Promise<TakenSession> {
    const connKey = this.names.connKey(wsId);
    const owner = await this.calls.bounded(() => this.calls.client.get(connKey));
    if (owner === nodeId) {
      // the caller's node holds no connection of it (it has checked): the entry is stale
      await this.calls.runScriptBounded(RELEASE_CONN, [connKey], [nodeId]);
    } else if (owner !== null) {
      const refusal = await this.askToYield(owner, wsId, uid);
      if (refusal !== undefined) return refusal;
    }
    // past its deadline the claim is not made: the resume was closed with 1013 by then, and retries
    const fields = (await this.calls.runBeforeDeadline(TAKE_SESSION, [this.names.sessionKey(wsId), connKey], [uid ?? '', nodeId, String(this.registryTtlMs)])) as string[];
    if (fields.length === 0) return { status: 'gone' };
    if (fields.length === 1) return { status: fields[0] === 'busy' ? 'busy' : 'foreign' };
    const rooms = new Map<string, StreamPosition | undefined>();
    for (let i = 0; i < fields.length; i += 2) {
      if (isRoomField(fields[i])) rooms.set(fields[i], parsePosition(fields[i + 1]));
    }
    return { status: 'taken', session: { wsId, uid, rooms } };
  }

  /** A command by wsId for a session no node holds: applied to its away session, if there is one. */
  async commandAway<C extends ConnCommand>(cmd: C): Promise<ReplyTo<C> | undefined> {
    if (this.recoveryWindowMs === 0) return undefined;
    return this.calls.bounded(() => commandAway(cmd, this.awayStore, this.positionOf));
  }

  /** Away sessions in Redis. */
  readonly awayStore: AwayStore = {
    get: async (wsId) => {
      const key = this.names.sessionKey(wsId);
      const [fields, ttl] = (await this.calls.client.multi().hGetAll(key).pTTL(key).exec()) as unknown as [Record<string, string>, number];
      const names = Object.keys(fields);
      if (names.length === 0 || ttl < 0) return undefined;
      const uid = fields[SESSION_MARKER];
      return { uid: uid === '' || uid === undefined ? undefined : uid, rooms: names.filter(isRoomField), expiresAt: Date.now() + ttl };
    },
    addRoom: async (wsId, room, at) => {
      const keys = [this.names.sessionKey(wsId), this.names.awayRefusalsKey, this.names.connKey(wsId)];
      const added = heldOr((await this.calls.runScript(ADD_AWAY_ROOM, keys, [room, `${at.seq}:${at.epoch}`])) as number | typeof SESSION_HELD, wsId);
      return added < 0 ? { changed: false, refused: roomLimitRefusal(-added) } : { changed: added === 1 };
    },
    removeRoom: async (wsId, room) => {
      const keys = [this.names.sessionKey(wsId), this.names.connKey(wsId)];
      return heldOr((await this.calls.runScript(REMOVE_AWAY_ROOM, keys, [room])) as number | typeof SESSION_HELD, wsId) === 1;
    },
    end: async (wsId) => (await this.calls.runScript(END_AWAY, [this.names.sessionKey(wsId), this.names.connKey(wsId), this.names.kickedKey(wsId)], [String(this.sessionTtlMs)])) === 1,
  };

  /**
   * Asks the node the registry names for a session to close its connection of
   * it; once it answers (or is found dead) the registry no longer names it. A
   * silent node keeps the session: two live connections never share a wsId.
   */
  private async askToYield(owner: string, wsId: string, uid: string | undefined): Promise<TakenSession | undefined> {
    const answer = await this.nodes.ask(owner, wsId, { type: 'yield', wsId, uid }, TAKEOVER_PROBE_MS);
    if (answer.status === 'silent') throw new BrokerUnavailableError(`the node holding the session did not answer within ${TAKEOVER_PROBE_MS} ms (${owner})`);
    if (answer.status === 'reconnecting') throw new BrokerUnavailableError(`the node holding the session is reconnecting to Redis; try again (${owner})`);
    if (answer.status !== 'answered') return undefined; // dead: ask() released its entry
    const { error, result } = answer.reply;
    if (error !== undefined) throw new BrokerUnavailableError(`the node holding the session could not hand it over: ${error} (${owner})`);
    if (result === 'foreign') return { status: 'foreign' };
    if (result === 'claiming') return { status: 'busy' };
    return undefined;
  }

  private sessionMeta(uid: string | undefined): Record<string, string> {
    return { [SESSION_MARKER]: uid ?? '', [ROOMS_LIMIT_FIELD]: String(this.roomsLimit) };
  }

  /** A write of a connection's session failed: the next refresh writes the node's view of it. */
  private missed(wsId: string, err: unknown, doing: string): void {
    this.registry.missed(wsId);
    this.calls.logError(err, doing);
  }
}
