/**
 * The embedded engine: every gateway node lives in this process, so a
 * publication is handed to each node directly and a command goes straight to
 * the node that holds the wsId. It models the Redis engine's behaviour (rooms
 * opened per node, a wsId registry, away sessions, history) so one contract
 * suite covers both.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { ALL_STREAM } from '../protocol/room-id.js';
import { DEFAULT_HISTORY, StreamHistory, type HistoryLimits } from '../history/ring.js';
import { HistoryBudget } from '../history/budget.js';
import { commandAway, DEFAULT_RECOVERY_WINDOW_MS, type AwayStore } from './away.js';
import {
  clusterStats,
  historyPage,
  publishedAnswer,
  repeatedPublication,
  roomLimitRefusal,
  type Broker,
  type ClusterReport,
  type ClusterStats,
  type ConnCommand,
  type ConnInfo,
  type GatewayHandler,
  type HistoryPage,
  type LeftSession,
  type Publication,
  type Published,
  type PushClaim,
  type PushMessage,
  type PushOnce,
  type PushOutcome,
  type ReplyTo,
  type StreamPosition,
  type TakenSession,
  type UserPush,
} from './broker.js';
import { SetsByKey } from '../sets-by-key.js';
import { mergeMemberPages, RoomPager, type MemberPage, type RoomPage, type RoomQuery } from './room-page.js';
import { newEpoch } from './epoch.js';
import { PushKeys } from './push-keys.js';

export interface MemoryBrokerOptions {
  history?: HistoryLimits;
  /** Bytes the history of every stream may hold together; the oldest entries go past it (0 or undefined: no bound). */
  historyMaxMemory?: number;
  /** How long a dropped connection's session waits to be resumed; 0 ends sessions at once. */
  recoveryWindowMs?: number;
  /** Bytes the idempotency keys of pushes may count for together; the oldest go past it (src/broker/push-keys.ts). */
  pushKeysMaxBytes?: number;
}

interface StreamState extends StreamPosition {
  history: StreamHistory;
  /** Kept at least until then, whatever else (a push, a history read, a session taking back its rooms). */
  keepUntil: number;
  /**
   * Away sessions in the stream: each keeps it, so it resumes from its position
   * in the same epoch. Counted, not timed: a session ended early (by the limits
   * of away sessions, or a kick) keeps nothing.
   */
  awaySessions: number;
}

interface Away {
  uid: string | undefined;
  rooms: Map<string, StreamPosition | undefined>;
  expiresAt: number;
  /** The rooms limit of the node the session left (0: none). */
  maxRooms: number;
  /** The node the session left. */
  node: string;
}

const SWEEP_MS = 1000;

/** The claim id of a publish's key: it is claimed and settled with nothing in between. */
const PUBLISH_CLAIM = 'publish';

export class MemoryBroker implements Broker {
  readonly engine = 'memory';
  /**
   * A push here is a write to a connection's buffer in this process, and a settle never fails (a
   * process that dies takes its keys with it): a claim is unsettled only while its push is made.
   */
  readonly longestPushMs = 5000;
  private readonly nodes = new Map<string, GatewayHandler>();
  /** room -> ids of the nodes that have members in it */
  private readonly roomNodes = new SetsByKey<string>();
  private readonly connNodes = new Map<string, GatewayHandler>();
  /** uid -> ids of the nodes that hold a connection of that user */
  private readonly userNodes = new SetsByKey<string>();
  private readonly streams = new Map<string, StreamState>();
  private readonly away = new Map<string, Away>();
  private readonly pushKeys: PushKeys;
  /** Joins refused to away sessions by the rooms limit. */
  private awayRoomLimitRefusals = 0;
  private readonly historyLimits: HistoryLimits;
  private readonly historyBudget: HistoryBudget | undefined;
  readonly recoveryWindowMs: number;
  private readonly secret = randomBytes(32).toString('base64url');
  private readonly sweepTimer: NodeJS.Timeout;
  /** Ranks every publication across streams, so a replay of several streams keeps their original order. */
  private order = 0;

  constructor(options: MemoryBrokerOptions = {}) {
    this.historyLimits = options.history ?? DEFAULT_HISTORY;
    const maxMemory = options.historyMaxMemory ?? 0;
    this.historyBudget = maxMemory > 0 ? new HistoryBudget(maxMemory) : undefined;
    this.recoveryWindowMs = options.recoveryWindowMs ?? DEFAULT_RECOVERY_WINDOW_MS;
    this.pushKeys = new PushKeys(options.pushKeysMaxBytes);
    this.positionOf(ALL_STREAM);
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS).unref();
  }

  async attachGateway(handler: GatewayHandler): Promise<void> {
    this.nodes.set(handler.nodeId, handler);
  }

  async detachGateway(handler: GatewayHandler): Promise<void> {
    this.nodes.delete(handler.nodeId);
    this.roomNodes.deleteEverywhere(handler.nodeId);
    this.userNodes.deleteEverywhere(handler.nodeId);
    for (const [wsId, node] of this.connNodes) if (node === handler) this.connNodes.delete(wsId);
  }

  async roomOpened(nodeId: string, room: string): Promise<void> {
    this.roomNodes.add(room, nodeId);
  }

  async roomClosed(nodeId: string, room: string): Promise<void> {
    // the stream stays while an away session is in it (connClosed follows) or it holds history
    this.roomNodes.delete(room, nodeId);
  }

  async userOpened(nodeId: string, uid: string): Promise<void> {
    this.userNodes.add(uid, nodeId);
  }

  async userClosed(nodeId: string, uid: string): Promise<void> {
    this.userNodes.delete(uid, nodeId);
  }

  connOpened(nodeId: string, wsId: string): void {
    const node = this.nodes.get(nodeId);
    if (node !== undefined) this.connNodes.set(wsId, node);
  }

  connClosed(nodeId: string, wsId: string, away?: LeftSession): void {
    const holder = this.connNodes.get(wsId);
    // a node whose connection's session was taken by another one has no say over it any more
    if (holder !== undefined && holder.nodeId !== nodeId) return;
    this.connNodes.delete(wsId);
    if (away === undefined || this.recoveryWindowMs === 0) return;
    this.endAway(wsId);
    const rooms = new Map(away.rooms);
    for (const room of rooms.keys()) this.positionOf(room).awaySessions++;
    const maxRooms = this.nodes.get(nodeId)?.maxRoomsPerConnection ?? 0;
    this.away.set(wsId, { uid: away.uid, rooms, expiresAt: Date.now() + this.recoveryWindowMs, maxRooms, node: nodeId });
  }

  async dropAway(nodeId: string, wsId: string): Promise<boolean> {
    return this.liveAway(wsId)?.node === nodeId && this.endAway(wsId);
  }

  // the node that holds a connected session keeps its rooms; this process dies with it
  sessionJoined(): void {}
  sessionLeft(): void {}

  async takeSession(nodeId: string, wsId: string, uid: string | undefined): Promise<TakenSession> {
    const holder = this.connNodes.get(wsId);
    if (holder !== undefined && holder.nodeId !== nodeId) {
      const answer = holder.yieldSession(wsId, uid);
      if (answer === 'claiming') return { status: 'busy' };
      if (answer === 'foreign') return { status: 'foreign' };
    }
    const session = this.liveAway(wsId);
    if (session !== undefined && session.uid !== uid) return { status: 'foreign' };
    const taker = this.nodes.get(nodeId);
    if (taker !== undefined) this.connNodes.set(wsId, taker);
    else this.connNodes.delete(wsId);
    if (session === undefined) return { status: 'gone' };
    // kept while the resuming node opens its rooms again
    this.endAway(wsId, true);
    return { status: 'taken', session: { wsId, uid, rooms: session.rooms } };
  }

  async resumeSecret(): Promise<string> {
    return this.secret;
  }

  /** Keeps nothing by itself: a node reads it as it opens a room, which then lasts while it has members, history or an away session. */
  async streamPosition(stream: string): Promise<StreamPosition> {
    const { seq, epoch } = this.positionOf(stream);
    return { seq, epoch };
  }

  async history(stream: string, after: number, limit: number): Promise<HistoryPage> {
    const state = this.keep(this.positionOf(stream));
    return historyPage({ seq: state.seq, epoch: state.epoch }, after, state.history.after(after, limit, Date.now()));
  }

  /** Claims and settles `once` with no await between: no other push runs in between, as in Redis's script. */
  async publish(stream: string, message: PushMessage, once?: PushOnce): Promise<Published> {
    if (once !== undefined) {
      const claim = this.pushKeys.claim(once, PUBLISH_CLAIM, this.longestPushMs);
      if (claim.status === 'done') return repeatedPublication(stream, message, claim.answer);
    }
    const state = this.keep(this.positionOf(stream));
    state.seq += 1;
    const pub: Publication = { id: randomUUID(), stream, seq: state.seq, epoch: state.epoch, tag: message.tag, val: message.val };
    state.history.append({ ...pub, order: ++this.order }, Date.now());
    if (stream === ALL_STREAM) {
      for (const node of this.nodes.values()) node.onPublication(pub);
    } else {
      const nodeIds = this.roomNodes.get(stream);
      if (nodeIds !== undefined) for (const id of nodeIds) this.nodes.get(id)?.onPublication(pub);
    }
    if (once !== undefined) this.pushKeys.settle(once.key, PUBLISH_CLAIM, { status: 'made', answer: publishedAnswer(pub) });
    return pub;
  }

  async claimPush(once: PushOnce, claimId: string): Promise<PushClaim> {
    return this.pushKeys.claim(once, claimId, this.longestPushMs);
  }

  async settlePush(once: PushOnce, claimId: string, outcome: PushOutcome): Promise<void> {
    this.pushKeys.settle(once.key, claimId, outcome);
  }

  /** Bytes the idempotency keys of pushes count for, and how many are kept (src/broker/push-keys.ts). */
  get pushKeysHeld(): { bytes: number; keys: number } {
    return { bytes: this.pushKeys.bytes, keys: this.pushKeys.size };
  }

  async publishToUser(uid: string, message: PushMessage): Promise<{ id: string; nodes: number }> {
    const push: UserPush = { id: randomUUID(), uid, tag: message.tag, val: message.val };
    const nodeIds = this.userNodes.get(uid);
    if (nodeIds !== undefined) for (const id of nodeIds) this.nodes.get(id)?.onUserPush(push);
    return { id: push.id, nodes: nodeIds?.size ?? 0 };
  }

  async userConnections(uid: string): Promise<ConnInfo[]> {
    return [...this.nodes.values()].flatMap((node) => node.userConnections(uid));
  }

  async command<C extends ConnCommand>(cmd: C): Promise<ReplyTo<C> | undefined> {
    const node = this.connNodes.get(cmd.wsId);
    // undefined from the node: its connection went away meanwhile, leaving its session away (or ended)
    const reply = node === undefined ? undefined : await node.onCommand(cmd);
    return reply ?? commandAway(cmd, this.awayStore, (room) => this.streamPosition(room));
  }

  async roomPage(query: RoomQuery): Promise<RoomPage> {
    // roomNodes lists each room with members once, with the nodes that have them (as publish fans out)
    const pager = new RoomPager(query);
    for (const room of this.roomNodes.keys()) pager.offer(room);
    return pager.page((room) => {
      let members = 0;
      for (const nodeId of this.roomNodes.get(room) ?? []) members += this.nodes.get(nodeId)?.roomSize(room) ?? 0;
      return members;
    });
  }

  async roomMemberPage(room: string, page: { offset: number; limit: number }): Promise<MemberPage> {
    return mergeMemberPages(
      [...this.nodes.values()].map((node) => node.roomMemberPage(room, page.offset + page.limit)),
      page,
    );
  }

  async stats(): Promise<ClusterStats> {
    const perNode = [...this.nodes.values()].map((node) => node.stats());
    return clusterStats(perNode, this.roomNodes.size, {
      awayRoomLimitRefusals: this.awayRoomLimitRefusals,
      historyEvictions: this.historyEvictions,
      pushKeyEvictions: this.pushKeys.evictions,
      settingsMismatch: [],
      versionMismatch: [],
    });
  }

  /** Bytes the history of every stream holds, as --history-max-memory counts them (0 when it is 0: nothing is counted). */
  get historyBytes(): number {
    return this.historyBudget?.bytes ?? 0;
  }

  private get historyEvictions(): number {
    return this.historyBudget?.evictions ?? 0;
  }

  async clusterReport(): Promise<ClusterReport> {
    return {
      nodes: new Map([...this.nodes].map(([nodeId, node]) => [nodeId, node.report()])),
      rooms: this.roomNodes.size,
      awayRoomLimitRefusals: this.awayRoomLimitRefusals,
      historyEvictions: this.historyEvictions,
      pushKeyEvictions: this.pushKeys.evictions,
    };
  }

  isReady(): boolean {
    return true;
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.nodes.clear();
    this.roomNodes.clear();
    this.userNodes.clear();
    this.connNodes.clear();
    this.away.clear();
    this.pushKeys.clear();
  }

  private readonly awayStore: AwayStore = {
    get: async (wsId) => {
      const session = this.liveAway(wsId);
      return session && { uid: session.uid, rooms: [...session.rooms.keys()], expiresAt: session.expiresAt };
    },
    addRoom: async (wsId, room, joinedAt) => {
      const session = this.liveAway(wsId);
      if (session === undefined || session.rooms.has(room)) return { changed: false };
      if (session.maxRooms > 0 && session.rooms.size >= session.maxRooms) {
        this.awayRoomLimitRefusals++;
        return { changed: false, refused: roomLimitRefusal(session.rooms.size) };
      }
      session.rooms.set(room, joinedAt);
      this.positionOf(room).awaySessions++;
      return { changed: true };
    },
    removeRoom: async (wsId, room) => {
      if (this.liveAway(wsId)?.rooms.delete(room) !== true) return false;
      this.leaveStream(room);
      return true;
    },
    end: async (wsId) => this.endAway(wsId),
  };

  private liveAway(wsId: string): Away | undefined {
    const session = this.away.get(wsId);
    if (session === undefined || session.expiresAt > Date.now()) return session;
    this.endAway(wsId);
    return undefined;
  }

  /** Ends an away session: its streams no longer wait for it (with `keepStreams`, they are kept a window more). False when there was none. */
  private endAway(wsId: string, keepStreams = false): boolean {
    const session = this.away.get(wsId);
    if (session === undefined) return false;
    this.away.delete(wsId);
    for (const room of session.rooms.keys()) {
      const state = this.leaveStream(room);
      if (keepStreams && state !== undefined) this.keep(state);
    }
    return true;
  }

  private leaveStream(room: string): StreamState | undefined {
    const state = this.streams.get(room);
    if (state !== undefined) state.awaySessions--;
    return state;
  }

  /** The stream, created (in a new epoch) when it is not known. */
  private positionOf(stream: string): StreamState {
    let state = this.streams.get(stream);
    if (state === undefined) {
      state = { seq: 0, epoch: newEpoch(), history: new StreamHistory(this.historyLimits, this.historyBudget), keepUntil: 0, awaySessions: 0 };
      this.streams.set(stream, state);
    }
    return state;
  }

  /** Kept for the recovery window from now, whatever else. */
  private keep(state: StreamState): StreamState {
    state.keepUntil = Date.now() + this.recoveryWindowMs;
    return state;
  }

  /**
   * Forgets expired sessions, and streams no node has members in, no away
   * session is in and whose history is empty, once nothing else keeps them.
   */
  private sweep(): void {
    const now = Date.now();
    this.pushKeys.sweep(now);
    for (const [wsId, session] of this.away) if (session.expiresAt <= now) this.endAway(wsId);
    for (const [stream, state] of this.streams) {
      const unused = !this.roomNodes.has(stream) && state.awaySessions === 0 && state.keepUntil <= now;
      if (stream !== ALL_STREAM && unused && state.history.isEmpty(now)) this.streams.delete(stream);
    }
  }

}
