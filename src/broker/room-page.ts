/**
 * One page of GET /rooms, picked while walking a room index: the matching
 * rooms are counted and only the first `offset + limit` in id order are kept,
 * so a page of 100 out of 100,000 rooms builds no list, array or object per room.
 */
import { FirstSorted } from '../first-sorted.js';
import type { RoomCount } from './broker.js';

export interface RoomQuery {
  /** Only rooms whose id starts with this ('' for all). */
  prefix: string;
  /** Only rooms whose id contains this ('' for all). */
  contains: string;
  offset: number;
  limit: number;
}

export interface RoomPage {
  /** Rooms that match, on every page. */
  total: number;
  /** The page's rooms, sorted by id. */
  rooms: RoomCount[];
}

export class RoomPager {
  private total = 0;
  private readonly first: FirstSorted<string>;

  constructor(private readonly query: RoomQuery) {
    this.first = new FirstSorted(query.offset + query.limit);
  }

  /** A room with members (each once). */
  offer(room: string): void {
    if (!room.startsWith(this.query.prefix) || !room.includes(this.query.contains)) return;
    this.total++;
    this.first.offer(room, room);
  }

  page(membersOf: (room: string) => number): RoomPage {
    const rooms = this.first.take().slice(this.query.offset);
    return { total: this.total, rooms: rooms.map((room) => ({ room, members: membersOf(room) })) };
  }
}
