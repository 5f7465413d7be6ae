/**
 * One page of GET /rooms, picked while walking a room index: the matching
 * rooms are counted and only the first `offset + limit` in id order are kept,
 * so a page of 100 out of 100,000 rooms builds no list, array or object per room;
 * and the page of many nodes, from each node's first rooms.
 */
import { FirstSorted, sortedPage } from '../first-sorted.js';
import type { RoomCount } from './broker.js';

const ownKey = (id: string): string => id;

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

  /** A room with members (each once); true when it matches the query. */
  offer(room: string): boolean {
    if (!roomMatches(room, this.query)) return false;
    this.total++;
    this.first.offer(room, room);
    return true;
  }

  page(membersOf: (room: string) => number): RoomPage {
    const rooms = this.first.take().slice(this.query.offset);
    return { total: this.total, rooms: rooms.map((room) => ({ room, members: membersOf(room) })) };
  }
}

function roomMatches(room: string, query: Pick<RoomQuery, 'prefix' | 'contains'>): boolean {
  return room.startsWith(query.prefix) && room.includes(query.contains);
}

/**
 * The page of `query` from each node's first `offset + limit` matching rooms
 * (in id order, with the node's member counts) and the total counted apart.
 * Those suffice: a room of the page has fewer than `offset + limit` matching
 * rooms before it over all nodes, so fewer on any node that has it, which is
 * then among that node's first. A room on several nodes has their counts summed.
 */
export function mergeNodePages(query: RoomQuery, total: number, perNode: Iterable<Iterable<[string, number]>>): RoomPage {
  const members = new Map<string, number>();
  for (const first of perNode) for (const [room, count] of first) members.set(room, (members.get(room) ?? 0) + count);
  // the nodes matched their rooms to the query already
  return { total, rooms: sortedPage(members.keys(), query, ownKey).map((room) => ({ room, members: members.get(room)! })) };
}

/**
 * How many room ids the nodes' lists (one id per line, '' for none) hold, each
 * counted once. Only the ids of the lists other than the longest go in a set;
 * the longest one's are looked up in it.
 */
export function distinctRoomCount(perNode: Iterable<string>): number {
  const lists = [...perNode].filter((ids) => ids !== '').sort((a, b) => b.length - a.length);
  if (lists.length === 0) return 0;
  const seen = new Set<string>();
  for (const ids of lists.slice(1)) for (const id of ids.split('\n')) seen.add(id);
  let total = seen.size;
  for (const id of lists[0].split('\n')) if (!seen.has(id)) total++;
  return total;
}

/**
 * One node's rooms that match a query: the first `query.offset +
 * query.limit` of them in id order, each with the node's member count, and
 * every one of them, one id per line (ids hold no newline), for the asker to
 * count the rooms of all nodes once each: 10 bytes or so a room, where a JSON
 * list of pairs took twice that and most of the time to write and read.
 */
export interface NodeRooms {
  first: [string, number][];
  ids: string;
}

/** A node's NodeRooms for a query asked of every node (its offset 0: the asker pages). */
export function nodeRooms(roomIds: Iterable<string>, roomSize: (room: string) => number, query: RoomQuery): NodeRooms {
  const pager = new RoomPager(query);
  const ids: string[] = [];
  for (const room of roomIds) if (pager.offer(room)) ids.push(room);
  const first = pager.page(roomSize).rooms.map(({ room, members }): [string, number] => [room, members]);
  return { first, ids: ids.join('\n') };
}

/** A room's members: how many, and a page of their wsIds in order. */
export interface MemberPage {
  total: number;
  wsIds: string[];
}

/** The first `first` of a node's members of a room, and how many it has. */
export function nodeMemberPage(wsIds: Iterable<string>, first: number): MemberPage {
  const selection = new FirstSorted<string>(first);
  let total = 0;
  for (const wsId of wsIds) {
    total++;
    selection.offer(wsId, wsId);
  }
  return { total, wsIds: selection.take() };
}

/**
 * The page `offset`, `limit` of a room's members from each node's first
 * `offset + limit` (a connection is on one node, so the totals add up).
 */
export function mergeMemberPages(perNode: Iterable<MemberPage>, { offset, limit }: { offset: number; limit: number }): MemberPage {
  const pages = [...perNode];
  const total = pages.reduce((sum, page) => sum + page.total, 0);
  return { total, wsIds: sortedPage(wsIdsOf(pages), { offset, limit }, ownKey) };
}

// walked, not concatenated: a node may answer 100,000s of wsIds (a far offset), too many to spread into push()
function* wsIdsOf(pages: MemberPage[]): Iterable<string> {
  for (const page of pages) yield* page.wsIds;
}
