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
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { createClient } from 'redis';
import { ALL_STREAM } from '../../protocol/room-id.js';
import {
  addNodeStats,
  BrokerUnavailableError,
  emptyNodeStats,
  type Broker,
  type ConnCommand,
  type GatewayHandler,
  type NodeStats,
  type Publication,
  type PushMessage,
  type ReplyTo,
  type RoomCount,
} from '../broker.js';
import { newEpoch } from '../epoch.js';
import { RedisNames } from './keys.js';
import { PendingRequests } from './requests.js';
import { PUBLISH, RELEASE_CONN, type LuaScript } from './scripts.js';
import { decodePublication, parseJson, type NodeQuery, type NodeReply, type NodeRequest, type QueryAnswers } from './wire.js';

export interface RedisBrokerOptions {
  url: string;
  prefix?: string;
  /** How long a wsId stays in the registry unless its node refreshes it. */
  registryTtlMs?: number;
  /** How long a command by wsId may wait for the node's answer. */
  requestTimeoutMs?: number;
  /** How long a cluster-wide query waits for every node. */
  queryTimeoutMs?: number;
  /** How long a stream's seq and epoch live after its last push. */
  streamTtlSeconds?: number;
  connectTimeoutMs?: number;
}

type Client = ReturnType<typeof createClient>;

const REGISTRY_BATCH = 1000;

function unavailable(err: unknown): BrokerUnavailableError {
  if (err instanceof BrokerUnavailableError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new BrokerUnavailableError(`Redis is unavailable (${message})`, { cause: err });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new BrokerUnavailableError(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class RedisBroker implements Broker {
  readonly engine = 'redis';
  /** Names this process's reply channel. */
  readonly processId = randomUUID();
  private readonly names: RedisNames;
  private readonly requests = new PendingRequests();
  private readonly localConns = new Set<string>();
  private gateway: GatewayHandler | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private outage = false;
  private readonly registryTtlMs: number;
  private readonly requestTimeoutMs: number;
  private readonly queryTimeoutMs: number;
  private readonly streamTtlSeconds: string;

  private constructor(
    private readonly commands: Client,
    private readonly subscriber: Client,
    options: RedisBrokerOptions,
    private readonly log: Logger,
  ) {
    this.names = new RedisNames(options.prefix ?? 'roomcast:');
    this.registryTtlMs = options.registryTtlMs ?? 30_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
    this.queryTimeoutMs = options.queryTimeoutMs ?? 2_000;
    this.streamTtlSeconds = String(options.streamTtlSeconds ?? 86_400);
  }

  /** Connects both clients (commands, and a second one in subscriber mode); fails if Redis cannot be reached in time. */
  static async connect(options: RedisBrokerOptions, log: Logger): Promise<RedisBroker> {
    const connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    const commands: Client = createClient({
      url: options.url,
      // a push Redis cannot take now must fail at once (503), not wait in a queue
      disableOfflineQueue: true,
      socket: { connectTimeout: connectTimeoutMs, reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 1000) },
    });
    const subscriber: Client = commands.duplicate({ disableOfflineQueue: false });
    const broker = new RedisBroker(commands, subscriber, options, log);
    broker.watch(commands, 'commands');
    broker.watch(subscriber, 'subscriber');
    const where = new URL(options.url).host;
    try {
      await withTimeout(Promise.all([commands.connect(), subscriber.connect()]), connectTimeoutMs, `connecting to Redis at ${where}`);
      await subscriber.subscribe(broker.names.replyChannel(broker.processId), broker.onReply);
    } catch (err) {
      commands.destroy();
      subscriber.destroy();
      throw new BrokerUnavailableError(`cannot reach Redis at ${where}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    commands.on('ready', () => broker.registerAll());
    return broker;
  }

  // --- gateway side ---

  async attachGateway(handler: GatewayHandler): Promise<void> {
    if (this.gateway !== undefined) throw new Error('a RedisBroker serves one gateway node; create one per node');
    this.gateway = handler;
    await Promise.all([
      this.subscriber.subscribe(this.names.allChannel, this.onAllMessage),
      this.subscriber.subscribe(this.names.nodeChannel(handler.nodeId), this.onNodeRequest),
      this.subscriber.subscribe(this.names.nodesChannel, this.onNodeRequest),
    ]);
    this.refreshTimer = setInterval(() => this.registerAll(), Math.max(100, Math.floor(this.registryTtlMs / 3)));
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
    try {
      await withTimeout(this.subscriber.subscribe(this.names.roomChannel(room), this.onRoomMessage), this.requestTimeoutMs, `subscribing to room ${room}`);
    } catch (err) {
      throw unavailable(err);
    }
  }

  async roomClosed(_nodeId: string, room: string): Promise<void> {
    await this.subscriber.unsubscribe(this.names.roomChannel(room), this.onRoomMessage);
  }

  connOpened(nodeId: string, wsId: string): void {
    this.localConns.add(wsId);
    this.commands.set(this.names.connKey(wsId), nodeId, { PX: this.registryTtlMs }).catch((err: unknown) => this.logRedisError(err, 'registering a connection'));
  }

  connClosed(nodeId: string, wsId: string): void {
    this.localConns.delete(wsId);
    this.runScript(RELEASE_CONN, [this.names.connKey(wsId)], [nodeId]).catch((err: unknown) => this.logRedisError(err, 'releasing a connection'));
  }

  // --- logic side ---

  async publish(stream: string, message: PushMessage): Promise<Publication> {
    const id = randomUUID();
    const channel = stream === ALL_STREAM ? this.names.allChannel : this.names.roomChannel(stream);
    let reply: unknown;
    try {
      reply = await this.runScript(PUBLISH, [this.names.streamKey(stream)], [channel, id, String(message.tag), message.val, newEpoch(), this.streamTtlSeconds]);
    } catch (err) {
      throw unavailable(err);
    }
    const [seq, epoch] = reply as [number, string];
    return { id, stream, seq, epoch, tag: message.tag, val: message.val };
  }

  async command<C extends ConnCommand>(cmd: C): Promise<ReplyTo<C> | undefined> {
    const key = this.names.connKey(cmd.wsId);
    let nodeId: string | null;
    try {
      nodeId = await this.commands.get(key);
    } catch (err) {
      throw unavailable(err);
    }
    if (nodeId === null) return undefined;
    const request = this.requests.open(this.requestTimeoutMs);
    const message: NodeRequest = { type: 'command', from: this.processId, reqId: request.reqId, cmd };
    let receivers: number;
    try {
      receivers = await this.commands.publish(this.names.nodeChannel(nodeId), JSON.stringify(message));
    } catch (err) {
      this.requests.cancel(request.reqId);
      throw unavailable(err);
    }
    if (receivers === 0) {
      // nobody listens on that node's channel: the node is gone, and so is the wsId
      this.requests.cancel(request.reqId);
      this.runScript(RELEASE_CONN, [key], [nodeId]).catch((err: unknown) => this.logRedisError(err, 'releasing a dead node connection'));
      return undefined;
    }
    const { replies, timedOut } = await request.wait(1);
    if (timedOut) throw new BrokerUnavailableError(`gateway node ${nodeId} did not answer within ${this.requestTimeoutMs} ms`);
    const reply = replies[0] as NodeReply;
    if (reply.error !== undefined) throw new BrokerUnavailableError(`gateway node ${nodeId} could not apply ${cmd.op}: ${reply.error}`);
    return reply.result as ReplyTo<C> | undefined;
  }

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
    const [perNode, rooms] = await Promise.all([this.gather<'stats'>({ kind: 'stats' }), this.roomCounts()]);
    const total = emptyNodeStats();
    for (const stats of perNode) addNodeStats(total, stats);
    total.rooms = rooms.length;
    return { ...total, nodes: perNode.length };
  }

  isReady(): boolean {
    return this.commands.isReady && this.subscriber.isReady;
  }

  async close(): Promise<void> {
    clearInterval(this.refreshTimer);
    this.requests.cancelAll();
    for (const client of [this.commands, this.subscriber]) {
      if (!client.isOpen) continue;
      await withTimeout(client.close(), 1000, 'closing the Redis connection').catch(() => client.destroy());
    }
  }

  // --- internals ---

  private readonly onRoomMessage = (message: string, channel: string): void => {
    const pub = decodePublication(this.names.roomOfChannel(channel), message);
    if (pub !== undefined) this.gateway?.onPublication(pub);
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
      reply.result = request.type === 'command' ? await gateway.onCommand(request.cmd) : this.answerQuery(gateway, request.query);
    } catch (err) {
      reply.error = err instanceof Error ? err.message : String(err);
    }
    await this.commands.publish(this.names.replyChannel(request.from), JSON.stringify(reply)).catch((err: unknown) => this.logRedisError(err, 'answering a request'));
  }

  private answerQuery(gateway: GatewayHandler, query: NodeQuery): QueryAnswers[NodeQuery['kind']] {
    switch (query.kind) {
      case 'roomCounts':
        return [...gateway.roomCounts()];
      case 'roomMembers':
        return gateway.roomMembers(query.room);
      case 'stats':
        return gateway.stats();
    }
  }

  private async gather<K extends NodeQuery['kind']>(query: NodeQuery & { kind: K }): Promise<QueryAnswers[K][]> {
    const request = this.requests.open(this.queryTimeoutMs);
    const message: NodeRequest = { type: 'query', from: this.processId, reqId: request.reqId, query };
    let receivers: number;
    try {
      receivers = await this.commands.publish(this.names.nodesChannel, JSON.stringify(message));
    } catch (err) {
      this.requests.cancel(request.reqId);
      throw unavailable(err);
    }
    if (receivers === 0) {
      this.requests.cancel(request.reqId);
      return [];
    }
    const { replies, timedOut } = await request.wait(receivers);
    if (timedOut) this.log.warn({ query: query.kind, answered: replies.length, nodes: receivers }, 'not every gateway node answered in time');
    return replies.filter((r) => (r as NodeReply).error === undefined).map((r) => (r as NodeReply).result as QueryAnswers[K]);
  }

  /** (Re)writes every local wsId into the registry: keeps them from expiring, and restores them after Redis lost its data. */
  private registerAll(): void {
    const gateway = this.gateway;
    if (gateway === undefined || this.localConns.size === 0 || !this.commands.isReady) return;
    const wsIds = [...this.localConns];
    for (let i = 0; i < wsIds.length; i += REGISTRY_BATCH) {
      const batch = this.commands.multi();
      for (const wsId of wsIds.slice(i, i + REGISTRY_BATCH)) batch.set(this.names.connKey(wsId), gateway.nodeId, { PX: this.registryTtlMs });
      batch.execAsPipeline().catch((err: unknown) => this.logRedisError(err, 'refreshing the registry'));
    }
  }

  private async runScript(lua: LuaScript, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await this.commands.evalSha(lua.sha, { keys, arguments: args });
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.commands.eval(lua.source, { keys, arguments: args });
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

  private logRedisError(err: unknown, doing: string): void {
    this.log.debug({ err }, `Redis error while ${doing}`);
  }
}
