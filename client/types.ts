/** The SDK's public types: options, states, and what each event carries. */
import type { BackoffOptions } from './backoff.js';

export type ClientState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** A push from the logic API. */
export interface Message {
  /** The push's `tag` (the frame's `type`), 2 or more. */
  tag: number;
  /** The push's `val` (the frame's `data`). */
  data: string;
  /** The room, for a push to a room; undefined for a push to all or to this connection. */
  room?: string;
  /** Position in its stream (the room, or `*` for a push to all); undefined for a push to one connection. */
  seq?: number;
}

export interface StateChange {
  state: ClientState;
  /** The connection's id, once `connected` (after a resume, the session's old id). */
  wsId?: string;
  /**
   * `connected` after a reconnect: true when the session was resumed with
   * nothing lost, false when something could not be replayed (or the session
   * could not be resumed at all): refetch your state.
   */
  recovered?: boolean;
  /** Close code of the connection that ended (`reconnecting`, `closed`). */
  code?: number;
  reason?: string;
  /** `reconnecting`: how long until the next attempt. */
  retryInMs?: number;
}

export interface Membership {
  room: string;
  /** Last seq of the room when joined, once the server keeps history. */
  seq?: number;
  epoch?: string;
}

/** A stream's last position seen by this client (kept for session recovery). */
export interface StreamPosition {
  seq: number;
  epoch?: string;
}

export interface JoinResult {
  room: string;
  /** False when the connection already was (join) or was not (leave) a member. */
  changed: boolean;
}

export interface ClientEvents {
  message: Message;
  joined: Membership;
  left: { room: string };
  state: StateChange;
  /** An error frame that answers none of this client's own ops. */
  error: Error;
}

export interface ClientOptions {
  /** Sent as the `token` query parameter of every connection. */
  token?: string;
  /**
   * Asked for a new token a margin before the connection's token expires (the later
   * of 80% of its remaining life and 10 s before its `exp`), which is sent on the same
   * connection; a failure is an `error` event, tried again at most twice before `exp`.
   * Also asked when the server refuses or expires the one it has
   * (close 4001); the retry waits for it, up to connectTimeoutMs. A rejection
   * (or no answer by then: code `timeout`) is emitted as `error`,
   * and the retry goes with the token before (and asks again after the next 4001).
   */
  getToken?: () => Promise<string>;
  /** How long join() and leave() wait for the server's answer (default 5000 ms). */
  timeoutMs?: number;
  /** How long a connection attempt may take to get its welcome frame (default 10000 ms). */
  connectTimeoutMs?: number;
  /** Reconnect delays, or false to stay closed after the first drop. */
  reconnect?: Partial<BackoffOptions> | false;
  /** Source of randomness for jitter, [0, 1) (default Math.random). */
  random?: () => number;
  /** Take the session (wsId, rooms, missed messages) back after a reconnect (default true). */
  resume?: boolean;
}
