/**
 * One gateway node: the connections it holds, their rooms, and fan-out.
 * Implements the broker's `GatewayHandler`, so whichever engine runs, a
 * publication or a command by wsId lands here the same way.
 */
import type { Logger } from 'pino';
import {
  type Broker,
  type ConnCommand,
  type ConnInfo,
  type GatewayHandler,
  type NodeStats,
  type Publication,
  type ReplyTo,
} from '../broker/broker.js';
import { joinedFrame, leftFrame, pushFrame, welcomeFrame } from '../protocol/frames.js';
import { ALL_STREAM } from '../protocol/room-id.js';
import { encodeTextFrame } from '../protocol/ws-frame.js';
import type { Connection } from './connection.js';
import { Hub } from './hub.js';

export interface NodeCounters {
  deliveries: number;
  slowConsumerCloses: number;
  heartbeatTimeouts: number;
  malformedCloses: number;
  kicks: number;
}

export class GatewayNode implements GatewayHandler {
  readonly hub = new Hub();
  readonly counters: NodeCounters = { deliveries: 0, slowConsumerCloses: 0, heartbeatTimeouts: 0, malformedCloses: 0, kicks: 0 };
  /** Set from outside (metrics) to time each publication's fan-out: two clock reads per publication, none per member. */
  onFanout: ((seconds: number) => void) | undefined;
  /** Rooms whose broker subscription is still being set up. */
  private readonly opening = new Map<string, Promise<void>>();

  constructor(
    readonly nodeId: string,
    private readonly broker: Broker,
    private readonly heartbeatMs: number,
    private readonly log: Logger,
  ) {}

  addConnection(conn: Connection): void {
    this.hub.add(conn);
    this.broker.connOpened(this.nodeId, conn.wsId);
    conn.send(encodeTextFrame(welcomeFrame({ wsId: conn.wsId, heartbeatMs: this.heartbeatMs })));
  }

  removeConnection(conn: Connection): void {
    for (const room of this.hub.remove(conn)) this.closeRoom(room);
    this.broker.connClosed(this.nodeId, conn.wsId);
  }

  async join(conn: Connection, room: string): Promise<{ changed: boolean }> {
    const change = this.hub.join(conn, room);
    if (change.changed) conn.send(encodeTextFrame(joinedFrame(room)));
    if (change.roomEdge) {
      const opened = this.broker.roomOpened(this.nodeId, room);
      this.opening.set(room, opened);
      opened.then(
        () => this.opening.get(room) === opened && this.opening.delete(room),
        () => this.opening.get(room) === opened && this.opening.delete(room),
      );
    }
    const opening = this.opening.get(room);
    if (opening !== undefined) {
      try {
        await opening;
      } catch (err) {
        if (change.changed) await this.leave(conn, room);
        throw err;
      }
    }
    return { changed: change.changed };
  }

  async leave(conn: Connection, room: string): Promise<{ changed: boolean }> {
    const change = this.hub.leave(conn, room);
    if (change.changed) conn.send(encodeTextFrame(leftFrame(room)));
    if (change.roomEdge) this.closeRoom(room);
    return { changed: change.changed };
  }

  onPublication(pub: Publication): void {
    const isAll = pub.stream === ALL_STREAM;
    const members = isAll ? this.hub.conns : this.hub.rooms.get(pub.stream);
    if (members === undefined || members.size === 0) return;
    const started = this.onFanout === undefined ? 0 : performance.now();
    const frame = encodeTextFrame(pushFrame(pub.tag, pub.val, isAll ? undefined : pub.stream, pub.seq));
    let delivered = 0;
    for (const conn of members.values()) if (conn.send(frame)) delivered++;
    this.counters.deliveries += delivered;
    if (this.onFanout !== undefined) this.onFanout((performance.now() - started) / 1000);
  }

  async onCommand<C extends ConnCommand>(cmd: C): Promise<ReplyTo<C> | undefined> {
    const conn = this.hub.conns.get(cmd.wsId);
    if (conn === undefined || !conn.isOpen) return undefined;
    return (await this.applyCommand(conn, cmd)) as ReplyTo<C>;
  }

  roomCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const [room, members] of this.hub.rooms) counts.set(room, members.size);
    return counts;
  }

  roomMembers(room: string): string[] {
    const members = this.hub.rooms.get(room);
    return members === undefined ? [] : [...members].map((conn) => conn.wsId);
  }

  stats(): NodeStats {
    return { connections: this.hub.conns.size, rooms: this.hub.rooms.size, ...this.counters };
  }

  private async applyCommand(conn: Connection, cmd: ConnCommand): Promise<ReplyTo<ConnCommand>> {
    switch (cmd.op) {
      case 'join':
        return this.join(conn, cmd.room);
      case 'leave':
        return this.leave(conn, cmd.room);
      case 'push': {
        const delivered = conn.send(encodeTextFrame(pushFrame(cmd.tag, cmd.val)));
        if (delivered) this.counters.deliveries++;
        return { delivered };
      }
      case 'kick':
        this.counters.kicks++;
        conn.close('kicked');
        return { kicked: true };
      case 'info':
        return this.describe(conn);
    }
  }

  private describe(conn: Connection): ConnInfo {
    return {
      wsId: conn.wsId,
      node: this.nodeId,
      rooms: [...conn.rooms],
      remoteAddress: conn.remoteAddress,
      connectedAt: new Date(conn.connectedAt).toISOString(),
    };
  }

  private closeRoom(room: string): void {
    this.broker.roomClosed(this.nodeId, room).catch((err: unknown) => {
      this.log.warn({ err, room }, 'broker could not close room');
    });
  }
}
