/**
 * The embedded engine: every gateway node lives in this process, so a
 * publication is handed to each node directly and a command goes straight to
 * the node that holds the wsId. It models the Redis engine's behaviour (rooms
 * opened per node, a wsId registry) so one contract suite covers both.
 */
import { randomUUID } from 'node:crypto';
import { ALL_STREAM } from '../protocol/room-id.js';
import {
  addNodeStats,
  emptyNodeStats,
  type Broker,
  type ConnCommand,
  type GatewayHandler,
  type NodeStats,
  type Publication,
  type PushMessage,
  type ReplyTo,
  type RoomCount,
} from './broker.js';
import { newEpoch } from './epoch.js';

interface StreamPosition {
  seq: number;
  epoch: string;
}

export class MemoryBroker implements Broker {
  readonly engine = 'memory';
  private readonly nodes = new Map<string, GatewayHandler>();
  /** room -> ids of the nodes that have members in it */
  private readonly roomNodes = new Map<string, Set<string>>();
  private readonly connNodes = new Map<string, GatewayHandler>();
  private readonly streams = new Map<string, StreamPosition>([[ALL_STREAM, { seq: 0, epoch: newEpoch() }]]);

  async attachGateway(handler: GatewayHandler): Promise<void> {
    this.nodes.set(handler.nodeId, handler);
  }

  async detachGateway(handler: GatewayHandler): Promise<void> {
    this.nodes.delete(handler.nodeId);
    for (const room of [...this.roomNodes.keys()]) this.removeRoomNode(handler.nodeId, room);
    for (const [wsId, node] of this.connNodes) if (node === handler) this.connNodes.delete(wsId);
  }

  async roomOpened(nodeId: string, room: string): Promise<void> {
    let nodes = this.roomNodes.get(room);
    if (nodes === undefined) {
      nodes = new Set();
      this.roomNodes.set(room, nodes);
    }
    nodes.add(nodeId);
  }

  async roomClosed(nodeId: string, room: string): Promise<void> {
    this.removeRoomNode(nodeId, room);
  }

  connOpened(nodeId: string, wsId: string): void {
    const node = this.nodes.get(nodeId);
    if (node !== undefined) this.connNodes.set(wsId, node);
  }

  connClosed(_nodeId: string, wsId: string): void {
    this.connNodes.delete(wsId);
  }

  async publish(stream: string, message: PushMessage): Promise<Publication> {
    const position = this.positionOf(stream);
    position.seq += 1;
    const pub: Publication = { id: randomUUID(), stream, seq: position.seq, epoch: position.epoch, tag: message.tag, val: message.val };
    if (stream === ALL_STREAM) {
      for (const node of this.nodes.values()) node.onPublication(pub);
    } else {
      const nodeIds = this.roomNodes.get(stream);
      if (nodeIds !== undefined) for (const id of nodeIds) this.nodes.get(id)?.onPublication(pub);
    }
    return pub;
  }

  async command<C extends ConnCommand>(cmd: C): Promise<ReplyTo<C> | undefined> {
    const node = this.connNodes.get(cmd.wsId);
    return node === undefined ? undefined : node.onCommand(cmd);
  }

  async roomCounts(): Promise<RoomCount[]> {
    const totals = new Map<string, number>();
    for (const node of this.nodes.values()) {
      for (const [room, members] of node.roomCounts()) totals.set(room, (totals.get(room) ?? 0) + members);
    }
    return [...totals].map(([room, members]) => ({ room, members }));
  }

  async roomMembers(room: string): Promise<string[]> {
    return [...this.nodes.values()].flatMap((node) => node.roomMembers(room));
  }

  async stats(): Promise<NodeStats & { nodes: number }> {
    const total = emptyNodeStats();
    for (const node of this.nodes.values()) addNodeStats(total, node.stats());
    total.rooms = this.roomNodes.size;
    return { ...total, nodes: this.nodes.size };
  }

  isReady(): boolean {
    return true;
  }

  async close(): Promise<void> {
    this.nodes.clear();
    this.roomNodes.clear();
    this.connNodes.clear();
  }

  /** Rooms keep their position while some node has members in them. */
  private positionOf(stream: string): StreamPosition {
    let position = this.streams.get(stream);
    if (position === undefined) {
      position = { seq: 0, epoch: newEpoch() };
      if (this.roomNodes.has(stream)) this.streams.set(stream, position);
    }
    return position;
  }

  private removeRoomNode(nodeId: string, room: string): void {
    const nodes = this.roomNodes.get(room);
    if (nodes === undefined || !nodes.delete(nodeId) || nodes.size > 0) return;
    this.roomNodes.delete(room);
    this.streams.delete(room);
  }
}
