/**
 * The seam between the gateway, the logic API and the engines that connect
 * them (DESIGN.md "broker"). It has two halves:
 *
 * - `Broker`: what the gateway and the logic call. Each engine (`memory`,
 *   `redis`) implements it; nothing outside `src/broker/` knows which one runs.
 * - `GatewayHandler`: what a gateway node implements. Engines call it when a
 *   publication or a command by wsId reaches that node, and to answer queries.
 */
import type { MemberPage, RoomPage, RoomQuery } from './room-page.js';

/** A message as pushed through the logic API. */
export interface PushMessage {
  tag: number;
  val: string;
}

/** A push accepted into a stream: a room, or `*` for all connections. */
export interface Publication extends PushMessage {
  id: string;
  stream: string;
  seq: number;
  epoch: string;
}

/** Where a stream stands: the seq of its last publication (0 before any) and its epoch. */
export interface StreamPosition {
  seq: number;
  epoch: string;
}

/** A publication as history keeps it: `order` ranks it among the publications of every stream. */
export interface HistoryEntry extends Publication {
  order: number;
}

/** Publications of one stream after some seq, as history still holds them. */
export interface HistoryPage extends StreamPosition {
  entries: HistoryEntry[];
  /** True when `entries` holds every seq from the one asked after up to `seq` (nothing was trimmed or expired). */
  complete: boolean;
}

/** `uid` is there for a connection whose client authenticated. */
export type ConnInfo =
  | { wsId: string; state: 'connected'; node: string; uid?: string; rooms: string[]; remoteAddress: string; connectedAt: string }
  | { wsId: string; state: 'away'; uid?: string; rooms: string[]; awayUntil: string };

/**
 * A push's idempotency key, scoped to what it pushes to (src/logic/push-once.ts):
 * a second push with the same key within `windowMs` is not made again, and gets
 * the first one's answer.
 */
export interface PushOnce {
  key: string;
  windowMs: number;
}

/** A publish as its caller gets it: `repeated` when a push with its idempotency key was made before (and this one was not). */
export type Published = Publication & { repeated?: boolean };

/**
 * What claiming an idempotency key for a push to a connection or a user finds:
 * `claimed` (the caller makes the push, then settles the key), `under-way` (a
 * push with it is being made, for at most `leftMs` more: past that, an
 * unsettled claim counts as `unknown`), `unknown` (a push with it failed with
 * its outcome unknown: it may have been made), `done` (made: its answer as the
 * caller settled it).
 */
export type PushClaim = { status: 'claimed' } | { status: 'under-way'; leftMs: number } | { status: 'unknown' } | { status: 'done'; answer: string };

/** How a claimed push ended: made with its answer, surely not made (its key is freed), or with its outcome unknown. */
export type PushOutcome = { status: 'made'; answer: string } | { status: 'not-made' } | { status: 'unknown' };

/** A push to every connection of one user. */
export interface UserPush extends PushMessage {
  id: string;
  uid: string;
}

/**
 * A session whose connection is gone, kept for the recovery window so a
 * reconnecting client can take it back. `rooms` maps each room to the position
 * at which the session joined it (undefined where that is not known): a
 * resume whose client does not name a room never heard it joined, and
 * replays it from there.
 */
export interface AwaySession {
  wsId: string;
  uid: string | undefined;
  rooms: Map<string, StreamPosition | undefined>;
}

/** What a connection that closed leaves for its away session: its user, and each room with the position it was joined at (where known). */
export interface LeftSession {
  uid: string | undefined;
  rooms: ReadonlyMap<string, StreamPosition | undefined>;
}

/**
 * What a resume gets for a session. `taken` (its away session) and `gone` (no
 * session left: the wsId alone) both claim the wsId for the resuming node.
 * `foreign`: the session belongs to another user than the one resuming it.
 * `busy`: another connection is taking it at this very moment.
 */
export type TakenSession = { status: 'taken'; session: AwaySession } | { status: 'gone' } | { status: 'foreign' } | { status: 'busy' };

/**
 * A node's answer when a resume elsewhere wants a session it may hold:
 * `yielded` (its connection is closed and the session is away now), `absent`
 * (no connection of that wsId here), `claiming` (a resume on this node is
 * taking it right now), `foreign` (its connection is another user's).
 */
export type YieldAnswer = 'yielded' | 'absent' | 'claiming' | 'foreign';

/**
 * How the broker holds a session of a node's connection otherwise than the
 * node (it changed while the node could not reach the broker): `taken` by a
 * resume on another node (the connection closes with 4500), `changed` by
 * commands by its wsId (4005: it resumes, to take the session as it is now),
 * `ended` by a kick (4003).
 */
export type SessionChange = 'taken' | 'changed' | 'ended';

/** Commands addressed to one connection by its wsId, and what each answers. */
export type ConnCommand =
  | { op: 'join'; wsId: string; room: string }
  | { op: 'leave'; wsId: string; room: string }
  | { op: 'push'; wsId: string; tag: number; val: string }
  | { op: 'kick'; wsId: string }
  | { op: 'info'; wsId: string };

export interface CommandReplies {
  /** `refused` says why the join was not made (a limit). */
  join: { changed: boolean; refused?: string };
  leave: { changed: boolean };
  push: { delivered: boolean };
  kick: { kicked: boolean };
  info: ConnInfo;
}

export type ReplyTo<C extends ConnCommand> = CommandReplies[C['op']];

/** Why a join was refused, the same for a connection and for an away session: the API answers it with 409. */
export function roomLimitRefusal(rooms: number): string {
  return `the connection is in ${rooms} ${rooms === 1 ? 'room' : 'rooms'}, the limit (--max-rooms-per-connection)`;
}

/** Counters kept by one gateway node; the cluster view sums them. */
export interface NodeStats {
  connections: number;
  rooms: number;
  deliveries: number;
  slowConsumerCloses: number;
  /** Connections closed (4005) because they missed publications history could not give back. */
  missedMessageCloses: number;
  /** Connections closed (4500) because a resume on another connection took their session over. */
  sessionTakenCloses: number;
  /** Resumes closed (1013) because they could not be decided then (broker away, or the session's node silent). */
  resumeRetryCloses: number;
  heartbeatTimeouts: number;
  malformedCloses: number;
  /** Connections closed (1009) for a message over --max-payload. */
  tooLargeCloses: number;
  kicks: number;
  resumes: number;
  /** Limits hit: connections refused, or closed, by each limit. */
  refusedMaxConnections: number;
  refusedMaxConnectionsPerIp: number;
  /** Connections refused (429, or 4029 after an auth frame) because their user held --max-connections-per-user on the node. */
  refusedMaxConnectionsPerUser: number;
  refusedConnectRate: number;
  refusedOrigin: number;
  frameRateCloses: number;
  roomLimitRefusals: number;
  /** Away sessions this node ended early to keep within its limits of away sessions (src/gateway/away-ledger.ts). */
  awaySessionsEnded: number;
  authFailures: number;
  tokenExpiries: number;
}

/** Fan-out times of one node since it started: observations per bucket (`counts[i]`: above bound i-1 of src/gateway/fanout-times.ts, at most bound i; the last: above every bound) and their sum (s). */
export interface FanoutTimesSnapshot {
  counts: number[];
  sum: number;
}

/** A gateway node's process. */
export interface ProcessReport {
  pid: number;
  residentBytes: number;
  heapUsedBytes: number;
  /** User and system CPU time since the process started. */
  cpuSeconds: number;
  /** 99th percentile of the event loop's delay over the last 10 s window (src/gateway/process-report.ts). */
  eventLoopDelaySeconds: number;
}

/** One gateway node's stats with its fan-out times and its process's figures, for /metrics. */
export interface NodeReport {
  nodeId: string;
  stats: NodeStats;
  fanout: FanoutTimesSnapshot;
  process: ProcessReport;
}

/** What /metrics reads from the broker in one go. */
export interface ClusterReport {
  /**
   * Each gateway node's report, by an id that is new each time a node starts
   * (src/metrics.ts keeps its counters from going down with them).
   */
  nodes: Map<string, NodeReport>;
  /** Rooms with members on any node (a room on two nodes counts once). */
  rooms: number;
  /** Joins refused to away sessions by the rooms limit: counted by the broker, not by a node (on Redis, in Redis). */
  awayRoomLimitRefusals: number;
  /** History entries the memory engine dropped to stay within --history-max-memory (0 on Redis, whose memory is its own). */
  historyEvictions: number;
  /** Idempotency keys the memory engine dropped before their window ended, to stay within its bound of them (0 on Redis). */
  pushKeyEvictions: number;
}

/** What a process on the broker serves. */
export const PROCESS_ROLES = ['gateway', 'logic', 'gateway+logic'] as const;
export type ProcessRole = (typeof PROCESS_ROLES)[number];

/** A process on the broker, as a settings mismatch names it: `id` is its broker process id, new at each start. */
export interface ClusterProcess {
  id: string;
  role: ProcessRole;
  pid: number;
  host: string;
}

/** A setting the live processes on one broker run with different values of (src/broker/redis/process-settings.ts). */
export interface SettingsMismatch {
  flag: string;
  /** Each value with the processes that run it, the most common value first. */
  values: { value: number; processes: ClusterProcess[] }[];
}

/** A roomcast version the live processes on one broker run while they do not all run one (src/broker/redis/versions.ts); null: a version too old to record it. */
export interface VersionMismatch {
  version: string | null;
  processes: ClusterProcess[];
}

/** What the broker counts itself, beside the nodes' stats. */
export interface BrokerCounts {
  awayRoomLimitRefusals: number;
  historyEvictions: number;
  pushKeyEvictions: number;
  settingsMismatch: SettingsMismatch[];
  versionMismatch: VersionMismatch[];
}

/** The totals of every gateway node attached now, with what the broker counts itself. */
export type ClusterStats = NodeStats & { nodes: number } & Omit<BrokerCounts, 'awayRoomLimitRefusals'>;

export interface GatewayHandler {
  readonly nodeId: string;
  /** Rooms one connection may be in (0: no limit); a session kept away keeps the limit of the node it left. */
  readonly maxRoomsPerConnection: number;
  /** Fan a publication out to this node's members of `pub.stream`. */
  onPublication(pub: Publication): void;
  /** The node's subscriptions dropped: publications may be missed until they are back. */
  onSubscriptionsLost(): void;
  /** The subscriptions are active again: what was published meanwhile is to be read from history. */
  onSubscriptionsRestored(): void;
  /** The shared resume secret changed (Redis lost it and another node stored its own): sign with it from now on. */
  onResumeSecret(secret: string): void;
  /** Send a push to this node's connections of `push.uid`. */
  onUserPush(push: UserPush): void;
  /** Apply a command to a local connection; undefined when the wsId is not here. */
  onCommand<C extends ConnCommand>(cmd: C): Promise<ReplyTo<C> | undefined>;
  /** Ids of the rooms this node has members in. */
  roomIds(): IterableIterator<string>;
  /** How many members `room` has on this node (0 when none). */
  roomSize(room: string): number;
  /** How many members `room` has on this node, and the first `first` of their wsIds in order. */
  roomMemberPage(room: string, first: number): MemberPage;
  /** This node's connections of a user. */
  userConnections(uid: string): ConnInfo[];
  /** Whether a connection with this wsId is on this node. */
  holds(wsId: string): boolean;
  /** A resume by `uid` takes the session `wsId` over: close its connection here (4500) and leave the session away. */
  yieldSession(wsId: string, uid: string | undefined): YieldAnswer;
  /** The broker holds the session of this node's `wsId` otherwise than the node: close the connection, leave the session alone. */
  sessionMoved(wsId: string, change: SessionChange): void;
  /** Every connection on this node with its rooms (to rebuild a registry that lost its data). */
  connections(): Iterable<{ wsId: string; uid: string | undefined; rooms: Iterable<string> }>;
  stats(): NodeStats;
  report(): NodeReport;
}

export interface RoomCount {
  room: string;
  members: number;
}

export interface Broker {
  readonly engine: string;
  /** How long a dropped connection's session is kept away; 0: sessions end with their connection. */
  readonly recoveryWindowMs: number;

  // --- gateway side ---
  attachGateway(handler: GatewayHandler): Promise<void>;
  detachGateway(handler: GatewayHandler): Promise<void>;
  /** The node's first member joined `room`: publications to it must reach the node once this resolves. */
  roomOpened(nodeId: string, room: string): Promise<void>;
  /** The node's last member left `room`. */
  roomClosed(nodeId: string, room: string): Promise<void>;
  connOpened(nodeId: string, wsId: string, uid?: string): void;
  /** The node's first connection of a user arrived: pushes to that user must reach the node once this resolves. */
  userOpened(nodeId: string, uid: string): Promise<void>;
  /** The node's last connection of a user is gone. */
  userClosed(nodeId: string, uid: string): Promise<void>;
  /**
   * The connection is gone. With `away`, its session is kept for the recovery
   * window with its rooms; without, the session ends.
   */
  connClosed(nodeId: string, wsId: string, away?: LeftSession): void;
  /**
   * Ends the away session `wsId` if it is still the one that left `nodeId` (not
   * resumed since, nor away again from another node); true when it ended one.
   */
  dropAway(nodeId: string, wsId: string): Promise<boolean>;
  /** A connected session joined or left a room (kept where a takeover on another node can find it). */
  sessionJoined(wsId: string, room: string): void;
  sessionLeft(wsId: string, room: string): void;
  /**
   * Claims a session for a resume by `uid` on `nodeId` (atomically: one taker
   * wins). A connection that holds it on another node is closed and its session
   * taken; the caller has dealt with its own node. Throws BrokerUnavailableError
   * when that cannot be decided now (broker down, or the holding node silent).
   */
  takeSession(nodeId: string, wsId: string, uid: string | undefined): Promise<TakenSession>;
  /** The secret every node signs and checks resume tokens with. */
  resumeSecret(): Promise<string>;
  streamPosition(stream: string): Promise<StreamPosition>;
  /** Publications of `stream` with seq > `after`, at most `limit`. */
  history(stream: string, after: number, limit: number): Promise<HistoryPage>;

  // --- logic side ---
  /**
   * Accept a push into `stream` (a room id or `*`); resolves once it is handed on. With `once`, the key is
   * checked and kept in the same atomic step as the publish: a key seen within its window publishes nothing
   * and resolves with the first publication's id, seq and epoch, `repeated`.
   */
  publish(stream: string, message: PushMessage, once?: PushOnce): Promise<Published>;
  /**
   * The longest a push to a connection or a user may take, claim to settle, as this broker's own
   * timeouts bound it: a claim unsettled for longer (its settle failed, or its process died) counts
   * as a push with its outcome unknown rather than one under way.
   */
  readonly longestPushMs: number;
  /**
   * Claims an idempotency key for a push that is not a publish (to a connection or a user), atomically: one
   * claimer wins. `claimId` (unique to the caller's request) names the claim, for its settle.
   */
  claimPush(once: PushOnce, claimId: string): Promise<PushClaim>;
  /**
   * How the push claimed as `claimId` ended. Only that claim, still unsettled, is changed: a key settled
   * since, or claimed anew by another request (its window ended meanwhile), is left alone.
   */
  settlePush(once: PushOnce, claimId: string, outcome: PushOutcome): Promise<void>;
  /** Push to every connection of a user, on every node; `nodes` is how many nodes hold one. */
  publishToUser(uid: string, message: PushMessage): Promise<{ id: string; nodes: number }>;
  userConnections(uid: string): Promise<ConnInfo[]>;
  /** Run a command on whichever node holds `cmd.wsId`; undefined when none does. */
  command<C extends ConnCommand>(cmd: C): Promise<ReplyTo<C> | undefined>;
  /** A page of the rooms with members on any node, sorted by id, with their member counts summed over the nodes. */
  roomPage(query: RoomQuery): Promise<RoomPage>;
  /** How many members `room` has on every node, and the page `offset`, `limit` of their wsIds in order. */
  roomMemberPage(room: string, page: { offset: number; limit: number }): Promise<MemberPage>;
  /** Totals across every gateway node; `roomLimitRefusals` includes the joins refused to away sessions. */
  stats(): Promise<ClusterStats>;
  clusterReport(): Promise<ClusterReport>;
  /** False while the engine cannot hand pushes on (e.g. Redis unreachable). */
  isReady(): boolean;
  close(): Promise<void>;
}

/** Builds a history page, judging whether the entries cover every seq after `after`. */
export function historyPage(position: StreamPosition, after: number, entries: HistoryEntry[]): HistoryPage {
  let complete = after <= position.seq;
  let expected = after + 1;
  for (const pub of entries) {
    if (pub.seq !== expected) complete = false;
    expected = pub.seq + 1;
  }
  // short of the current seq: cut by the page limit, or history lost the newest
  if (expected <= position.seq) complete = false;
  return { ...position, entries, complete };
}

/** What a node counts, as opposed to what it holds (connections, rooms). */
export type NodeCounters = Omit<NodeStats, 'connections' | 'rooms'>;

export function emptyNodeCounters(): NodeCounters {
  return {
    deliveries: 0,
    slowConsumerCloses: 0,
    missedMessageCloses: 0,
    sessionTakenCloses: 0,
    resumeRetryCloses: 0,
    heartbeatTimeouts: 0,
    malformedCloses: 0,
    tooLargeCloses: 0,
    kicks: 0,
    resumes: 0,
    refusedMaxConnections: 0,
    refusedMaxConnectionsPerIp: 0,
    refusedMaxConnectionsPerUser: 0,
    refusedConnectRate: 0,
    refusedOrigin: 0,
    frameRateCloses: 0,
    roomLimitRefusals: 0,
    awaySessionsEnded: 0,
    authFailures: 0,
    tokenExpiries: 0,
  };
}

export const NODE_COUNTER_KEYS = Object.keys(emptyNodeCounters()) as readonly (keyof NodeCounters)[];

export function emptyNodeStats(): NodeStats {
  return { connections: 0, rooms: 0, ...emptyNodeCounters() };
}

export function addNodeStats(into: NodeStats, from: NodeStats): NodeStats {
  for (const key of Object.keys(into) as (keyof NodeStats)[]) into[key] += from[key];
  return into;
}

/** The cluster's totals: each node's stats summed, with the rooms that have members on any node and what the broker counts itself. */
export function clusterStats(perNode: NodeStats[], rooms: number, { awayRoomLimitRefusals, ...broker }: BrokerCounts): ClusterStats {
  const total = emptyNodeStats();
  for (const stats of perNode) addNodeStats(total, stats);
  total.rooms = rooms;
  total.roomLimitRefusals += awayRoomLimitRefusals;
  return { ...total, nodes: perNode.length, ...broker };
}

/** Thrown by an engine that cannot hand a push or command on right now; the API answers 503. */
export class BrokerUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BrokerUnavailableError';
  }
}

/** How a publication made under an idempotency key is kept as its answer: `seq|epoch|id` (the Redis publish script writes the same). */
export function publishedAnswer(pub: Publication): string {
  return `${pub.seq}|${pub.epoch}|${pub.id}`;
}

/** The publication a repeat of a push answers with, from the kept answer of the first. */
export function repeatedPublication(stream: string, message: PushMessage, answer: string): Published {
  const [seq, epoch, id] = answer.split('|');
  return { id, stream, seq: Number(seq), epoch, tag: message.tag, val: message.val, repeated: true };
}
