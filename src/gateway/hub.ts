/**
 * This node's connections and rooms, indexed both ways (room -> members,
 * connection -> rooms) and kept in step here only. A room exists while it has
 * members; `join` and `leave` say when a room appears or disappears so the
 * node can tell the broker.
 */
import type { Connection } from './connection.js';

export interface MembershipChange {
  changed: boolean;
  /** join: the room had no members here before; leave: the room has none left. */
  roomEdge: boolean;
}

const UNCHANGED: MembershipChange = { changed: false, roomEdge: false };

export class Hub {
  readonly conns = new Map<string, Connection>();
  readonly rooms = new Map<string, Set<Connection>>();
  /** Authenticated connections by user id. */
  readonly users = new Map<string, Set<Connection>>();

  add(conn: Connection): void {
    this.conns.set(conn.wsId, conn);
  }

  /** Files the connection under its user; true when it is the user's first here. */
  addUser(conn: Connection, uid: string): boolean {
    let conns = this.users.get(uid);
    const first = conns === undefined;
    if (conns === undefined) {
      conns = new Set();
      this.users.set(uid, conns);
    }
    conns.add(conn);
    return first;
  }

  /** True when the user has no connection here any more. */
  removeUser(conn: Connection, uid: string): boolean {
    const conns = this.users.get(uid);
    if (conns === undefined || !conns.delete(conn) || conns.size > 0) return false;
    this.users.delete(uid);
    return true;
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
    for (const room of conn.rooms) {
      const members = this.rooms.get(room);
      if (members === undefined) continue;
      members.delete(conn);
      if (members.size === 0) {
        this.rooms.delete(room);
        emptied.push(room);
      }
    }
    conn.clearRooms();
    return emptied;
  }

  join(conn: Connection, room: string): MembershipChange {
    if (!conn.addRoom(room)) return UNCHANGED;
    let members = this.rooms.get(room);
    const roomEdge = members === undefined;
    if (members === undefined) {
      members = new Set();
      this.rooms.set(room, members);
    }
    members.add(conn);
    return { changed: true, roomEdge };
  }

  leave(conn: Connection, room: string): MembershipChange {
    if (!conn.removeRoom(room)) return UNCHANGED;
    const members = this.rooms.get(room);
    if (members === undefined) return { changed: true, roomEdge: false };
    members.delete(conn);
    if (members.size > 0) return { changed: true, roomEdge: false };
    this.rooms.delete(room);
    return { changed: true, roomEdge: true };
  }
}
