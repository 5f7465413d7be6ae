/**
 * Input schemas of the logic API, written once: they validate requests, give
 * the TypeScript types of handlers' input, and produce the OpenAPI document.
 * Every message names the field as the request spells it (PROTOCOL.md §2):
 * each check carries its own message, so none of zod's generic ones (like
 * "Too big: expected int", for a JSON number past 2^53) reaches a caller.
 */
import { z } from 'zod';
import { inexactIntegerMessage, isInexactInteger } from '../protocol/inexact-integer.js';
import { ROOM_ID_PATTERN, ROOM_ID_RULE } from '../protocol/room-id.js';
import { isUserId, USER_ID_RULE } from '../protocol/user-id.js';
import { loneSurrogateAt } from '../protocol/unicode.js';
import { apiErrors } from './errors.js';

const TAG_MAX = 2 ** 31 - 1;
const TAG_RULE = `an integer from 2 to ${TAG_MAX}`;
const WS_ID_RULE = 'a string of 1-128 characters';

/** An error callback: "<field> is required" when absent, "<field> must be <rule>" otherwise. */
function fieldError(field: string, rule: string) {
  return (issue: { input?: unknown }) => (issue.input === undefined ? `${field} is required` : `${field} must be ${rule}`);
}

/** `tag`: a JSON integer or a string of digits, 2..2^31-1 (0 and 1 are the server's own types). */
export function tagField(field = 'tag') {
  const must = `${field} must be ${TAG_RULE}`;
  return z
    .union([z.int({ error: must }), z.string().regex(/^\d{1,10}$/, { error: must })], { error: fieldError(field, TAG_RULE) })
    .transform(Number)
    .pipe(z.int({ error: must }).min(2, { error: must }).max(TAG_MAX, { error: must }))
    .meta({ description: `Message type delivered as the frame's \`type\`: ${TAG_RULE}` });
}

/** `val`: a non-empty string of well-formed Unicode, delivered as the frame's `data` (the same on either engine: see unicode.ts). */
export function valField(field = 'val') {
  return z
    .string({ error: fieldError(field, 'a non-empty string') })
    .min(1, { error: `${field} must be a non-empty string` })
    .check((ctx) => {
      const at = loneSurrogateAt(ctx.value);
      if (at !== -1) ctx.issues.push({ code: 'custom', input: ctx.value, message: `${field} must be well-formed Unicode: it has a lone UTF-16 surrogate at index ${at}` });
    })
    .meta({ description: "Message body delivered as the frame's `data`: a non-empty string of well-formed Unicode (no lone UTF-16 surrogate)" });
}

/** A room id: a string, or a JSON integer taken as its decimal string. */
export function roomIdField(field = 'id') {
  const must = `${field} must be ${ROOM_ID_RULE}`;
  return z
    .union([z.string(), z.int({ error: (issue) => (isInexactInteger(issue.input) ? inexactIntegerMessage(field) : must) })], { error: fieldError(field, ROOM_ID_RULE) })
    .transform(String)
    .pipe(z.string().regex(ROOM_ID_PATTERN, { error: must }))
    .meta({ description: `Room id: ${ROOM_ID_RULE} (an integer is taken as its decimal string; one past 2^53 is refused: send it as a string)` });
}

export function wsIdField(field = 'wsId') {
  const must = `${field} must be ${WS_ID_RULE}`;
  return z
    .string({ error: fieldError(field, WS_ID_RULE) })
    .min(1, { error: must })
    .max(128, { error: must })
    .meta({ description: 'Connection id, as sent in the welcome frame' });
}

/** A user id: the `sub` of the client's token. */
export function uidField(field = 'uid') {
  const must = `${field} must be ${USER_ID_RULE}`;
  return z
    .string({ error: fieldError(field, USER_ID_RULE) })
    .min(1, { error: must })
    .max(128, { error: must })
    .refine(isUserId, { error: must })
    .meta({ description: "User id: the sub claim of the client's token" });
}

export const IDEMPOTENCY_KEY_RULE = 'a string of 1-128 printable ASCII characters';

/** A push's idempotency key (src/logic/push-once.ts), as the `idempotencyKey` field or the Idempotency-Key header. */
export function idempotencyKeyField(field = 'idempotencyKey') {
  const must = `${field} must be ${IDEMPOTENCY_KEY_RULE}`;
  return z
    .string({ error: must })
    .regex(/^[\x20-\x7e]{1,128}$/, { error: must })
    .optional()
    .meta({
      description:
        `Idempotency key (${IDEMPOTENCY_KEY_RULE}): a push with the key a push to the same target was made with, within --idempotency-window, ` +
        'is not pushed again and gets the first answer, with repeated: true',
    });
}

/** A non-negative integer query parameter (query values are strings). */
export function countQuery(field: string, max: number, description: string) {
  const must = `${field} must be an integer from 0 to ${max}`;
  return z
    .string()
    .regex(/^\d{1,16}$/, { error: must })
    .transform(Number)
    .pipe(z.int({ error: must }).max(max, { error: must }))
    .optional()
    .meta({ description });
}

/** Validates one part of a request; the first problem becomes a 400 naming its field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, part: string): z.output<S> {
  // no body at all reads as an empty one (its first field is missing); a JSON `null` body is not an object
  const result = schema.safeParse(value === undefined ? {} : value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const message = issue.path.length === 0 && issue.code === 'invalid_type' ? `${part} must be a form or a JSON object` : issue.message;
  throw apiErrors.badRequest(message);
}

/** Reads the headers a route declares only when the request has one of them: a request without them (a push without an idempotency key) parses nothing more. */
export function headersOf(names: readonly string[], schema: z.ZodType, raw: Record<string, unknown>): unknown {
  for (const name of names) if (raw[name] !== undefined) return parseInput(schema, raw, 'headers');
  return NO_HEADERS;
}

const NO_HEADERS = Object.freeze({});
