/**
 * Room ids: 1-128 characters from [A-Za-z0-9_.:@-] (PROTOCOL.md §2), but not "." or "..":
 * URLs resolve those as dot segments (fetch, browsers, curl), so GET /rooms/./history
 * would read the room "history", and no client could address them in a path.
 */
export const ROOM_ID_PATTERN = /^(?!\.\.?$)[A-Za-z0-9_.:@-]{1,128}$/;

/** The name of the `all` stream; no room id can be `*`. */
export const ALL_STREAM = '*';

export const ROOM_ID_RULE = 'a string of 1-128 characters from A-Z a-z 0-9 _ . : @ -, not "." or ".."';

/**
 * Accepts a room id as a string, or as a JSON integer taken as its decimal
 * string (the seed's rooms were integers). Returns undefined when invalid.
 */
export function toRoomId(value: unknown): string | undefined {
  let id: string;
  if (typeof value === 'string') id = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) id = String(value);
  else return undefined;
  return ROOM_ID_PATTERN.test(id) ? id : undefined;
}
