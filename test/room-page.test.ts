/**
 * GET /rooms over many nodes (src/broker/room-page.ts): each node answers its
 * first rooms of the page and the ids of all it has, and the page built from
 * those is the page of every node's rooms taken together, members summed.
 * GET /rooms/:id likewise, from each node's count and first members.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { distinctRoomCount, mergeMemberPages, mergeNodePages, nodeMemberPage, nodeRooms, type RoomPage, type RoomQuery } from '../src/broker/room-page.js';

/** The page as one node holding every room (each with the members of all nodes) would give it. */
function wholePage(nodes: Map<string, number>[], query: RoomQuery): RoomPage {
  const members = new Map<string, number>();
  for (const node of nodes) for (const [room, count] of node) members.set(room, (members.get(room) ?? 0) + count);
  const matching = [...members.keys()].filter((room) => room.startsWith(query.prefix) && room.includes(query.contains)).sort();
  return { total: matching.length, rooms: matching.slice(query.offset, query.offset + query.limit).map((room) => ({ room, members: members.get(room)! })) };
}

/** The page as the logic API builds it from the nodes' answers. */
function gatheredPage(nodes: Map<string, number>[], query: RoomQuery): RoomPage {
  const asked = { ...query, offset: 0, limit: query.offset + query.limit };
  const answers = nodes.map((node) => nodeRooms(node.keys(), (room) => node.get(room)!, asked));
  return mergeNodePages(
    query,
    distinctRoomCount(answers.map((a) => a.ids)),
    answers.map((a) => a.first),
  );
}

const room = fc.stringMatching(/^[ab][ab:]{0,4}$/);
const node = fc.array(fc.tuple(room, fc.integer({ min: 1, max: 5 }))).map((pairs) => new Map(pairs));
const query = fc.record({
  prefix: fc.constantFrom('', 'a', 'b:', 'ab'),
  contains: fc.constantFrom('', ':', 'ba', 'a:b'),
  offset: fc.integer({ min: 0, max: 12 }),
  limit: fc.integer({ min: 0, max: 8 }),
});

describe('room pages over many nodes', () => {
  it('are the page of all the rooms together, whatever rooms the nodes share and whatever the query', () => {
    fc.assert(
      fc.property(fc.array(node, { minLength: 0, maxLength: 4 }), query, (nodes, q) => {
        assert.deepEqual(gatheredPage(nodes, q), wholePage(nodes, q));
      }),
      { numRuns: 2000 },
    );
  });

  it('count a room every node has once, and none when no node has any', () => {
    assert.equal(distinctRoomCount([]), 0);
    assert.equal(distinctRoomCount(['', '']), 0);
    assert.equal(distinctRoomCount(['x\ny', 'y\nz', 'x', '']), 3);
    assert.equal(distinctRoomCount(['only']), 1);
  });

  it("give a room's members page by page, from each node's first members and count", () => {
    const wsIds = fc.uniqueArray(fc.stringMatching(/^[0-9a-f]{1,4}$/), { maxLength: 40 });
    fc.assert(
      fc.property(wsIds, fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 45 }), fc.integer({ min: 0, max: 12 }), (all, nodes, offset, limit) => {
        // each connection is on one node
        const perNode = Array.from({ length: nodes }, (_, n) => all.filter((_, i) => i % nodes === n));
        const page = mergeMemberPages(
          perNode.map((members) => nodeMemberPage(members, offset + limit)),
          { offset, limit },
        );
        assert.deepEqual(page, { total: all.length, wsIds: [...all].sort().slice(offset, offset + limit) });
      }),
      { numRuns: 2000 },
    );
  });

  it("give a far page of a room whose node answers 200,000 members without overflowing the stack", () => {
    const members = Array.from({ length: 200_000 }, (_, i) => `ws${String(i).padStart(6, '0')}`);
    const page = { offset: 1_000_000_000, limit: 10 };
    assert.deepEqual(mergeMemberPages([nodeMemberPage(members, page.offset + page.limit), { total: 0, wsIds: [] }], page), { total: 200_000, wsIds: [] });
    assert.deepEqual(mergeMemberPages([nodeMemberPage(members, 199_998)], { offset: 199_996, limit: 2 }), { total: 200_000, wsIds: ['ws199996', 'ws199997'] });
  });
});
