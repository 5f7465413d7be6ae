/** roomcast/api: a server-side client of roomcast's logic HTTP API (api/README.md). */
export { RoomcastApi, type RoomcastApiOptions } from './client.js';
export { RoomcastApiError, type RoomcastApiErrorCode } from './errors.js';
export type * from './types.js';
