/**
 * Requests between processes over Redis pub/sub: asking one gateway node (a
 * command by wsId, a yield for a resume elsewhere) or every node (a query),
 * gathering their answers on this process's reply channel, and answering the
 * requests that reach the attached gateway node.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { GatewayHandler, YieldAnswer } from '../broker.js';
import { nodeRooms } from '../room-page.js';
import type { RedisCalls } from './calls.js';
import type { RedisNames } from './keys.js';
import { PendingRequests } from './requests.js';
import { RELEASE_CONN } from './scripts.js';
import { parseJson, type NodeQuery, type NodeReply, type NodeRequest, type QueryAnswers } from './wire.js';
import { errorMessage } from '../../error-message.js';

/** Omit over each member of a union (Omit itself would merge them). */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Bytes of the largest reply published as it is; a larger one goes through a key. */
export const MAX_PUBLISHED_REPLY = 64 * 1024;
/** A stored reply outlives any wait for it (queries wait 2 s). */
const STORED_REPLY_TTL_MS = 30_000;

export type NodeAnswer = { status: 'dead' | 'reconnecting' | 'silent' } | { status: 'answered'; reply: NodeReply };

export class NodeRequests {
  private readonly requests = new PendingRequests();
  /** Nodes that answered a query with nothing, already warned of. */
  private readonly warnedUnanswered = new Set<string>();

  constructor(
    private readonly processId: string,
    private readonly names: RedisNames,
    private readonly calls: RedisCalls,
    private readonly log: Logger,
    private readonly queryTimeoutMs: number,
    private readonly recoveryWindowMs: number,
    private readonly gateway: () => GatewayHandler | undefined,
    /** Whether a node whose channel has no subscriber is alive and resubscribing (src/broker/redis/node-state.ts). */
    private readonly reconnecting: (nodeId: string) => Promise<boolean>,
  ) {}

  /**
   * Sends a request about `wsId` to the node that holds it. A PUBLISH that
   * reaches no one means the node is gone (its registry entry goes, and the
   * session's recovery window starts now), unless the node's state says it is
   * reconnecting to Redis: then the node and its entry are left as they are.
   */
  async ask(nodeId: string, wsId: string, body: DistributiveOmit<Exclude<NodeRequest, { type: 'query' }>, 'from' | 'reqId'>, timeoutMs: number): Promise<NodeAnswer> {
    const request = this.requests.open(timeoutMs);
    const message: NodeRequest = { ...body, from: this.processId, reqId: request.reqId };
    const receivers = await this.sendRequest(request.reqId, this.calls.publishBy(this.names.nodeChannel(nodeId), JSON.stringify(message)));
    if (receivers === 0) {
      if (await this.calls.bounded(() => this.reconnecting(nodeId))) return { status: 'reconnecting' };
      await this.forgetDeadNode(nodeId, wsId);
      return { status: 'dead' };
    }
    const { replies, timedOut } = await request.wait(1);
    return timedOut ? { status: 'silent' } : { status: 'answered', reply: replies[0] as NodeReply };
  }

  async gather<K extends NodeQuery['kind']>(query: NodeQuery & { kind: K }, decisive?: (reply: unknown) => boolean): Promise<QueryAnswers[K][]> {
    return [...(await this.gatherByNode<K>(query, decisive)).values()];
  }

  /**
   * Every gateway node's answer, by the id of the process that answered (new each time a node starts);
   * only those that arrived until then once a reply is `decisive`.
   */
  async gatherByNode<K extends NodeQuery['kind']>(query: NodeQuery & { kind: K }, decisive?: (reply: unknown) => boolean): Promise<Map<string, QueryAnswers[K]>> {
    const request = this.requests.open(this.queryTimeoutMs);
    const message: NodeRequest = { type: 'query', from: this.processId, reqId: request.reqId, query };
    const receivers = await this.sendRequest(request.reqId, this.calls.bounded(() => this.calls.client.publish(this.names.nodesChannel, JSON.stringify(message))));
    if (receivers === 0) return new Map();
    const { replies, timedOut } = await request.wait(receivers, decisive);
    if (timedOut) this.log.warn({ query: query.kind, answered: replies.length, nodes: receivers }, 'not every gateway node answered in time');
    const answers = new Map<string, QueryAnswers[K]>();
    for (const reply of replies as NodeReply[]) {
      if (reply.error !== undefined) continue;
      if (reply.result === undefined) this.unanswered(reply.from, query.kind);
      else answers.set(reply.from, reply.result as QueryAnswers[K]);
    }
    // every live node replied: a node warned of that did not has stopped (ids are new at each start), and is forgotten
    if (!timedOut && replies.length === receivers) this.forgetStopped(new Set((replies as NodeReply[]).map((reply) => reply.from)));
    return answers;
  }

  /**
   * Every query has an answer; a node that gives none does not know the query:
   * it runs another version of roomcast (a rolling upgrade under way). Its part
   * is left out, and said once per node, not at every /stats of an admin page.
   */
  private unanswered(node: string, kind: NodeQuery['kind']): void {
    if (this.warnedUnanswered.has(node)) return;
    this.warnedUnanswered.add(node);
    this.log.warn({ node, query: kind }, 'a gateway node answered nothing to a query: it runs another version of roomcast; its part of the answers is left out until it runs this one');
  }

  private forgetStopped(live: ReadonlySet<string>): void {
    for (const node of this.warnedUnanswered) if (!live.has(node)) this.warnedUnanswered.delete(node);
  }

  /** Settles every request still waiting (on close). */
  cancelAll(): void {
    this.requests.cancelAll();
  }

  /** Listens on this process's reply channel. */
  readonly onReply = (message: string): void => {
    const reply = parseJson<NodeReply>(message);
    if (reply?.type !== 'reply') return;
    if (reply.stored === undefined) this.requests.deliver(reply.reqId, reply);
    else void this.readStored(reply, reply.stored);
  };

  /** A reply a node stored instead of publishing: read (and removed) on the command connection, which Redis never drops for its output. */
  private async readStored(pointer: NodeReply, stored: string): Promise<void> {
    let reply: NodeReply | undefined;
    try {
      const text = await this.calls.bounded(() => this.calls.client.getDel(stored));
      reply = text === null ? undefined : parseJson<NodeReply>(text);
      if (reply === undefined) throw new Error(`the stored reply ${stored} is gone`);
    } catch (err) {
      reply = { type: 'reply', from: pointer.from, reqId: pointer.reqId, error: errorMessage(err) };
    }
    this.requests.deliver(pointer.reqId, reply);
  }

  /** Listens on the attached node's channel and on the channel of every node. */
  readonly onRequest = (message: string): void => {
    const request = parseJson<NodeRequest>(message);
    const gateway = this.gateway();
    if (request === undefined || gateway === undefined) return;
    void this.answer(gateway, request);
  };

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
    await this.calls.client.pExpire(this.names.sessionKey(wsId), this.recoveryWindowMs, 'LT').catch((err: unknown) => this.calls.logError(err, 'ending a dead node session'));
  }

  private async answer(gateway: GatewayHandler, request: NodeRequest): Promise<void> {
    const reply: NodeReply = { type: 'reply', from: this.processId, reqId: request.reqId };
    try {
      if (request.type === 'command') reply.result = await gateway.onCommand(request.cmd);
      else if (request.type === 'yield') reply.result = await this.yieldSession(gateway, request.wsId, request.uid);
      else reply.result = answerQuery(gateway, request.query);
    } catch (err) {
      reply.error = errorMessage(err);
    }
    await this.sendReply(request.from, reply).catch((err: unknown) => this.calls.logError(err, 'answering a request'));
  }

  /**
   * Publishes a reply; one larger than MAX_PUBLISHED_REPLY (a node's room ids
   * with 100,000 rooms: 1 MB and more) is stored in a key and only its name
   * published. Redis drops a subscriber whose unread messages pass 32 MB
   * (client-output-buffer-limit pubsub), and the asking process's subscriber
   * also carries its gateway's pushes: dropped, it would resubscribe to every
   * room and read each one's gap back from history.
   */
  private async sendReply(to: string, reply: NodeReply): Promise<void> {
    let text = JSON.stringify(reply);
    if (Buffer.byteLength(text) > MAX_PUBLISHED_REPLY) {
      const stored = this.names.answerKey(randomUUID());
      await this.calls.client.set(stored, text, { expiration: { type: 'PX', value: STORED_REPLY_TTL_MS } });
      text = JSON.stringify({ type: 'reply', from: reply.from, reqId: reply.reqId, stored } satisfies NodeReply);
    }
    await this.calls.client.publish(this.names.replyChannel(to), text);
  }

  /** The wsId is no longer registered to this node before the answer goes out, so the asking node can claim it. */
  private async yieldSession(gateway: GatewayHandler, wsId: string, uid: string | undefined): Promise<YieldAnswer> {
    const answer = gateway.yieldSession(wsId, uid);
    if (answer === 'yielded' || answer === 'absent') await this.calls.runScript(RELEASE_CONN, [this.names.connKey(wsId)], [gateway.nodeId]);
    return answer;
  }
}

function answerQuery(gateway: GatewayHandler, query: NodeQuery): QueryAnswers[NodeQuery['kind']] {
  switch (query.kind) {
    case 'rooms':
      return nodeRooms(gateway.roomIds(), (room) => gateway.roomSize(room), query.query);
    case 'roomMembers':
      return gateway.roomMemberPage(query.room, query.first);
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
