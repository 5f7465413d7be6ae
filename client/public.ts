/** What both entries (browser.ts, node.ts) export besides their RoomcastClient. */
export { ABNORMAL_CLOSE, RoomcastError } from './client.js';
export { backoffCeiling, backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export type * from './types.js';
