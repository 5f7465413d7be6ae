/**
 * The shape of the `data` of each logic API answer, as zod schemas: the routes
 * (routes.ts) put them in the OpenAPI document, and the server-side API client
 * (api/) derives its types from them with type-only imports (no zod at run time).
 */
import { z } from 'zod';
import { PROCESS_ROLES } from '../broker/broker.js';

/** A connection as GET /conns/:wsId and GET /users/:uid describe it (`uid` when its client authenticated). */
export const connectedInfo = z.object({
  wsId: z.string(),
  state: z.literal('connected'),
  node: z.string(),
  uid: z.string().optional(),
  rooms: z.array(z.string()),
  remoteAddress: z.string(),
  connectedAt: z.string(),
});

const repeated = z
  .boolean()
  .optional()
  .meta({ description: 'Only for a push that gave an idempotency key: true when a push with that key was made before, and this one was not (the answer is the first push\'s)' });

export const pushAllData = z.object({ id: z.string(), seq: z.int(), repeated });

export const pushRoomData = z.object({ id: z.string(), room: z.string(), seq: z.int(), repeated });

export const pushConnData = z.object({ wsId: z.string(), delivered: z.boolean(), repeated });

export const pushUserData = z.object({ id: z.string(), uid: z.string(), nodes: z.int().meta({ description: 'Gateway nodes that hold a connection of the user' }), repeated });

export const membershipData = z.object({ room: z.string(), wsId: z.string(), changed: z.boolean() });

export const userData = z.object({ uid: z.string(), total: z.int(), offset: z.int(), limit: z.int(), connections: z.array(connectedInfo) });

export const kickData = z.object({
  wsId: z.string(),
  kicked: z.boolean().meta({ description: 'False when the session ended by itself between finding it and kicking it' }),
});

export const roomsData = z.object({
  total: z.int(),
  offset: z.int(),
  limit: z.int(),
  rooms: z.array(z.object({ room: z.string(), members: z.int() })),
});

export const roomData = z.object({ room: z.string(), members: z.int(), offset: z.int(), limit: z.int(), wsIds: z.array(z.string()) });

export const historyData = z.object({
  room: z.string(),
  seq: z.int(),
  epoch: z.string(),
  complete: z.boolean(),
  entries: z.array(z.object({ seq: z.int(), id: z.string(), tag: z.int(), val: z.string() })),
});

export const connData = z.union([
  connectedInfo,
  z.object({ wsId: z.string(), state: z.literal('away'), uid: z.string().optional(), rooms: z.array(z.string()), awayUntil: z.string() }),
]);

export const healthData = z.object({ status: z.literal('ok') });

export const readyData = z.object({ status: z.literal('ready') });

/** A count per kind of push. */
const pushCounts = z.object({ all: z.int(), room: z.int(), conn: z.int(), user: z.int() });

const clusterProcess = z.object({ id: z.string(), role: z.enum(PROCESS_ROLES), pid: z.int(), host: z.string() });

export const statsData = z.object({
  engine: z.string(),
  nodes: z.int(),
  connections: z.int(),
  rooms: z.int(),
  deliveries: z.int(),
  slowConsumerCloses: z.int(),
  missedMessageCloses: z.int().meta({ description: 'Connections closed (4005) because they missed pushes history could not give back' }),
  sessionTakenCloses: z.int().meta({ description: 'Connections closed (4500) because a resume on another connection took their session over' }),
  resumeRetryCloses: z.int().meta({ description: 'Resumes closed (1013) because they could not be decided then; the client resumes again' }),
  heartbeatTimeouts: z.int(),
  malformedCloses: z.int(),
  tooLargeCloses: z.int().meta({ description: 'Connections closed (1009) for a message over --max-payload' }),
  kicks: z.int(),
  resumes: z.int(),
  pushes: pushCounts,
  repeatedPushes: pushCounts.meta({ description: 'Pushes this logic API did not make because they repeated an idempotency key: each got the first push\'s answer' }),
  failedPushes: pushCounts.meta({ description: 'Pushes this logic API answered 503 because the broker could not take them (Redis away, too slow, or refusing writes)' }),
  limits: z
    .object({
      maxConnections: z.int(),
      maxConnectionsPerIp: z.int(),
      maxConnectionsPerUser: z.int(),
      connectRatePerIp: z.int(),
      allowedOrigins: z.int(),
      maxFramesPerSecond: z.int(),
      maxRoomsPerConnection: z.int(),
      maxValSize: z.int(),
      awaySessions: z.int(),
      historyMaxMemory: z.int(),
      idempotencyKeys: z.int(),
    })
    .meta({
      description:
        'How often each limit was hit: connections refused or closed, joins refused, pushes refused (413), away sessions ended early (awaySessions: a node or an address past its limit of them), history entries dropped to keep history within --history-max-memory (historyMaxMemory: memory engine only), idempotency keys of pushes dropped before their window ended to keep them within their memory bound (idempotencyKeys: memory engine only)',
    }),
  auth: z.object({ failures: z.int(), expired: z.int() }).meta({ description: 'Client tokens refused, and connections closed (4001) when their token expired' }),
  settingsMismatch: z
    .array(
      z.object({
        flag: z.string(),
        values: z.array(
          z.object({
            value: z.int(),
            processes: z.array(clusterProcess),
          }),
        ),
      }),
    )
    .meta({
      description:
        'The settings the live processes on Redis must share (--history-size, --history-ttl, --recovery-window) and do not: each with its values and the processes that run each. Empty when they agree, and always on the memory engine',
    }),
  versionMismatch: z
    .array(z.object({ version: z.string().nullable(), processes: z.array(clusterProcess) }))
    .meta({
      description:
        'The roomcast versions the live processes on Redis run while they do not all run one (a rolling upgrade): each with the processes that run it, the most common first; version null for a process of a version too old to record it. Empty when they agree, and always on the memory engine',
    }),
  uptimeSeconds: z.number(),
});

export type StatsData = z.output<typeof statsData>;
