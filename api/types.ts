/**
 * The `data` of each answer, derived from the zod schemas the server answers
 * with (src/logic/answers.ts). The imports are type-only: nothing of zod or the
 * server is loaded at run time.
 */
import type { z } from 'zod';
import type * as answers from '../src/logic/answers.js';

export type PushAllData = z.output<typeof answers.pushAllData>;
export type PushRoomData = z.output<typeof answers.pushRoomData>;
export type PushConnData = z.output<typeof answers.pushConnData>;
export type PushUserData = z.output<typeof answers.pushUserData>;
export type MembershipData = z.output<typeof answers.membershipData>;
export type KickData = z.output<typeof answers.kickData>;
export type RoomsData = z.output<typeof answers.roomsData>;
export type RoomData = z.output<typeof answers.roomData>;
export type HistoryData = z.output<typeof answers.historyData>;
export type ConnData = z.output<typeof answers.connData>;
export type UserData = z.output<typeof answers.userData>;
export type StatsData = z.output<typeof answers.statsData>;
export type ReadyData = z.output<typeof answers.readyData>;

export interface PushOptions {
  /** The frame's `type`: an integer from 2 to 2147483647. */
  tag: number;
  /**
   * Makes the push at most once within the server's --idempotency-window. Without
   * one the client makes its own (crypto.randomUUID()), so its retries never deliver twice.
   */
  idempotencyKey?: string;
}

export interface PageOptions {
  offset?: number;
  limit?: number;
}

export interface RoomsOptions extends PageOptions {
  /** Only rooms whose id starts with this. */
  prefix?: string;
  /** Only rooms whose id contains this. */
  contains?: string;
}

export interface HistoryOptions {
  /** Publications with a seq above this (default 0). */
  since?: number;
  limit?: number;
}
