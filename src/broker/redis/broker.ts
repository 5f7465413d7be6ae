/**
 * The Redis engine: many gateway and logic processes, one system.
 *
 * - Fan-out: a publish script assigns the stream's seq and PUBLISHes in one
 *   atomic step; each gateway subscribes to `all` and to the channel of every
 *   room it has members in (subscribe on the first local member, unsubscribe
 *   after the last).
 * - Commands by wsId: a registry key names the node holding each wsId (with an
 *   expiry, refreshed by its node); the command goes to that node's channel and
 *   the answer comes back on the caller's reply channel. A PUBLISH that reaches
 *   nobody means the node is gone (the session is away, or 404), unless the
 *   node's state says it is reconnecting to Redis (503, try again): see
 *   node-state.ts.
 * - Queries (room pages, members, stats) go to every node and are summed.
 *
 * Its parts: calls.ts (requests to Redis within a deadline), node-requests.ts
 * (asking and answering gateway nodes), sessions.ts (registry entries, session
 * handover, away sessions), streams.ts (publish, positions, history),
 * subscriptions.ts (the gateway's channels), resume-secret.ts, process-settings.ts
 * (the settings every process must share, compared across the cluster).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { createClient } from 'redis';
import { ALL_STREAM } from '../../protocol/room-id.js';
import { DEFAULT_HISTORY, type HistoryLimits } from '../../history/ring.js';
import { DEFAULT_RECOVERY_WINDOW_MS, type AwayStore } from '../away.js';
import { distinctRoomCount, mergeMemberPages, mergeNodePages, type MemberPage, type RoomPage, type RoomQuery } from '../room-page.js';
import {
  BrokerUnavailableError,
  clusterStats,
  type Broker,
  type ClusterReport,
  type ClusterStats,
  type ConnCommand,
  type ProcessRole,
  type ConnInfo,
  type GatewayHandler,
  type HistoryPage,
  type LeftSession,
  type Published,
  type PushClaim,
  type PushMessage,
  type PushOnce,
  type PushOutcome,
  type ReplyTo,
  type StreamPosition,
  type TakenSession,
} from '../broker.js';
import { ANSWER_GRACE_MS, RedisCalls, withTimeout, type Client } from './calls.js';
import { connectFailure } from './connect-failure.js';
import { RedisTooOldError, RedisVersionCheck } from './server-version.js';
import { warnIfEvicting } from './eviction.js';
import { RedisNames, redisDatabase, redisUser } from './keys.js';
import { NodeRequests } from './node-requests.js';
import { NodeState } from './node-state.js';
import { ProcessSettings } from './process-settings.js';
import type { PushLimits } from './push-fit.js';
import { SharedResumeSecret } from './resume-secret.js';
import { RedisSessions, SessionHeldError } from './sessions.js';
import { CLAIM_PUSH, SETTLE_PUSH } from './scripts.js';
import { KEEP_ROUND_BEATS, RedisStreams } from './streams.js';
import { GatewaySubscriptions } from './subscriptions.js';
import { RedisWatch } from './watch.js';
import type { NodeReply } from './wire.js';

export interface RedisBrokerOptions {
  url: string;
  prefix?: string;
  /** How long a wsId stays in the registry unless its node refreshes it. */
  registryTtlMs?: number;
  /** How long a command by wsId may wait for the node's answer. */
  requestTimeoutMs?: number;
  /** How long a cluster-wide query waits for every node. */
  queryTimeoutMs?: number;
  /**
   * How long a request may wait for Redis: a push Redis has not run by then is
   * never run (the API answers 503), and while a command has waited this long
   * for an answer Redis counts as not answering.
   */
  commandTimeoutMs?: number;
  history?: HistoryLimits;
  /** How long a dropped connection's session waits to be resumed; 0 ends sessions at once. */
  recoveryWindowMs?: number;
  connectTimeoutMs?: number;
  /** What the process serves, as other processes name it when its shared settings differ from theirs. */
  role?: ProcessRole;
  /** Its --max-val-size (logic) and --send-buffer-limit (gateway), checked against the other processes'. */
  pushLimits?: PushLimits;
}

/**
 * The longest a push to a connection or a user takes, claim to settle, as the timeouts bound each step:
 * a command by wsId runs at most twice (SessionHeldError), each time looking up its node (up to two
 * Redis requests and a query to every node), sending it the command (a Redis request, with its answer's
 * grace) and then either waiting for the node's answer and applying it to the away session (a Redis
 * request), or, when it reached no one, reading the node's state, forgetting it and applying it to the
 * away session (three Redis requests); the settle is one more Redis request. A push to a user (one Redis
 * request) takes less.
 */
function longestPushMs(commandTimeoutMs: number, queryTimeoutMs: number, requestTimeoutMs: number): number {
  const redisRequestMs = commandTimeoutMs + ANSWER_GRACE_MS;
  const afterSendMs = Math.max(requestTimeoutMs + redisRequestMs, 3 * redisRequestMs);
  const commandOnceMs = 2 * redisRequestMs + queryTimeoutMs + redisRequestMs + afterSendMs;
  return 2 * commandOnceMs + redisRequestMs;
}

export class RedisBroker implements Broker {
  readonly engine = 'redis';
  /** Its keys and channels (public for the tests, which look at them in Redis). */
  readonly names: RedisNames;
  readonly recoveryWindowMs: number;
  readonly longestPushMs: number;
  private gateway: GatewayHandler | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private outage = false;
  private readonly registryTtlMs: number;
  /** How often the process rewrites what it has in Redis (registryTtlMs / 3). */
  private readonly beatMs: number;
  private readonly requestTimeoutMs: number;
  private readonly redisWatch: RedisWatch;
  private readonly calls: RedisCalls;
  private readonly nodes: NodeRequests;
  private readonly nodeState: NodeState;
  private readonly sessions: RedisSessions;
  private readonly streams: RedisStreams;
  private readonly subscriptions: GatewaySubscriptions;
  private readonly secret: SharedResumeSecret;
  private readonly settings: ProcessSettings;

  private constructor(
    /** Names this process's reply channel and its Redis connections (CLIENT LIST). */
    readonly processId: string,
    private readonly commands: Client,
    private readonly subscriber: Client,
    options: RedisBrokerOptions,
    private readonly log: Logger,
  ) {
    this.names = new RedisNames(options.prefix ?? 'roomcast:', redisDatabase(options.url));
    this.registryTtlMs = options.registryTtlMs ?? 30_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
    this.recoveryWindowMs = options.recoveryWindowMs ?? DEFAULT_RECOVERY_WINDOW_MS;
    const commandTimeoutMs = options.commandTimeoutMs ?? 2_000;
    const queryTimeoutMs = options.queryTimeoutMs ?? 2_000;
    this.longestPushMs = longestPushMs(commandTimeoutMs, queryTimeoutMs, this.requestTimeoutMs);
    const gateway = (): GatewayHandler | undefined => this.gateway;
    this.redisWatch = new RedisWatch(commands, commandTimeoutMs);
    this.calls = new RedisCalls(commands, this.redisWatch, commandTimeoutMs, log);
    this.nodeState = new NodeState(commands, this.names, this.registryTtlMs);
    this.nodes = new NodeRequests(processId, this.names, this.calls, log, queryTimeoutMs, this.recoveryWindowMs, gateway, (nodeId) => this.nodeState.reconnecting(nodeId));
    this.sessions = new RedisSessions(this.names, this.calls, this.nodes, (room) => this.streamPosition(room), {
      registryTtlMs: this.registryTtlMs,
      recoveryWindowMs: this.recoveryWindowMs,
    });
    this.beatMs = Math.max(100, Math.floor(this.registryTtlMs / 3));
    // a killed node's sessions live sessionTtlMs after its last beat, which may come (in time, however late the
    // beats run: keepSlice) up to a round after the last keep of a stream they are in; the rest is margin
    const keptStreamSeconds = Math.ceil((this.sessions.sessionTtlMs + this.registryTtlMs + (KEEP_ROUND_BEATS - 1) * this.beatMs) / 1000);
    this.streams = new RedisStreams(this.names, this.calls, options.history ?? DEFAULT_HISTORY, keptStreamSeconds, this.beatMs);
    this.subscriptions = new GatewaySubscriptions(subscriber, this.names, this.requestTimeoutMs, gateway, this.nodes.onRequest);
    this.secret = new SharedResumeSecret(this.names, this.calls, log, gateway);
    const shared = { history: options.history ?? DEFAULT_HISTORY, recoveryWindowMs: this.recoveryWindowMs, pushLimits: options.pushLimits };
    this.settings = new ProcessSettings(processId, options.role ?? 'gateway+logic', shared, this.names, this.calls, this.registryTtlMs, log);
  }

  /** Connects both clients (commands, and a second one in subscriber mode); fails if Redis cannot be reached in time. */
  static async connect(options: RedisBrokerOptions, log: Logger): Promise<RedisBroker> {
    const connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    const processId = randomUUID();
    const commands: Client = createClient({
      url: options.url,
      name: `roomcast:commands:${processId}`,
      // a push Redis cannot take now must fail at once (503), not wait in a queue
      disableOfflineQueue: true,
      socket: { connectTimeout: connectTimeoutMs, reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 1000) },
    });
    const subscriber: Client = commands.duplicate({ disableOfflineQueue: false, name: `roomcast:subscriber:${processId}` });
    const broker = new RedisBroker(processId, commands, subscriber, options, log);
    broker.watch(commands, 'commands');
    broker.watch(subscriber, 'subscriber');
    broker.subscriptions.watchConnection();
    const where = new URL(options.url).host;
    const version = new RedisVersionCheck(commands, where, log);
    // the client retries on its own until the deadline: its errors say why (refused, TLS, password, not Redis)
    const errors: unknown[] = [];
    const remember = (err: unknown): void => void errors.push(err);
    for (const client of [commands, subscriber]) client.on('error', remember);
    // a Redis that accepts the connections and then stops answering must fail the start too, not stall it
    const started = (async () => {
      await Promise.all([commands.connect(), subscriber.connect()]);
      // first: on an older Redis the requests below (or later ones) fail with errors that do not say why
      await version.atStart();
      await subscriber.subscribe(broker.names.replyChannel(broker.processId), broker.nodes.onReply);
      await broker.redisWatch.start();
      await broker.nodeState.connected();
    })();
    try {
      await withTimeout(started, connectTimeoutMs, `connecting to Redis at ${where}`);
    } catch (err) {
      broker.redisWatch.stop();
      commands.destroy();
      subscriber.destroy();
      if (err instanceof RedisTooOldError) throw err;
      const why = connectFailure(errors, err, where, options.url.startsWith('rediss:'));
      throw new BrokerUnavailableError(`cannot reach Redis at ${where} within ${connectTimeoutMs} ms: ${why}`, { cause: errors.at(-1) ?? err });
    } finally {
      for (const client of [commands, subscriber]) client.off('error', remember);
    }
    try {
      // first on the connection: the scripts go into Redis's cache (see RedisCalls.loadScripts)
      await Promise.all([broker.calls.requireScripts(redisUser(options.url)), warnIfEvicting(commands, where, log)]);
    } catch (err) {
      await broker.close();
      throw err;
    }
    // before the start line, so a difference with the processes already running is the first thing logged
    await broker.calls.bounded(() => broker.settings.record()).catch((err: unknown) => broker.calls.logError(err, 'recording the shared settings'));
    broker.heartbeat = setInterval(() => broker.beat(), broker.beatMs);
    // first: Redis may have restarted, and lost its script cache
    commands.on('ready', () => void broker.calls.loadScripts().catch((err: unknown) => broker.calls.logError(err, 'loading the scripts')));
    commands.on('ready', () => broker.registerAll(true));
    commands.on('ready', () => broker.keepStreams(true));
    commands.on('ready', () => void broker.secret.restore());
    commands.on('ready', () => broker.redisWatch.reconnected());
    commands.on('ready', () => broker.recordSettings());
    commands.on('ready', () => void version.afterReconnect());
    commands.on('ready', () => void broker.nodeState.connected().then(() => broker.writeNodeState()));
    // at once, so a request that finds no subscriber meanwhile takes the node for reconnecting, not dead
    subscriber.on('error', () => broker.writeNodeState());
    subscriber.on('ready', () => broker.writeNodeState());
    return broker;
  }

  // --- gateway side ---

  async attachGateway(handler: GatewayHandler): Promise<void> {
    if (this.gateway !== undefined) throw new Error('a RedisBroker serves one gateway node; create one per node');
    this.gateway = handler;
    this.sessions.roomsLimit = handler.maxRoomsPerConnection;
    await this.subscriptions.attach(handler.nodeId);
    this.writeNodeState();
  }

  async detachGateway(handler: GatewayHandler): Promise<void> {
    if (this.gateway !== handler) return;
    this.gateway = undefined;
    await this.subscriptions.detach(handler.nodeId);
    if (this.commands.isReady) await this.nodeState.remove(handler.nodeId).catch((err: unknown) => this.calls.logError(err, 'removing the node state'));
  }

  roomOpened(_nodeId: string, room: string): Promise<void> {
    return this.subscriptions.roomOpened(room);
  }

  roomClosed(_nodeId: string, room: string): Promise<void> {
    return this.subscriptions.roomClosed(room);
  }

  userOpened(_nodeId: string, uid: string): Promise<void> {
    return this.subscriptions.userOpened(uid);
  }

  userClosed(_nodeId: string, uid: string): Promise<void> {
    return this.subscriptions.userClosed(uid);
  }

  connOpened(nodeId: string, wsId: string, uid?: string): void {
    this.sessions.opened(nodeId, wsId, uid);
  }

  connClosed(nodeId: string, wsId: string, away?: LeftSession): void {
    this.sessions.closed(nodeId, wsId, away);
  }

  dropAway(nodeId: string, wsId: string): Promise<boolean> {
    return this.sessions.dropAway(nodeId, wsId);
  }

  sessionJoined(wsId: string, room: string): void {
    this.sessions.joined(wsId, room);
  }

  sessionLeft(wsId: string, room: string): void {
    this.sessions.left(wsId, room);
  }

  takeSession(nodeId: string, wsId: string, uid: string | undefined): Promise<TakenSession> {
    return this.sessions.take(nodeId, wsId, uid);
  }

  resumeSecret(): Promise<string> {
    return this.secret.get();
  }

  streamPosition(stream: string): Promise<StreamPosition> {
    return this.streams.position(stream);
  }

  history(stream: string, after: number, limit: number): Promise<HistoryPage> {
    return this.streams.history(stream, after, limit);
  }

  // --- logic side ---

  publish(stream: string, message: PushMessage, once?: PushOnce): Promise<Published> {
    return this.streams.publish(stream, message, once);
  }

  /** Late in Redis (past the deadline), a claim does nothing: a caller answered 503 leaves no key behind to refuse its retry. */
  async claimPush(once: PushOnce, claimId: string): Promise<PushClaim> {
    const reply = (await this.calls.runBeforeDeadline(CLAIM_PUSH, [this.names.pushKey(once.key)], [String(once.windowMs), String(this.longestPushMs), claimId])) as
      | ['claimed']
      | ['under-way', number]
      | ['unknown']
      | ['done', string];
    switch (reply[0]) {
      case 'claimed':
      case 'unknown':
        return { status: reply[0] };
      case 'under-way':
        return { status: 'under-way', leftMs: reply[1] };
      case 'done':
        return { status: 'done', answer: reply[1] };
    }
  }

  async settlePush(once: PushOnce, claimId: string, outcome: PushOutcome): Promise<void> {
    const args = outcome.status === 'made' ? [claimId, 'made', outcome.answer] : [claimId, outcome.status];
    await this.calls.runScriptBounded(SETTLE_PUSH, [this.names.pushKey(once.key)], args);
  }

  async publishToUser(uid: string, message: PushMessage): Promise<{ id: string; nodes: number }> {
    const id = randomUUID();
    const nodes = await this.calls.publishBy(this.names.userChannel(uid), `${id}|${message.tag}|${message.val}`);
    return { id, nodes };
  }

  async userConnections(uid: string): Promise<ConnInfo[]> {
    return (await this.nodes.gather<'userConnections'>({ kind: 'userConnections', uid })).flat();
  }

  /** A join or leave that a resume overtook on its way to the away session goes to the node that holds the session now, once. */
  async command<C extends ConnCommand>(cmd: C): Promise<ReplyTo<C> | undefined> {
    try {
      return await this.commandOnce(cmd);
    } catch (err) {
      if (!(err instanceof SessionHeldError)) throw err;
      return this.commandOnce(cmd);
    }
  }

  private async commandOnce<C extends ConnCommand>(cmd: C): Promise<ReplyTo<C> | undefined> {
    const registeredNode = (): Promise<string | null> => this.calls.bounded(() => this.commands.get(this.names.connKey(cmd.wsId)));
    let nodeId = await registeredNode();
    if (nodeId === null && (await this.heldUnregistered(cmd.wsId))) nodeId = await registeredNode();
    if (nodeId === null) return this.sessions.commandAway(cmd);
    const answer = await this.nodes.ask(nodeId, cmd.wsId, { type: 'command', cmd }, this.requestTimeoutMs);
    switch (answer.status) {
      case 'dead':
        return this.sessions.commandAway(cmd);
      case 'reconnecting':
        throw new BrokerUnavailableError(`the gateway node holding ${cmd.wsId} (${nodeId}) is reconnecting to Redis; try again`);
      case 'silent':
        throw new BrokerUnavailableError(`gateway node ${nodeId} did not answer within ${this.requestTimeoutMs} ms`);
      case 'answered': {
        const { reply } = answer;
        if (reply.error !== undefined) throw new BrokerUnavailableError(`gateway node ${nodeId} could not apply ${cmd.op}: ${reply.error}`);
        return reply.result === undefined ? this.sessions.commandAway(cmd) : (reply.result as ReplyTo<C>);
      }
    }
  }

  /** Away sessions in Redis (public for the tests, which check what it leaves in Redis). */
  get awayStore(): AwayStore {
    return this.sessions.awayStore;
  }

  /** The page of `query` over every node, from each node's first rooms of it and the ids of all (src/broker/room-page.ts). */
  async roomPage(query: RoomQuery): Promise<RoomPage> {
    const answers = await this.nodes.gather<'rooms'>({ kind: 'rooms', query: { ...query, offset: 0, limit: query.offset + query.limit } });
    return mergeNodePages(
      query,
      distinctRoomCount(answers.map((a) => a.ids)),
      answers.map((a) => a.first),
    );
  }

  /** Rooms with members on any node. */
  private async roomTotal(): Promise<number> {
    return (await this.roomPage({ prefix: '', contains: '', offset: 0, limit: 0 })).total;
  }

  async roomMemberPage(room: string, page: { offset: number; limit: number }): Promise<MemberPage> {
    return mergeMemberPages(await this.nodes.gather<'roomMembers'>({ kind: 'roomMembers', room, first: page.offset + page.limit }), page);
  }

  // history's memory is Redis's own (its maxmemory), so nothing is evicted here
  async stats(): Promise<ClusterStats> {
    const [perNode, rooms, awayRoomLimitRefusals, mismatches] = await Promise.all([
      this.nodes.gather<'stats'>({ kind: 'stats' }),
      this.roomTotal(),
      this.awayRoomLimitRefusals(),
      this.settings.mismatches(),
    ]);
    return clusterStats(perNode, rooms, { awayRoomLimitRefusals, historyEvictions: 0, pushKeyEvictions: 0, ...mismatches });
  }

  async clusterReport(): Promise<ClusterReport> {
    const [nodes, rooms, awayRoomLimitRefusals] = await Promise.all([
      this.nodes.gatherByNode<'report'>({ kind: 'report' }),
      this.roomTotal(),
      this.awayRoomLimitRefusals(),
    ]);
    return { nodes, rooms, awayRoomLimitRefusals, historyEvictions: 0, pushKeyEvictions: 0 };
  }

  isReady(): boolean {
    return this.commands.isReady && this.subscriber.isReady && this.redisWatch.answering;
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    // at once, not when its record expires: a rolling change of a flag is through once the last old process stops
    if (this.isReady()) await withTimeout(this.settings.remove(), 1000, 'removing the shared settings').catch((err: unknown) => this.calls.logError(err, 'removing the shared settings'));
    this.redisWatch.stop();
    this.nodes.cancelAll();
    for (const client of [this.commands, this.subscriber]) {
      if (!client.isOpen) continue;
      await withTimeout(client.close(), 1000, 'closing the Redis connection').catch(() => client.destroy());
    }
  }

  // --- internals ---

  /**
   * Whether a node holds `wsId` though Redis named none when asked. A node
   * welcomes a connection without waiting for its registration to reach Redis,
   * so a backend told the wsId at once can ask before it has landed. Each
   * node answers on the Redis connection its registrations went out on, after
   * them: once a node says it holds the wsId, Redis names it. (A node that
   * holds it while Redis still names none let it go while cut off from Redis:
   * the session is away, and stays the logic's to change; see "Faults".)
   */
  private async heldUnregistered(wsId: string): Promise<boolean> {
    // the first node that says so settles it; only a wsId no node holds waits for every answer
    const holds = (reply: unknown): boolean => (reply as NodeReply).error === undefined && (reply as NodeReply).result === true;
    return (await this.nodes.gather<'holds'>({ kind: 'holds', wsId }, holds)).includes(true);
  }

  /** Joins refused to away sessions, by whichever logic process took them. */
  private async awayRoomLimitRefusals(): Promise<number> {
    return Number((await this.calls.bounded(() => this.commands.get(this.names.awayRefusalsKey))) ?? 0);
  }

  /** Every registryTtlMs / 3: keeps what this process has in Redis from expiring. */
  private beat(): void {
    this.registerAll(false);
    this.writeNodeState();
    this.keepStreams(false);
    this.recordSettings();
  }

  /** Writes the attached gateway node's state: whether its subscriber is subscribed, on which Redis run (src/broker/redis/node-state.ts). */
  private writeNodeState(): void {
    const gateway = this.gateway;
    if (gateway === undefined || !this.commands.isReady) return;
    this.nodeState.write(gateway.nodeId, this.subscriber.isReady).catch((err: unknown) => this.calls.logError(err, 'writing the node state'));
  }

  /** Rewrites this process's shared settings, warning of any another live process runs differently. */
  private recordSettings(): void {
    if (!this.commands.isReady) return;
    this.settings.record().catch((err: unknown) => this.calls.logError(err, 'recording the shared settings'));
  }

  /** Rewrites this node's registry entries so they do not expire (src/broker/redis/sessions.ts). */
  private registerAll(full: boolean): void {
    const gateway = this.gateway;
    if (gateway === undefined || !this.commands.isReady) return;
    this.sessions.refresh(gateway, full);
  }

  /**
   * Keeps the seq and epoch of `*` and of every room this node has members in:
   * a slice of them each beat; `all` after a reconnect, when the beats Redis
   * was out of reach missed their slices.
   */
  private keepStreams(all: boolean): void {
    const gateway = this.gateway;
    if (gateway === undefined || !this.commands.isReady) return;
    if (all) this.streams.keepAll(streamsWithMembers(gateway));
    else this.streams.keepSlice(streamsWithMembers(gateway));
  }

  private watch(client: Client, role: string): void {
    client.on('error', (err: unknown) => {
      if (this.outage) return;
      this.outage = true;
      this.log.warn({ err, role }, 'lost the connection to Redis; reconnecting');
    });
    client.on('ready', () => {
      if (!this.outage) return;
      this.outage = false;
      this.log.info({ role }, 'connected to Redis again');
    });
  }
}

/** `*` and every room the node has members in, walked from its room index. */
function* streamsWithMembers(gateway: GatewayHandler): Iterable<string> {
  yield ALL_STREAM;
  yield* gateway.roomIds();
}
