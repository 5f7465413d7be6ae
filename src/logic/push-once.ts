/**
 * Idempotency keys of pushes: a backend that retries a push whose answer it
 * did not get (a timeout, a 503 after Redis ran it) gives the retry the key of
 * the first, and the push is made once. A key is scoped to the push's kind and
 * target (a room, a wsId, a uid, or every connection): the same key on two
 * rooms makes two pushes. Room and all pushes check and keep their key in the
 * broker's publish step itself (atomic); pushes to a connection or a user
 * claim it before they are made, and settle it with their answer after.
 */
import { randomUUID } from 'node:crypto';
import type { Broker, PushClaim, PushOnce } from '../broker/broker.js';
import { ApiError, apiErrors } from './errors.js';
import { idempotencyKeyField } from './fields.js';

/** The header that may carry the key instead of the body (the IETF httpapi draft's name), as Node spells it. */
export const IDEMPOTENCY_HEADER = 'idempotency-key';

export const PUSH_KINDS = ['all', 'room', 'conn', 'user'] as const;

export type PushKind = (typeof PUSH_KINDS)[number];

export const idempotencyHeaders = {
  [IDEMPOTENCY_HEADER]: idempotencyKeyField('the Idempotency-Key header'),
};

/**
 * The push's key scoped to its kind and target, or undefined when it has none. The target's length comes
 * first, so no target and key can read as another pair.
 */
export function pushOnceOf(
  windowMs: number,
  kind: PushKind,
  target: string,
  bodyKey: string | undefined,
  headerKey: string | undefined,
): PushOnce | undefined {
  if (bodyKey === undefined && headerKey === undefined) return undefined;
  if (bodyKey !== undefined && headerKey !== undefined && bodyKey !== headerKey) {
    throw apiErrors.badRequest('idempotencyKey and the Idempotency-Key header differ: give the key once, or the same in both');
  }
  if (windowMs === 0) {
    throw apiErrors.badRequest('idempotency keys are turned off on this logic API (--idempotency-window 0): send the push without idempotencyKey or Idempotency-Key');
  }
  return { key: `${kind}:${target.length}:${target}:${bodyKey ?? headerKey}`, windowMs };
}

/** The answer's data, saying whether it repeats an earlier push's (only for a push that gave a key). */
export function withRepeated<T extends object>(data: T, once: PushOnce | undefined, repeated: boolean | undefined): T {
  return once === undefined ? data : { ...data, repeated: repeated === true };
}

/** The Retry-After (s) of a repeat that finds the first push under way: most pushes take far less than a second. */
export const UNDER_WAY_RETRY_AFTER_S = 1;

/**
 * Makes a push to a connection or a user once per key. A repeat of one that
 * is under way answers 409 with Retry-After (ask again: once the first is
 * answered, the repeat gets its answer); of one that failed with its outcome
 * unknown (a 503: it may have reached its node), 409 until the key's window
 * ends: it may not be made again. One surely not made (404: no such
 * connection) frees the key.
 */
export async function pushOnceByClaim<T extends object>(
  broker: Broker,
  once: PushOnce,
  push: () => Promise<T>,
): Promise<{ data: T; repeated: boolean }> {
  // this request's own: a settle never touches another request's claim of the key
  const claimId = randomUUID();
  let claim: PushClaim;
  try {
    claim = await broker.claimPush(once, claimId);
  } catch (err) {
    // Redis may have made the claim without the answer reaching here; this request made no push, so its
    // claim (and only its own: the claim id) is freed, or it would read as under way until the bound
    await broker.settlePush(once, claimId, { status: 'not-made' }).catch(() => undefined);
    throw err;
  }
  if (claim.status === 'done') return { data: JSON.parse(claim.answer) as T, repeated: true };
  if (claim.status === 'under-way') throw repeatUnderWay(once, claim.leftMs);
  if (claim.status === 'unknown') throw repeatOfUnknown(once);
  let data: T;
  try {
    data = await push();
  } catch (err) {
    const notMade = err instanceof ApiError && err.status === 404;
    await broker.settlePush(once, claimId, notMade ? { status: 'not-made' } : { status: 'unknown' }).catch(() => undefined);
    throw err;
  }
  // kept unsettled when Redis fails now: a repeat then answers 409 (under way, then unknown), never a second push
  await broker.settlePush(once, claimId, { status: 'made', answer: JSON.stringify(data) }).catch(() => undefined);
  return { data, repeated: false };
}

function repeatUnderWay(once: PushOnce, leftMs: number): ApiError {
  return apiErrors.conflict(
    'a push with this idempotency key is still under way: ask again after Retry-After to get its answer ' +
      `(if it is not answered within ${leftMs} ms, its outcome counts as unknown); it is not pushed again within ${once.windowMs} ms of the first (--idempotency-window)`,
    { 'retry-after': String(UNDER_WAY_RETRY_AFTER_S) },
  );
}

function repeatOfUnknown(once: PushOnce): ApiError {
  return apiErrors.conflict(
    'a push with this idempotency key failed with its outcome unknown (503: it may have been delivered): ' +
      `it is not pushed again within ${once.windowMs} ms of the first (--idempotency-window); to deliver it anyway (perhaps twice), push it with a new key`,
  );
}
