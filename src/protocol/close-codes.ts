/**
 * WebSocket close codes used by roomcast (PROTOCOL.md §1). 4000-4499 mean
 * "reconnect with backoff"; 4500-4999 mean "do not reconnect".
 */

// The codes the client SDK acts on, also as constants of their own: a bundler cannot drop the
// unused entries of an object, so the SDK importing CloseCode would ship the whole table.
export const NORMAL_CLOSE = 1000;
export const BAD_TOKEN_CLOSE = 4001;
export const KICKED_CLOSE = 4003;

export const CloseCode = {
  normal: NORMAL_CLOSE,
  goingAway: 1001,
  policy: 1008,
  tooLarge: 1009,
  tryAgainLater: 1013,
  slowConsumer: 4000,
  badToken: BAD_TOKEN_CLOSE,
  heartbeatTimeout: 4002,
  kicked: KICKED_CLOSE,
  malformed: 4004,
  missedMessages: 4005,
  rateLimited: 4029,
  sessionTaken: 4500,
} as const;

export type CloseCodeName = keyof typeof CloseCode;

/** Close reasons sent with each code (at most 123 bytes each). */
export const closeReason: Record<CloseCodeName, string> = {
  normal: 'normal closure',
  goingAway: 'server going away',
  policy: 'policy violation',
  tooLarge: 'frame too large',
  tryAgainLater: 'try again later',
  slowConsumer: 'slow consumer: send buffer over limit',
  badToken: 'bad or expired token',
  heartbeatTimeout: 'heartbeat timeout',
  kicked: 'kicked',
  malformed: 'too many malformed frames',
  missedMessages: 'missed messages: reconnect and resume',
  rateLimited: 'rate limited',
  sessionTaken: 'session resumed by another connection',
};

/** No status code in the close frame (RFC 6455 §7.1.5): what a browser's close() without a code sends. */
export const NO_STATUS = 1005;

/** A session ends when the client closed it (1000, or no code) or was kicked; after any other close it can be resumed. */
export function keepsSession(code: number): boolean {
  return code !== NORMAL_CLOSE && code !== NO_STATUS && code !== KICKED_CLOSE;
}

/** True when a client should not reconnect after this close code. */
export function isTerminalCloseCode(code: number): boolean {
  return code >= 4500 && code <= 4999;
}
