/**
 * Whether Redis may evict roomcast's keys. Every key roomcast writes has an
 * expiry, so any eviction policy (volatile-* included) may drop a connection's
 * registry entry or a stream's seq and epoch when Redis is full: a connected
 * wsId answered 404, a stream that starts a new epoch. With noeviction a full
 * Redis refuses the writes instead, and the API answers 503.
 */
import type { Logger } from 'pino';
import { withTimeout, type Client } from './calls.js';
import { infoField } from './info.js';

/** Logs a warning when Redis has a maxmemory and a policy other than noeviction; INFO refused (an ACL) is not an error. */
export async function warnIfEvicting(client: Client, where: string, log: Logger): Promise<void> {
  let info: string;
  try {
    // a Redis that stops answering here must not hold up the start
    info = await withTimeout(client.info('memory'), 1000, 'INFO memory');
  } catch (err) {
    log.debug({ err }, 'could not read INFO memory to check the eviction policy');
    return;
  }
  const maxmemory = Number(infoField(info, 'maxmemory') ?? 0);
  const policy = infoField(info, 'maxmemory_policy');
  if (maxmemory === 0 || policy === undefined || policy === 'noeviction') return;
  log.warn(
    `Redis at ${where} evicts keys when it reaches its maxmemory (${maxmemory} bytes, maxmemory-policy ${policy}): ` +
      "an evicted key loses a connection's registration (404 for a connected wsId) or a stream's seq and history; set maxmemory-policy noeviction (a full Redis then refuses pushes with 503)",
  );
}
