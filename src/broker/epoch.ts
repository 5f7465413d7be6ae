import { randomBytes } from 'node:crypto';

/** A short random id naming one life of a stream; it changes when history is lost. */
export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}
