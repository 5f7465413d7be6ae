/**
 * The seam between the gateway, the logic API and the engines that connect
 * them (DESIGN.md "broker"). It has two halves:
 *
 * - `Broker`: what the gateway and the logic call. Each engine (`memory`,
 *   `redis`) implements it; nothing outside `src/broker/` knows which one runs.
 * - `GatewayHandler`: what a gateway node implements. Engines call it when a
 *   publication or a command by wsId reaches that node, and to answer queries.
 */

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

export interface ConnInfo {
  wsId: string;
  node: string;
  rooms: string[];
  remoteAddress: string;
  connectedAt: string;
}

/** Commands addressed to one connection by its wsId, and what each answers. */
export type ConnCommand =
  | { op: 'join'; wsId: string; room: string }
  | { op: 'leave'; wsId: string; room: string }
  | { op: 'push'; wsId: string; tag: number; val: string }
  | { op: 'kick'; wsId: string }
  | { op: 'info'; wsId: string };

export interface CommandReplies {
  join: { changed: boolean };
  leave: { changed: boolean };
  push: { delivered: boolean };
  kick: { kicked: boolean };
  info: ConnInfo;
}

export type ReplyTo<C extends ConnCommand> = CommandReplies[C['op']];

/** Counters kept by one gateway node; the cluster view sums them. */
export interface NodeStats {
  connections: number;
  rooms: number;
  deliveries: number;
  slowConsumerCloses: number;
  heartbeatTimeouts: number;
  malformedCloses: number;
  kicks: number;
}

export interface GatewayHandler {
  readonly nodeId: string;
  /** Fan a publication out to this node's members of `pub.stream`. */
  onPublication(pub: Publication): void;
  /** Apply a command to a local connection; undefined when the wsId is not here. */
  onCommand<C extends ConnCommand>(cmd: C): Promise<ReplyTo<C> | undefined>;
  /** Member count of every room this node has members in. */
  roomCounts(): Map<string, number>;
  /** wsIds of this node's members of `room`. */
  roomMembers(room: string): string[];
  stats(): NodeStats;
}

export interface RoomCount {
  room: string;
  members: number;
}

export interface Broker {
  readonly engine: string;

  // --- gateway side ---
  attachGateway(handler: GatewayHandler): Promise<void>;
  detachGateway(handler: GatewayHandler): Promise<void>;
  /** The node's first member joined `room`: publications to it must reach the node once this resolves. */
  roomOpened(nodeId: string, room: string): Promise<void>;
  /** The node's last member left `room`. */
  roomClosed(nodeId: string, room: string): Promise<void>;
  connOpened(nodeId: string, wsId: string): void;
  connClosed(nodeId: string, wsId: string): void;

  // --- logic side ---
  /** Accept a push into `stream` (a room id or `*`); resolves once it is handed on. */
  publish(stream: string, message: PushMessage): Promise<Publication>;
  /** Run a command on whichever node holds `cmd.wsId`; undefined when none does. */
  command<C extends ConnCommand>(cmd: C): Promise<ReplyTo<C> | undefined>;
  roomCounts(): Promise<RoomCount[]>;
  roomMembers(room: string): Promise<string[]>;
  stats(): Promise<NodeStats & { nodes: number }>;
  /** False while the engine cannot hand pushes on (e.g. Redis unreachable). */
  isReady(): boolean;
  close(): Promise<void>;
}

export function emptyNodeStats(): NodeStats {
  return { connections: 0, rooms: 0, deliveries: 0, slowConsumerCloses: 0, heartbeatTimeouts: 0, malformedCloses: 0, kicks: 0 };
}

export function addNodeStats(into: NodeStats, from: NodeStats): NodeStats {
  for (const key of Object.keys(into) as (keyof NodeStats)[]) into[key] += from[key];
  return into;
}

/** Thrown by an engine that cannot hand a push or command on right now; the API answers 503. */
export class BrokerUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BrokerUnavailableError';
  }
}
