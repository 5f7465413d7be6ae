/**
 * The bench's scenarios: how many connections, which rooms they join, and
 * where each push goes. Random choices come from a seeded generator, so every
 * target gets the very same sequence of pushes.
 */
import type { PushPlan } from './pusher.js';
import { seededRandom } from './seeded-random.js';

export const SCENARIO_NAMES = ['fanout', 'rooms', 'all', 'idle', 'hold', 'resume', 'churn'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];
/**
 * What a run without --scenarios runs: `hold` needs several server processes
 * (--workers), so it is asked for by name. `resume` runs on roomcast only (with
 * history): the peers have no session to resume. `churn` leaves Socket.IO out
 * (see CHURN_TARGETS).
 */
export const DEFAULT_SCENARIOS: readonly ScenarioName[] = ['fanout', 'rooms', 'all', 'idle', 'resume', 'churn'];

/** Scenarios only roomcast with history can run. */
export const RESUME_SCENARIOS: readonly ScenarioName[] = ['resume'];

/**
 * churn needs clients that can PING and read the PONG (a barrier, see
 * client/connection.ts): roomcast and the bare ws loop speak roomcast's
 * frames; Engine.IO v4 clients do not ping, so Socket.IO is left out.
 */
export const CHURN_TARGETS: readonly string[] = ['roomcast', 'ws'];

export interface ScenarioSizes {
  fanoutConns: number;
  fanoutPushes: number;
  roomsConns: number;
  roomSize: number;
  roomsPushes: number;
  allConns: number;
  allPushes: number;
  idleConns: number;
  holdConns: number;
  holdPushes: number;
  resumeConns: number;
  /** Pushes to each room while its members are away. */
  resumeMissed: number;
  churnConns: number;
  churnRooms: number;
  churnCycles: number;
  /** Percent of the connections that leave and come back new in each cycle. */
  churnPercent: number;
  churnPushRate: number;
}

export const DEFAULT_SIZES: ScenarioSizes = {
  fanoutConns: 2000,
  fanoutPushes: 2000,
  roomsConns: 4000,
  roomSize: 10,
  roomsPushes: 20_000,
  allConns: 5000,
  allPushes: 500,
  idleConns: 10_000,
  holdConns: 30_000,
  holdPushes: 1,
  resumeConns: 4000,
  resumeMissed: 50,
  churnConns: 2000,
  churnRooms: 100,
  churnCycles: 50,
  churnPercent: 10,
  churnPushRate: 200,
};

/** churn: the population and how it turns over while pushes go on. */
export interface ChurnPlan {
  rooms: number;
  cycles: number;
  /** Connections that leave (and as many new ones that come) in each cycle; every second one leaves with a clean close. */
  perCycle: number;
  pushesPerSecond: number;
}

export interface Scenario {
  name: ScenarioName;
  description: string;
  conns: number;
  /** The room connection `i` joins through the API, or undefined. */
  roomOf(i: number): string | undefined;
  /** The measured pushes (resume: those sent while every client is away). */
  pushes: PushPlan;
  expectedDeliveries: number;
  /** Push frames connection `i` must receive from the measured pushes: no more, no fewer. */
  framesFor(i: number): number;
  /** churn only: its pushes go on at a steady rate for as long as the cycles take (`pushes` is the warm-up's plan). */
  churn?: ChurnPlan;
}

export function buildScenario(name: ScenarioName, sizes: ScenarioSizes, seed: number): Scenario {
  switch (name) {
    case 'fanout': {
      const conns = sizes.fanoutConns;
      const count = sizes.fanoutPushes;
      return {
        name,
        description: `${conns} connections in one room, ${count} pushes to it`,
        conns,
        roomOf: () => 'fanout',
        pushes: { count, roomOf: () => 'fanout' },
        expectedDeliveries: conns * count,
        framesFor: () => count,
      };
    }
    case 'rooms': {
      const rooms = Math.floor(sizes.roomsConns / sizes.roomSize);
      const conns = rooms * sizes.roomSize;
      const count = sizes.roomsPushes;
      const random = seededRandom(seed);
      const targets = Array.from({ length: count }, () => `room-${Math.floor(random() * rooms)}`);
      const pushesTo = new Map<string, number>();
      for (const room of targets) pushesTo.set(room, (pushesTo.get(room) ?? 0) + 1);
      const roomOf = (i: number): string => `room-${Math.floor(i / sizes.roomSize)}`;
      return {
        name,
        description: `${conns} connections in ${rooms} rooms of ${sizes.roomSize}, ${count} pushes to random rooms`,
        conns,
        roomOf,
        pushes: { count, roomOf: (i) => targets[i] },
        expectedDeliveries: count * sizes.roomSize,
        framesFor: (i) => pushesTo.get(roomOf(i)) ?? 0,
      };
    }
    case 'all': {
      const conns = sizes.allConns;
      const count = sizes.allPushes;
      return {
        name,
        description: `${conns} connections, ${count} pushes to all`,
        conns,
        roomOf: () => undefined,
        pushes: { count, roomOf: () => undefined },
        expectedDeliveries: conns * count,
        framesFor: () => count,
      };
    }
    case 'hold': {
      const conns = sizes.holdConns;
      const count = sizes.holdPushes;
      return {
        name,
        description: `${conns} connections held, ${count} push${count === 1 ? '' : 'es'} to all`,
        conns,
        roomOf: () => undefined,
        pushes: { count, roomOf: () => undefined },
        expectedDeliveries: conns * count,
        framesFor: () => count,
      };
    }
    case 'resume': {
      const rooms = Math.floor(sizes.resumeConns / sizes.roomSize);
      const conns = rooms * sizes.roomSize;
      const missed = sizes.resumeMissed;
      return {
        name,
        description: `${conns} connections in ${rooms} rooms of ${sizes.roomSize} drop at once, miss ${missed} pushes to each room, and resume at once`,
        conns,
        roomOf: (i) => `room-${Math.floor(i / sizes.roomSize)}`,
        // round robin, so every room's history interleaves with the others' as a busy server's does
        pushes: { count: rooms * missed, roomOf: (i) => `room-${i % rooms}` },
        expectedDeliveries: conns * missed,
        framesFor: () => missed,
      };
    }
    case 'churn': {
      const rooms = Math.min(sizes.churnRooms, sizes.churnConns);
      const conns = Math.floor(sizes.churnConns / rooms) * rooms;
      const perCycle = Math.max(1, Math.round((conns * sizes.churnPercent) / 100));
      const roomOf = (i: number): string => `room-${i % rooms}`;
      return {
        name,
        description:
          `${conns} connections in ${rooms} rooms; ${sizes.churnCycles} cycles in which ${perCycle} of them leave (half closing cleanly, half destroying the socket) ` +
          `and as many new ones connect and join, while ${sizes.churnPushRate} pushes/s go to the rooms in turn`,
        conns,
        roomOf,
        // the warm-up's plan: a push to each room, in turn; the measured pushes follow the same order
        pushes: { count: rooms, roomOf },
        expectedDeliveries: conns,
        framesFor: () => 1,
        churn: { rooms, cycles: sizes.churnCycles, perCycle, pushesPerSecond: sizes.churnPushRate },
      };
    }
    case 'idle':
      return {
        name,
        description: `${sizes.idleConns} idle connections held`,
        conns: sizes.idleConns,
        roomOf: () => undefined,
        pushes: { count: 0, roomOf: () => undefined },
        expectedDeliveries: 0,
        framesFor: () => 0,
      };
  }
}
