/**
 * WebSocket close codes used by roomcast (PROTOCOL.md §1). 4000-4499 mean
 * "reconnect with backoff"; 4500-4999 mean "do not reconnect".
 */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  policy: 1008,
  tooLarge: 1009,
  slowConsumer: 4000,
  badToken: 4001,
  heartbeatTimeout: 4002,
  kicked: 4003,
  malformed: 4004,
  missedMessages: 4005,
  rateLimited: 4029,
} as const;

export type CloseCodeName = keyof typeof CloseCode;

/** Close reasons sent with each code (at most 123 bytes each). */
export const closeReason: Record<CloseCodeName, string> = {
  normal: 'normal closure',
  goingAway: 'server going away',
  policy: 'policy violation',
  tooLarge: 'frame too large',
  slowConsumer: 'slow consumer: send buffer over limit',
  badToken: 'bad or expired token',
  heartbeatTimeout: 'heartbeat timeout',
  kicked: 'kicked',
  malformed: 'too many malformed frames',
  missedMessages: 'missed messages: reconnect and resume',
  rateLimited: 'rate limited',
};

/** True when a client should not reconnect after this close code. */
export function isTerminalCloseCode(code: number): boolean {
  return code >= 4500 && code <= 4999;
}
