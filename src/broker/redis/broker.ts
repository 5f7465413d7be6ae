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
 *   nobody means the node is gone: the wsId is unknown (404).
 * - Queries (room counts, members, stats) go to every node and are summed.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { createClient } from 'redis';
import { ALL_STREAM } from '../../protocol/room-id.js';
import { DEFAULT_HISTORY, historyEnabled, type HistoryLimits } from '../../history/ring.js';
import { commandAway, DEFAULT_RECOVERY_WINDOW_MS, type AwayStore } from '../away.js';
import {
  addNodeStats,
  BrokerUnavailableError,
  emptyNodeStats,
  historyPage,
  roomLimitRefusal,
  type Broker,
  type ClusterReport,
  type ConnCommand,
  type ConnInfo,
  type GatewayHandler,
  type HistoryEntry,
  type HistoryPage,
  type LeftSession,
  type NodeStats,
  type Publication,
  type PushMessage,
  type ReplyTo,
  type RoomCount,
  type StreamPosition,
  type TakenSession,
  type YieldAnswer,
} from '../broker.js';
import { RedisCalls, unavailable, withTimeout, type Client } from './calls.js';
import { newEpoch } from '../epoch.js';
import { RedisNames, redisDatabase } from './keys.js';
import { PendingRequests } from './requests.js';
import { ADD_AWAY_ROOM, CLOSE_CONN, DROP_AWAY, END_AWAY, HISTORY, POSITION, PUBLISH, RELEASE_CONN, ROOMS_LIMIT_FIELD, SESSION_MARKER, TAKE_SESSION } from './scripts.js';
import { NodeRegistry, REGISTRY_BATCH } from './registry.js';
import { RedisWatch } from './watch.js';
import { decodePublication, decodeUserPush, parseJson, type NodeQuery, type NodeReply, type NodeRequest, type QueryAnswers } from './wire.js';

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
}

/** The fields of a session hash that are not rooms start with `#`, which is in no room id. */
function isRoomField(field: string): boolean {
  return !field.startsWith('#');
}


/** How long a stream's seq and epoch live after its last push, unless its history lives longer. */
const PUSHED_STREAM_TTL_SECONDS = 86_400;
/** How long a resume waits for the node that holds the session to hand it over; a silent node keeps it (the client retries). */
const TAKEOVER_PROBE_MS = 1000;

function parsePosition(value: string | undefined): StreamPosition | undefined {
  const colon = value?.indexOf(':') ?? -1;
  if (value === undefined || colon < 1) return undefined;
  return { seq: Number(value.slice(0, colon)), epoch: value.slice(colon + 1) };
}

/** Omit over each member of a union (Omit itself would merge them). */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class RedisBroker implements Broker {
  readonly engine = 'redis';
  /** Its keys and channels (public for the tests, which look at them in Redis). */
  readonly names: RedisNames;
  private readonly requests = new PendingRequests();
  private gateway: GatewayHandler | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private outage = false;
  private readonly registryTtlMs: number;
  private readonly requestTimeoutMs: number;
  private readonly queryTimeoutMs: number;
  private readonly commandTimeoutMs: number;
  private readonly redisWatch: RedisWatch;
  private readonly calls: RedisCalls;
  private readonly registry: NodeRegistry;
  /** How long a stream's seq and epoch live after its last push. */
  private readonly streamTtlSeconds: string;
  private readonly historyLimits: HistoryLimits;
  readonly recoveryWindowMs: number;
  private secret: Promise<string> | undefined;
  /** The attached gateway node's rooms limit, written with each of its sessions. */
  private roomsLimit = 0;
  /** Set from the moment the subscriber connection drops until it is back with every subscription. */
  private subscriptionsDown = false;

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
    this.queryTimeoutMs = options.queryTimeoutMs ?? 2_000;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 2_000;
    this.redisWatch = new RedisWatch(commands, this.commandTimeoutMs);
    this.calls = new RedisCalls(commands, this.redisWatch, this.commandTimeoutMs, log);
    this.registry = new NodeRegistry(this.names, (lua, keys, args) => this.calls.runScript(lua, keys, args), (err, doing) => this.calls.logError(err, doing));
    this.historyLimits = options.history ?? DEFAULT_HISTORY;
    // history numbered by a seq must not outlive the seq and epoch: a new epoch would make it unreadable
    this.streamTtlSeconds = String(Math.max(PUSHED_STREAM_TTL_SECONDS, Math.ceil(this.historyLimits.ttlMs / 1000)));
    this.recoveryWindowMs = options.recoveryWindowMs ?? DEFAULT_RECOVERY_WINDOW_MS;
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
    broker.watchSubscriptions();
    const where = new URL(options.url).host;
    // the client retries on its own until the deadline: its last error says why (refused, TLS, password)
    let lastError: unknown;
    const remember = (err: unknown): void => void (lastError = err);
    for (const client of [commands, subscriber]) client.on('error', remember);
    // a Redis that accepts the connections and then stops answering must fail the start too, not stall it
    const started = (async () => {
      await Promise.all([commands.connect(), subscriber.connect()]);
      await subscriber.subscribe(broker.names.replyChannel(broker.processId), broker.onReply);
      await broker.redisWatch.start();
    })();
    try {
      await withTimeout(started, connectTimeoutMs, `connecting to Redis at ${where}`);
    } catch (err) {
      broker.redisWatch.stop();
      commands.destroy();
      subscriber.destroy();
      const why = lastError ?? err;
      throw new BrokerUnavailableError(`cannot reach Redis at ${where} within ${connectTimeoutMs} ms: ${why instanceof Error ? why.message : String(why)}`, { cause: why });
    } finally {
      for (const client of [commands, subscriber]) client.off('error', remember);
    }
    commands.on('ready', () => broker.registerAll(true));
    commands.on('ready', () => void broker.restoreSecret());
    commands.on('ready', () => broker.redisWatch.reconnected());
    return broker;
  }

  // --- gateway side ---

  async attachGateway(handler: GatewayHandler): Promise<void> {
    if (this.gateway !== undefined) throw new Error('a RedisBroker serves one gateway node; create one per node');
    this.gateway = handler;
    this.roomsLimit = handler.maxRoomsPerConnection;
    await Promise.all([
      this.subscriber.subscribe(this.names.allChannel, this.onAllMessage),
      this.subscriber.subscribe(this.names.nodeChannel(handler.nodeId), this.onNodeRequest),
      this.subscriber.subscribe(this.names.nodesChannel, this.onNodeRequest),
    ]);
    this.refreshTimer = setInterval(() => {
      this.registerAll(false);
      this.keepStreams();
    }, Math.max(100, Math.floor(this.registryTtlMs / 3)));
  }

  async detachGateway(handler: GatewayHandler): Promise<void> {
    if (this.gateway !== handler) return;
    clearInterval(this.refreshTimer);
    this.gateway = undefined;
    if (!this.subscriber.isReady) return;
    await Promise.allSettled([
      this.subscriber.unsubscribe(this.names.allChannel, this.onAllMessage),
      this.subscriber.unsubscribe(this.names.nodeChannel(handler.nodeId), this.onNodeRequest),
      this.subscriber.unsubscribe(this.names.nodesChannel, this.onNodeRequest),
    ]);
  }

  async roomOpened(_nodeId: string, room: string): Promise<void> {
    await this.subscribe(this.names.roomChannel(room), this.onRoomMessage);
  }

  async roomClosed(_nodeId: string, room: string): Promise<void> {
    await this.subscriber.unsubscribe(this.names.roomChannel(room), this.onRoomMessage);
  }

  async userOpened(_nodeId: string, uid: string): Promise<void> {
    await this.subscribe(this.names.userChannel(uid), this.onUserMessage);
  }

  async userClosed(_nodeId: string, uid: string): Promise<void> {
    await this.subscriber.unsubscribe(this.names.userChannel(uid), this.onUserMessage);
  }

  async publishToUser(uid: string, message: PushMessage): Promise<{ id: string; nodes: number }> {
    const id = randomUUID();
    const nodes = await this.calls.publishBy(this.names.userChannel(uid), `${id}|${message.tag}|${message.val}`);
    return { id, nodes };
  }

  async userConnections(uid: string): Promise<ConnInfo[]> {
    return (await this.gather<'userConnections'>({ kind: 'userConnections', uid })).flat();
  }

  connOpened(nodeId: string, wsId: string, uid?: string): void {
    const batch = this.commands.multi().set(this.names.connKey(wsId), nodeId, { PX: this.registryTtlMs });
    if (this.recoveryWindowMs > 0) {
      const session = this.names.sessionKey(wsId);
      batch.hSet(session, this.sessionMeta(uid)).pExpire(session, this.sessionTtlMs);
    }
    batch.execAsPipeline().catch((err: unknown) => this.missed(wsId, err, 'registering a connection'));
  }

  connClosed(nodeId: string, wsId: string, away?: LeftSession): void {
    this.registry.forget(wsId);
    const keep = away !== undefined && this.recoveryWindowMs > 0;
    const args = keep ? [nodeId, String(this.recoveryWindowMs), away.uid ?? '', String(this.roomsLimit)] : [nodeId, '0'];
    if (keep) for (const [room, at] of away.rooms) args.push(room, at === undefined ? '' : `${at.seq}:${at.epoch}`);
    this.calls.runScript(CLOSE_CONN, [this.names.connKey(wsId), this.names.sessionKey(wsId)], args).catch((err: unknown) => this.calls.logError(err, 'releasing a connection'));
  }

  async dropAway(nodeId: string, wsId: string): Promise<boolean> {
    return (await this.calls.bounded(() => this.calls.runScript(DROP_AWAY, [this.names.connKey(wsId), this.names.sessionKey(wsId)], [nodeId]))) === 1;
  }

  sessionJoined(wsId: string, room: string): void {
    if (this.recoveryWindowMs === 0) return;
    this.commands.hSet(this.names.sessionKey(wsId), room, '').catch((err: unknown) => this.missed(wsId, err, 'recording a join'));
  }

  sessionLeft(wsId: string, room: string): void {
    if (this.recoveryWindowMs === 0) return;
    this.commands.hDel(this.names.sessionKey(wsId), room).catch((err: unknown) => this.missed(wsId, err, 'recording a leave'));
  }

  async takeSession(nodeId: string, wsId: string, uid: string | undefined): Promise<TakenSession> {
    const connKey = this.names.connKey(wsId);
    const owner = await this.calls.bounded(() => this.commands.get(connKey));
    if (owner === nodeId) {
      // the caller's node holds no connection of it (it has checked): the entry is stale
      await this.calls.bounded(() => this.calls.runScript(RELEASE_CONN, [connKey], [nodeId]));
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

  /**
   * Asks the node the registry names for a session to close its connection of
   * it; once it answers (or is found dead) the registry no longer names it. A
   * silent node keeps the session: two live connections never share a wsId.
   */
  private async askToYield(owner: string, wsId: string, uid: string | undefined): Promise<TakenSession | undefined> {
    const answer = await this.ask(owner, wsId, { type: 'yield', wsId, uid }, TAKEOVER_PROBE_MS);
    if (answer.status === 'silent') throw new BrokerUnavailableError(`the node holding the session did not answer within ${TAKEOVER_PROBE_MS} ms (${owner})`);
    if (answer.status !== 'answered') return undefined; // dead: ask() released its entry
    const { error, result } = answer.reply;
    if (error !== undefined) throw new BrokerUnavailableError(`the node holding the session could not hand it over: ${error} (${owner})`);
    if (result === 'foreign') return { status: 'foreign' };
    if (result === 'claiming') return { status: 'busy' };
    return undefined;
  }

  resumeSecret(): Promise<string> {
    this.secret ??= (async () => {
      await this.commands.set(this.names.secretKey, randomBytes(32).toString('base64url'), { NX: true });
      const secret = await this.commands.get(this.names.secretKey);
      if (secret === null) throw new BrokerUnavailableError('the resume secret vanished from Redis');
      return secret;
    })().catch((err: unknown) => {
      this.secret = undefined;
      throw unavailable(err);
    });
    return this.secret;
  }

  async streamPosition(stream: string): Promise<StreamPosition> {
    const [seq, epoch] = (await this.calls.bounded(() => this.calls.runScript(POSITION, this.streamKeys(stream), [newEpoch(), String(this.keptStreamSeconds)]))) as [number, string];
    return { seq, epoch };
  }

  async history(stream: string, after: number, limit: number): Promise<HistoryPage> {
    type Reply = [number, string, [number, string, number, string, number][]] | [];
    const reply = (await this.calls.bounded(() => this.calls.runScript(HISTORY, this.streamKeys(stream), [String(after), String(limit), String(this.historyLimits.ttlMs)]))) as Reply;
    if (reply.length === 0) return historyPage(await this.streamPosition(stream), after, []);
    const [seq, epoch, rows] = reply;
    const entries = rows.map(([entrySeq, id, tag, val, order]): HistoryEntry => ({ stream, seq: entrySeq, epoch, id, tag, val, order }));
    return historyPage({ seq, epoch }, after, entries);
  }

  // --- logic side ---

  async publish(stream: string, message: PushMessage): Promise<Publication> {
    const id = randomUUID();
    const channel = stream === ALL_STREAM ? this.names.allChannel : this.names.roomChannel(stream);
    const reply = await this.calls.runBeforeDeadline(PUBLISH, [...this.streamKeys(stream), this.names.orderKey], [
      channel,
      id,
      String(message.tag),
      message.val,
      newEpoch(),
      this.streamTtlSeconds,
      String(historyEnabled(this.historyLimits) ? this.historyLimits.size : 0),
      String(Math.ceil(this.historyLimits.ttlMs / 1000)),
    ]);
    const [seq, epoch] = reply as [number, string];
    return { id, stream, seq, epoch, tag: message.tag, val: message.val };
  }

  async command<C extends ConnCommand>(cmd: C): Promise<ReplyTo<C> | undefined> {
    const registeredNode = (): Promise<string | null> => this.calls.bounded(() => this.commands.get(this.names.connKey(cmd.wsId)));
    let nodeId = await registeredNode();
    if (nodeId === null && (await this.heldUnregistered(cmd.wsId))) nodeId = await registeredNode();
    if (nodeId === null) return this.commandAway(cmd);
    const answer = await this.ask(nodeId, cmd.wsId, { type: 'command', cmd }, this.requestTimeoutMs);
    switch (answer.status) {
      case 'dead':
        return this.commandAway(cmd);
      case 'silent':
        throw new BrokerUnavailableError(`gateway node ${nodeId} did not answer within ${this.requestTimeoutMs} ms`);
      case 'answered': {
        const { reply } = answer;
        if (reply.error !== undefined) throw new BrokerUnavailableError(`gateway node ${nodeId} could not apply ${cmd.op}: ${reply.error}`);
        return reply.result === undefined ? this.commandAway(cmd) : (reply.result as ReplyTo<C>);
      }
    }
  }

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
    return (await this.gather<'holds'>({ kind: 'holds', wsId }, holds)).includes(true);
  }

  /**
   * Sends a request about `wsId` to the node that holds it. A PUBLISH that
   * reaches no one means the node is gone: its registry entry goes, and the
   * session's recovery window starts now.
   */
  private async ask(
    nodeId: string,
    wsId: string,
    body: DistributiveOmit<Exclude<NodeRequest, { type: 'query' }>, 'from' | 'reqId'>,
    timeoutMs: number,
  ): Promise<{ status: 'dead' | 'silent' } | { status: 'answered'; reply: NodeReply }> {
    const request = this.requests.open(timeoutMs);
    const message: NodeRequest = { ...body, from: this.processId, reqId: request.reqId };
    const receivers = await this.sendRequest(request.reqId, this.calls.publishBy(this.names.nodeChannel(nodeId), JSON.stringify(message)));
    if (receivers === 0) {
      await this.forgetDeadNode(nodeId, wsId);
      return { status: 'dead' };
    }
    const { replies, timedOut } = await request.wait(1);
    return timedOut ? { status: 'silent' } : { status: 'answered', reply: replies[0] as NodeReply };
  }

  /** Resolves with how many received the request `published`; cancels the request when that PUBLISH failed or reached no one. */
  private async sendRequest(reqId: number, published: Promise<number>): Promise<number> {
    try {
      const receivers = await published;
      if (receivers === 0) this.requests.cancel(reqId);
      return receivers;
    } catch (err) {
      this.requests.cancel(reqId);
      throw err;
    }
  }

  private async forgetDeadNode(nodeId: string, wsId: string): Promise<void> {
    await this.calls.runScript(RELEASE_CONN, [this.names.connKey(wsId)], [nodeId]).catch((err: unknown) => this.calls.logError(err, 'releasing a dead node connection'));
    if (this.recoveryWindowMs === 0) return;
    await this.commands.pExpire(this.names.sessionKey(wsId), this.recoveryWindowMs, 'LT').catch((err: unknown) => this.calls.logError(err, 'ending a dead node session'));
  }

  private async commandAway<C extends ConnCommand>(cmd: C): Promise<ReplyTo<C> | undefined> {
    if (this.recoveryWindowMs === 0) return undefined;
    return this.calls.bounded(() => commandAway(cmd, this.awayStore, (room) => this.streamPosition(room)));
  }

  /** Away sessions in Redis (public for the tests, which check what it leaves in Redis). */
  readonly awayStore: AwayStore = {
    get: async (wsId) => {
      const key = this.names.sessionKey(wsId);
      const [fields, ttl] = (await this.commands.multi().hGetAll(key).pTTL(key).exec()) as unknown as [Record<string, string>, number];
      const names = Object.keys(fields);
      if (names.length === 0 || ttl < 0) return undefined;
      const uid = fields[SESSION_MARKER];
      return { uid: uid === '' || uid === undefined ? undefined : uid, rooms: names.filter(isRoomField), expiresAt: Date.now() + ttl };
    },
    addRoom: async (wsId, room, at) => {
      const added = (await this.calls.runScript(ADD_AWAY_ROOM, [this.names.sessionKey(wsId), this.names.awayRefusalsKey], [room, `${at.seq}:${at.epoch}`])) as number;
      return added < 0 ? { changed: false, refused: roomLimitRefusal(-added) } : { changed: added === 1 };
    },
    removeRoom: async (wsId, room) => (await this.commands.hDel(this.names.sessionKey(wsId), room)) === 1,
    end: async (wsId) => (await this.calls.runScript(END_AWAY, [this.names.sessionKey(wsId), this.names.connKey(wsId), this.names.kickedKey(wsId)], [String(this.sessionTtlMs)])) === 1,
  };

  async roomCounts(): Promise<RoomCount[]> {
    const totals = new Map<string, number>();
    for (const counts of await this.gather<'roomCounts'>({ kind: 'roomCounts' })) {
      for (const [room, members] of counts) totals.set(room, (totals.get(room) ?? 0) + members);
    }
    return [...totals].map(([room, members]) => ({ room, members }));
  }

  async roomMembers(room: string): Promise<string[]> {
    return (await this.gather<'roomMembers'>({ kind: 'roomMembers', room })).flat();
  }

  async stats(): Promise<NodeStats & { nodes: number }> {
    const [perNode, rooms, awayRefusals] = await Promise.all([this.gather<'stats'>({ kind: 'stats' }), this.roomCounts(), this.awayRoomLimitRefusals()]);
    const total = emptyNodeStats();
    for (const stats of perNode) addNodeStats(total, stats);
    total.rooms = rooms.length;
    total.roomLimitRefusals += awayRefusals;
    return { ...total, nodes: perNode.length };
  }

  async clusterReport(): Promise<ClusterReport> {
    const [nodes, rooms, awayRoomLimitRefusals] = await Promise.all([
      this.gatherByNode<'report'>({ kind: 'report' }),
      this.roomCounts(),
      this.awayRoomLimitRefusals(),
    ]);
    return { nodes, rooms: rooms.length, awayRoomLimitRefusals };
  }

  /** Joins refused to away sessions, by whichever logic process took them. */
  private async awayRoomLimitRefusals(): Promise<number> {
    return Number((await this.calls.bounded(() => this.commands.get(this.names.awayRefusalsKey))) ?? 0);
  }

  isReady(): boolean {
    return this.commands.isReady && this.subscriber.isReady && this.redisWatch.answering;
  }

  async close(): Promise<void> {
    clearInterval(this.refreshTimer);
    this.redisWatch.stop();
    this.requests.cancelAll();
    for (const client of [this.commands, this.subscriber]) {
      if (!client.isOpen) continue;
      await withTimeout(client.close(), 1000, 'closing the Redis connection').catch(() => client.destroy());
    }
  }

  // --- internals ---

  /** Subscribes, or fails with 503 rather than wait for a Redis that is away. */
  private async subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<void> {
    await withTimeout(this.subscriber.subscribe(channel, listener), this.requestTimeoutMs, `subscribing to ${channel}`).catch((err: unknown) => {
      throw unavailable(err);
    });
  }

  private readonly onRoomMessage = (message: string, channel: string): void => {
    const pub = decodePublication(this.names.roomOfChannel(channel), message);
    if (pub !== undefined) this.gateway?.onPublication(pub);
  };

  private readonly onUserMessage = (message: string, channel: string): void => {
    const push = decodeUserPush(this.names.userOfChannel(channel), message);
    if (push !== undefined) this.gateway?.onUserPush(push);
  };

  private readonly onAllMessage = (message: string): void => {
    const pub = decodePublication(ALL_STREAM, message);
    if (pub !== undefined) this.gateway?.onPublication(pub);
  };

  private readonly onReply = (message: string): void => {
    const reply = parseJson<NodeReply>(message);
    if (reply?.type === 'reply') this.requests.deliver(reply.reqId, reply);
  };

  private readonly onNodeRequest = (message: string): void => {
    const request = parseJson<NodeRequest>(message);
    if (request === undefined || this.gateway === undefined) return;
    void this.answer(this.gateway, request);
  };

  private async answer(gateway: GatewayHandler, request: NodeRequest): Promise<void> {
    const reply: NodeReply = { type: 'reply', from: this.processId, reqId: request.reqId };
    try {
      if (request.type === 'command') reply.result = await gateway.onCommand(request.cmd);
      else if (request.type === 'yield') reply.result = await this.yieldSession(gateway, request.wsId, request.uid);
      else reply.result = this.answerQuery(gateway, request.query);
    } catch (err) {
      reply.error = err instanceof Error ? err.message : String(err);
    }
    await this.commands.publish(this.names.replyChannel(request.from), JSON.stringify(reply)).catch((err: unknown) => this.calls.logError(err, 'answering a request'));
  }

  /** The wsId is no longer registered to this node before the answer goes out, so the asking node can claim it. */
  private async yieldSession(gateway: GatewayHandler, wsId: string, uid: string | undefined): Promise<YieldAnswer> {
    const answer = gateway.yieldSession(wsId, uid);
    if (answer === 'yielded' || answer === 'absent') await this.calls.runScript(RELEASE_CONN, [this.names.connKey(wsId)], [gateway.nodeId]);
    return answer;
  }

  private answerQuery(gateway: GatewayHandler, query: NodeQuery): QueryAnswers[NodeQuery['kind']] {
    switch (query.kind) {
      case 'roomCounts':
        return [...gateway.roomCounts()];
      case 'roomMembers':
        return gateway.roomMembers(query.room);
      case 'userConnections':
        return gateway.userConnections(query.uid);
      case 'holds':
        return gateway.holds(query.wsId);
      case 'stats':
        return gateway.stats();
      case 'report':
        return gateway.report();
    }
  }

  private async gather<K extends NodeQuery['kind']>(query: NodeQuery & { kind: K }, decisive?: (reply: unknown) => boolean): Promise<QueryAnswers[K][]> {
    return [...(await this.gatherByNode<K>(query, decisive)).values()];
  }

  /**
   * Every gateway node's answer, by the id of the process that answered (new each time a node starts);
   * only those that arrived until then once a reply is `decisive`.
   */
  private async gatherByNode<K extends NodeQuery['kind']>(query: NodeQuery & { kind: K }, decisive?: (reply: unknown) => boolean): Promise<Map<string, QueryAnswers[K]>> {
    const request = this.requests.open(this.queryTimeoutMs);
    const message: NodeRequest = { type: 'query', from: this.processId, reqId: request.reqId, query };
    const receivers = await this.sendRequest(request.reqId, this.calls.bounded(() => this.commands.publish(this.names.nodesChannel, JSON.stringify(message))));
    if (receivers === 0) return new Map();
    const { replies, timedOut } = await request.wait(receivers, decisive);
    if (timedOut) this.log.warn({ query: query.kind, answered: replies.length, nodes: receivers }, 'not every gateway node answered in time');
    const answers = new Map<string, QueryAnswers[K]>();
    for (const reply of replies as NodeReply[]) if (reply.error === undefined) answers.set(reply.from, reply.result as QueryAnswers[K]);
    return answers;
  }

  /**
   * Rewrites this node's registry entries so they do not expire; with `full`
   * (after a reconnect, when Redis may have lost its data) the sessions' rooms
   * too (src/broker/redis/registry.ts).
   */
  private registerAll(full: boolean): void {
    const gateway = this.gateway;
    if (gateway === undefined || !this.commands.isReady) return;
    const sessionTtlMs = this.recoveryWindowMs > 0 ? this.sessionTtlMs : 0;
    this.registry.refresh(gateway, { registryTtlMs: this.registryTtlMs, sessionTtlMs, roomsLimit: this.roomsLimit }, full);
  }

  /**
   * Keeps the seq and epoch of `*` and of every room this node has members in:
   * a stream that only went quiet must not start a new epoch under them.
   */
  private keepStreams(): void {
    const gateway = this.gateway;
    if (gateway === undefined || !this.commands.isReady) return;
    const streams = [ALL_STREAM, ...gateway.roomCounts().keys()];
    for (let i = 0; i < streams.length; i += REGISTRY_BATCH) {
      const batch = this.commands.multi();
      for (const stream of streams.slice(i, i + REGISTRY_BATCH)) batch.expire(this.names.streamKey(stream), this.keptStreamSeconds, 'GT');
      batch.execAsPipeline().catch((err: unknown) => this.calls.logError(err, 'keeping stream positions'));
    }
  }

  /**
   * How long a stream's seq and epoch live after a join (or a node refreshed
   * them): past the life of any session that may resume in it, even one of a
   * killed node. A push keeps them `streamTtlSeconds` (24 h, or --history-ttl when longer).
   */
  private get keptStreamSeconds(): number {
    return Math.ceil((this.sessionTtlMs + this.registryTtlMs) / 1000);
  }

  /** A connected session outlives its registry entry by the recovery window, so a killed node's sessions can still be resumed. */
  private get sessionTtlMs(): number {
    return this.registryTtlMs + this.recoveryWindowMs;
  }

  private sessionMeta(uid: string | undefined): Record<string, string> {
    return { [SESSION_MARKER]: uid ?? '', [ROOMS_LIMIT_FIELD]: String(this.roomsLimit) };
  }

  private streamKeys(stream: string): string[] {
    return [this.names.streamKey(stream), this.names.historyKey(stream)];
  }


  /**
   * Tells the gateway when its subscriptions drop and when they are back (the
   * client emits `ready` once it has resubscribed): it reads what it missed
   * meanwhile from history.
   */
  private watchSubscriptions(): void {
    this.subscriber.on('error', () => {
      if (this.subscriber.isReady || this.subscriptionsDown) return;
      this.subscriptionsDown = true;
      this.gateway?.onSubscriptionsLost();
    });
    this.subscriber.on('ready', () => {
      if (!this.subscriptionsDown) return;
      this.subscriptionsDown = false;
      this.gateway?.onSubscriptionsRestored();
    });
  }

  /**
   * After a reconnect Redis may have lost the resume secret (no persistence),
   * and a node started since may have stored its own: this one stores its
   * secret again unless one is there, and then uses the stored one, still
   * accepting tokens signed with its own.
   */
  private async restoreSecret(): Promise<void> {
    const had = await this.secret?.catch(() => undefined);
    if (had === undefined) return;
    try {
      await this.commands.set(this.names.secretKey, had, { NX: true });
      const stored = await this.commands.get(this.names.secretKey);
      if (stored === null || stored === had) return;
      this.secret = Promise.resolve(stored);
      this.log.warn('Redis holds another resume secret than this node had (it lost its data and another node stored its own): using it');
      this.gateway?.onResumeSecret(stored);
    } catch (err) {
      this.calls.logError(err, 'restoring the resume secret');
    }
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

  /** A write of a connection's session failed: the next refresh writes the node's view of it. */
  private missed(wsId: string, err: unknown, doing: string): void {
    this.registry.missed(wsId);
    this.calls.logError(err, doing);
  }
}
