/**
 * This node's connections and rooms, indexed both ways (room -> members,
 * connection -> rooms) and kept in step here only. A room exists while it has
 * members; `join` and `leave` say when a room appears or disappears so the
 * node can tell the broker.
 */
import type { StreamPosition } from '../broker/broker.js';
import { ALL_STREAM } from '../protocol/room-id.js';
import { SetsByKey } from '../sets-by-key.js';
import type { Connection } from './connection.js';

export interface MembershipChange {
  changed: boolean;
  /** join: the room had no members here before; leave: the room has none left. */
  roomEdge: boolean;
}

const UNCHANGED: MembershipChange = { changed: false, roomEdge: false };

/** The connections a stream reaches here. */
export interface StreamMembers {
  readonly size: number;
  values(): Iterable<Connection>;
}

export class Hub {
  readonly conns = new Map<string, Connection>();
  readonly rooms = new SetsByKey<Connection>();
  /** Authenticated connections by user id. */
  readonly users = new SetsByKey<Connection>();

  add(conn: Connection): void {
    this.conns.set(conn.wsId, conn);
  }

  /** Every connection for `*`, a room's members for a room; undefined for a room with none here. */
  members(stream: string): StreamMembers | undefined {
    return stream === ALL_STREAM ? this.conns : this.rooms.get(stream);
  }

  /** Gives a connection another id (a resume taking back its session's id); false if that id is in use here. */
  rename(conn: Connection, wsId: string): boolean {
    if (this.conns.has(wsId)) return false;
    this.conns.delete(conn.wsId);
    conn.wsId = wsId;
    this.conns.set(wsId, conn);
    return true;
  }

  /** Removes the connection from every room at once; returns the rooms left empty. */
  remove(conn: Connection): string[] {
    if (this.conns.get(conn.wsId) !== conn) return [];
    this.conns.delete(conn.wsId);
    const emptied: string[] = [];
    for (const room of conn.rooms.keys()) if (this.rooms.delete(room, conn)) emptied.push(room);
    conn.clearRooms();
    return emptied;
  }

  join(conn: Connection, room: string, joinedAt: StreamPosition): MembershipChange {
    if (!conn.addRoom(room, joinedAt)) return UNCHANGED;
    return { changed: true, roomEdge: this.rooms.add(room, conn) };
  }

  leave(conn: Connection, room: string): MembershipChange {
    if (!conn.removeRoom(room)) return UNCHANGED;
    return { changed: true, roomEdge: this.rooms.delete(room, conn) };
  }
}
