/**
 * The logic API's routes, as data: method, path, input schemas, the shape of
 * the answer's `data`, and the handler. The server registers them and the
 * OpenAPI document is generated from the same table.
 */
import { z } from 'zod';
import { BrokerUnavailableError, type Broker, type PushMessage, type PushOnce } from '../broker/broker.js';
import { ALL_STREAM } from '../protocol/room-id.js';
import { apiErrors, type ErrorStatus } from './errors.js';
import { sortedPage } from '../first-sorted.js';
import { countQuery, idempotencyKeyField, roomIdField, tagField, uidField, valField, wsIdField } from './fields.js';
import { connData, healthData, historyData, kickData, membershipData, pushAllData, pushConnData, pushRoomData, pushUserData, readyData, roomData, roomsData, statsData, userData, type StatsData } from './answers.js';
import type { PushFailures } from './push-failures.js';
import { IDEMPOTENCY_HEADER, idempotencyHeaders, pushOnceByClaim, pushOnceOf, withRepeated, type PushKind } from './push-once.js';

export interface PushCounters {
  all: number;
  room: number;
  conn: number;
  user: number;
}

export interface RouteContext {
  broker: Broker;
  pushes: PushCounters;
  /** Pushes not made because they repeated an idempotency key (they got the first push's answer). */
  repeats: PushCounters;
  /** Pushes answered 503: the broker could not take them. */
  pushFailures: PushFailures;
  /** --idempotency-window: how long a push's idempotency key is kept (0: keys are refused). */
  idempotencyWindowMs: number;
  /** Pushes refused because their val was over --max-val-size. */
  refusedValSize: { count: number };
  startedAt: number;
  /** Why the node cannot serve yet, or undefined when it can. */
  notReadyReason(): string | undefined;
}

export interface RouteInput<B, Q, P, H = unknown> {
  body: B;
  query: Q;
  params: P;
  /** The headers the route declares, parsed only when the request sends one of them (an empty object otherwise). */
  headers: H;
}

export interface RouteSpec<B extends z.ZodType, Q extends z.ZodType, P extends z.ZodType, H extends z.ZodType = z.ZodNever> {
  method: 'GET' | 'POST';
  url: string;
  summary: string;
  /** False for health probes, which answer without the API key. */
  auth?: boolean;
  /** Error statuses beyond those of its input (400, 413, 415) and access (401, 403), for the OpenAPI document. */
  errors: readonly ErrorStatus[];
  body?: B;
  query?: Q;
  params?: P;
  /** Request headers the route reads (an object schema keyed by the lower-case name). */
  headers?: H;
  /** Schema of the success answer's `data`, for the OpenAPI document. */
  data: z.ZodType;
  handle(input: RouteInput<z.output<B>, z.output<Q>, z.output<P>, z.output<H>>, ctx: RouteContext): Promise<unknown>;
}

export type AnyRoute = RouteSpec<z.ZodType, z.ZodType, z.ZodType, z.ZodType>;

function route<B extends z.ZodType = z.ZodNever, Q extends z.ZodType = z.ZodNever, P extends z.ZodType = z.ZodNever, H extends z.ZodType = z.ZodNever>(
  spec: RouteSpec<B, Q, P, H>,
): AnyRoute {
  return spec as unknown as AnyRoute;
}

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

const page = {
  offset: countQuery('offset', 1_000_000_000, 'How many entries to skip (default 0)'),
  limit: countQuery('limit', MAX_PAGE, `How many entries to return (default ${DEFAULT_PAGE}, at most ${MAX_PAGE})`),
};

/** The page a query asks for, its defaults filled in. */
function pageOf(query: { offset?: number; limit?: number }): { offset: number; limit: number } {
  return { offset: query.offset ?? 0, limit: query.limit ?? DEFAULT_PAGE };
}

const pushHeaders = z.object(idempotencyHeaders);

/** Counts a push made, or one not made because it repeated a key. */
function count(ctx: RouteContext, kind: PushKind, repeatedKey: boolean | undefined): void {
  if (repeatedKey === true) ctx.repeats[kind]++;
  else ctx.pushes[kind]++;
  ctx.pushFailures.succeeded();
}

/** `push()`, with a failure to hand it on (answered 503) counted and logged. */
async function handedOn<T>(ctx: RouteContext, kind: PushKind, push: () => Promise<T>): Promise<T> {
  try {
    return await push();
  } catch (err) {
    if (err instanceof BrokerUnavailableError) ctx.pushFailures.failed(kind, err.message);
    throw err;
  }
}

/** A push to a connection or a user, made once per key when it gives one (src/logic/push-once.ts). */
async function pushOnce<T extends object>(ctx: RouteContext, kind: PushKind, once: PushOnce | undefined, push: () => Promise<T>): Promise<T> {
  const { data, repeated } = await handedOn(ctx, kind, async () => (once === undefined ? { data: await push(), repeated: false } : await pushOnceByClaim(ctx.broker, once, push)));
  count(ctx, kind, repeated);
  return withRepeated(data, once, repeated);
}

async function pushToConn(broker: Broker, body: PushMessage & { wsId: string }): Promise<{ wsId: string; delivered: boolean }> {
  const { delivered } = await requireConn(broker.command({ op: 'push', wsId: body.wsId, tag: body.tag, val: body.val }), body.wsId);
  return { wsId: body.wsId, delivered };
}

async function pushToUser(broker: Broker, body: PushMessage & { uid: string }): Promise<{ id: string; uid: string; nodes: number }> {
  const { id, nodes } = await broker.publishToUser(body.uid, { tag: body.tag, val: body.val });
  return { id, uid: body.uid, nodes };
}

async function requireConn<T>(reply: Promise<T | undefined>, wsId: string): Promise<T> {
  const answer = await reply;
  if (answer === undefined) throw apiErrors.wsIdNotFound(wsId);
  return answer;
}

/** The data of GET /stats (and of each event of GET /stats/stream). */
export async function readStats(ctx: RouteContext): Promise<StatsData> {
  const s = await ctx.broker.stats();
  return {
    engine: ctx.broker.engine,
    nodes: s.nodes,
    connections: s.connections,
    rooms: s.rooms,
    deliveries: s.deliveries,
    slowConsumerCloses: s.slowConsumerCloses,
    missedMessageCloses: s.missedMessageCloses,
    sessionTakenCloses: s.sessionTakenCloses,
    resumeRetryCloses: s.resumeRetryCloses,
    heartbeatTimeouts: s.heartbeatTimeouts,
    malformedCloses: s.malformedCloses,
    tooLargeCloses: s.tooLargeCloses,
    kicks: s.kicks,
    resumes: s.resumes,
    pushes: { ...ctx.pushes },
    repeatedPushes: { ...ctx.repeats },
    failedPushes: { ...ctx.pushFailures.counts },
    limits: {
      maxConnections: s.refusedMaxConnections,
      maxConnectionsPerIp: s.refusedMaxConnectionsPerIp,
      maxConnectionsPerUser: s.refusedMaxConnectionsPerUser,
      connectRatePerIp: s.refusedConnectRate,
      allowedOrigins: s.refusedOrigin,
      maxFramesPerSecond: s.frameRateCloses,
      maxRoomsPerConnection: s.roomLimitRefusals,
      maxValSize: ctx.refusedValSize.count,
      awaySessions: s.awaySessionsEnded,
      historyMaxMemory: s.historyEvictions,
      idempotencyKeys: s.pushKeyEvictions,
    },
    auth: { failures: s.authFailures, expired: s.tokenExpiries },
    settingsMismatch: s.settingsMismatch,
    versionMismatch: s.versionMismatch,
    uptimeSeconds: (Date.now() - ctx.startedAt) / 1000,
  };
}

export const routes: AnyRoute[] = [
  route({
    method: 'POST',
    url: '/push/all',
    errors: [503],
    summary: 'Push a message to every connection',
    body: z.object({ val: valField(), tag: tagField(), idempotencyKey: idempotencyKeyField() }),
    headers: pushHeaders,
    data: pushAllData,
    async handle({ body, headers }, ctx) {
      const once = pushOnceOf(ctx.idempotencyWindowMs, 'all', '', body.idempotencyKey, headers[IDEMPOTENCY_HEADER]);
      const pub = await handedOn(ctx, 'all', () => ctx.broker.publish(ALL_STREAM, { tag: body.tag, val: body.val }, once));
      count(ctx, 'all', pub.repeated);
      return withRepeated({ id: pub.id, seq: pub.seq }, once, pub.repeated);
    },
  }),
  route({
    method: 'POST',
    url: '/push/room',
    errors: [503],
    summary: 'Push a message to every member of a room',
    body: z.object({ val: valField(), tag: tagField(), id: roomIdField(), idempotencyKey: idempotencyKeyField() }),
    headers: pushHeaders,
    data: pushRoomData,
    async handle({ body, headers }, ctx) {
      const once = pushOnceOf(ctx.idempotencyWindowMs, 'room', body.id, body.idempotencyKey, headers[IDEMPOTENCY_HEADER]);
      const pub = await handedOn(ctx, 'room', () => ctx.broker.publish(body.id, { tag: body.tag, val: body.val }, once));
      count(ctx, 'room', pub.repeated);
      return withRepeated({ id: pub.id, room: body.id, seq: pub.seq }, once, pub.repeated);
    },
  }),
  route({
    method: 'POST',
    url: '/push/conn',
    errors: [404, 409, 503],
    summary: 'Push a message to one connection',
    body: z.object({ wsId: wsIdField(), val: valField(), tag: tagField(), idempotencyKey: idempotencyKeyField() }),
    headers: pushHeaders,
    data: pushConnData,
    async handle({ body, headers }, ctx) {
      return pushOnce(ctx, 'conn', pushOnceOf(ctx.idempotencyWindowMs, 'conn', body.wsId, body.idempotencyKey, headers[IDEMPOTENCY_HEADER]), () => pushToConn(ctx.broker, body));
    },
  }),
  route({
    method: 'POST',
    url: '/push/user',
    errors: [409, 503],
    summary: 'Push a message to every connection of a user (clients authenticated with a token whose sub is uid), on every node',
    body: z.object({ uid: uidField(), val: valField(), tag: tagField(), idempotencyKey: idempotencyKeyField() }),
    headers: pushHeaders,
    data: pushUserData,
    async handle({ body, headers }, ctx) {
      return pushOnce(ctx, 'user', pushOnceOf(ctx.idempotencyWindowMs, 'user', body.uid, body.idempotencyKey, headers[IDEMPOTENCY_HEADER]), () => pushToUser(ctx.broker, body));
    },
  }),
  route({
    method: 'GET',
    url: '/users/:uid',
    errors: [503],
    summary: "A user's connections, on every node, sorted by wsId (paged)",
    params: z.object({ uid: uidField() }),
    query: z.object(page),
    data: userData,
    async handle({ params, query }, ctx) {
      const wanted = pageOf(query);
      const all = await ctx.broker.userConnections(params.uid);
      return { uid: params.uid, total: all.length, ...wanted, connections: sortedPage(all, wanted, (c) => c.wsId) };
    },
  }),
  route({
    method: 'POST',
    url: '/room/join',
    errors: [404, 409, 503],
    summary: 'Add a connection to a room (idempotent)',
    body: z.object({ id: roomIdField(), wsId: wsIdField() }),
    data: membershipData,
    async handle({ body }, ctx) {
      const { changed, refused } = await requireConn(ctx.broker.command({ op: 'join', wsId: body.wsId, room: body.id }), body.wsId);
      if (refused !== undefined) throw apiErrors.conflict(refused);
      return { room: body.id, wsId: body.wsId, changed };
    },
  }),
  route({
    method: 'POST',
    url: '/room/leave',
    errors: [404, 503],
    summary: 'Remove a connection from a room (idempotent)',
    body: z.object({ id: roomIdField(), wsId: wsIdField() }),
    data: membershipData,
    async handle({ body }, ctx) {
      const { changed } = await requireConn(ctx.broker.command({ op: 'leave', wsId: body.wsId, room: body.id }), body.wsId);
      return { room: body.id, wsId: body.wsId, changed };
    },
  }),
  route({
    method: 'POST',
    url: '/conn/kick',
    errors: [404, 503],
    summary: 'Close a connection with code 4003, or end its session while it is away',
    body: z.object({ wsId: wsIdField() }),
    data: kickData,
    async handle({ body }, ctx) {
      const kick = { op: 'kick', wsId: body.wsId } as const;
      let { kicked } = await requireConn(ctx.broker.command(kick), body.wsId);
      // an away session a resume took between finding it and ending it is on a connection now: kick that one
      if (!kicked) kicked = (await ctx.broker.command(kick))?.kicked ?? false;
      return { wsId: body.wsId, kicked };
    },
  }),
  route({
    method: 'GET',
    url: '/rooms',
    errors: [503],
    summary: 'List rooms with their member counts, sorted by id',
    query: z.object({
      prefix: z.string().max(128, { error: 'prefix must be at most 128 characters' }).optional().meta({ description: 'Only rooms whose id starts with this' }),
      contains: z.string().max(128, { error: 'contains must be at most 128 characters' }).optional().meta({ description: 'Only rooms whose id contains this' }),
      ...page,
    }),
    data: roomsData,
    async handle({ query }, ctx) {
      const wanted = pageOf(query);
      const { total, rooms } = await ctx.broker.roomPage({ prefix: query.prefix ?? '', contains: query.contains ?? '', ...wanted });
      return { total, ...wanted, rooms };
    },
  }),
  route({
    method: 'GET',
    url: '/rooms/:id',
    errors: [503],
    summary: "A room's member count and member wsIds (paged)",
    params: z.object({ id: roomIdField() }),
    query: z.object(page),
    data: roomData,
    async handle({ params, query }, ctx) {
      const wanted = pageOf(query);
      const members = await ctx.broker.roomMemberPage(params.id, wanted);
      return { room: params.id, members: members.total, ...wanted, wsIds: members.wsIds };
    },
  }),
  route({
    method: 'GET',
    url: '/rooms/:id/history',
    errors: [503],
    summary: "A room's recent publications after a seq, oldest first",
    params: z.object({ id: roomIdField() }),
    query: z.object({
      since: countQuery('since', Number.MAX_SAFE_INTEGER, 'Return publications with a seq above this (default 0)'),
      limit: page.limit,
    }),
    data: historyData,
    async handle({ params, query }, ctx) {
      const history = await ctx.broker.history(params.id, query.since ?? 0, query.limit ?? DEFAULT_PAGE);
      return {
        room: params.id,
        seq: history.seq,
        epoch: history.epoch,
        complete: history.complete,
        entries: history.entries.map(({ seq, id, tag, val }) => ({ seq, id, tag, val })),
      };
    },
  }),
  route({
    method: 'GET',
    url: '/conns/:wsId',
    errors: [404, 503],
    summary: "A connection's rooms, remote address and connect time; or, for a dropped one within the recovery window, state away",
    params: z.object({ wsId: wsIdField() }),
    data: connData,
    async handle({ params }, ctx) {
      return requireConn(ctx.broker.command({ op: 'info', wsId: params.wsId }), params.wsId);
    },
  }),
  route({
    method: 'GET',
    url: '/stats',
    errors: [503],
    summary: 'Totals across every gateway node',
    data: statsData,
    handle: async (_input, ctx) => readStats(ctx),
  }),
  route({
    method: 'GET',
    url: '/healthz',
    errors: [],
    summary: 'Liveness: the process answers',
    auth: false,
    data: healthData,
    async handle() {
      return { status: 'ok' };
    },
  }),
  route({
    method: 'GET',
    url: '/readyz',
    errors: [503],
    summary: 'Readiness: listening, and the broker can hand pushes on (503 otherwise)',
    auth: false,
    data: readyData,
    async handle(_input, ctx) {
      const reason = ctx.notReadyReason();
      if (reason !== undefined) throw apiErrors.unavailable(`not ready: ${reason}`);
      return { status: 'ready' };
    },
  }),
];
