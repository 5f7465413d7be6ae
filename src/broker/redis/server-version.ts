/**
 * The Redis version roomcast needs, checked when a process connects. Started
 * on an older Redis, a process would seem to work and fail later, deep in the
 * logs: EXPIRE ... GT and PEXPIRE ... LT, which keep stream positions and end
 * the sessions of a dead node, are Redis 7.0's. A server whose version cannot
 * be read (INFO refused by an ACL, a Redis-compatible server that reports no
 * redis_version) is warned of once, not refused.
 */
import type { Logger } from 'pino';
import type { Client } from './calls.js';
import { infoField } from './info.js';
import { errorMessage } from '../../error-message.js';

export const MIN_REDIS_VERSION = '7.0.0';

/** What a too old Redis is told, after "Redis at HOST runs version X, and ". */
export const REDIS_VERSION_NEEDED =
  `roomcast needs Redis ${MIN_REDIS_VERSION} or newer (it uses EXPIRE ... GT and PEXPIRE ... LT, added in Redis 7.0): ` +
  'upgrade Redis (Ubuntu 22.04 and Debian 11 ship Redis 6; Redis 7 comes from packages.redis.io, the redis:7 image, or a newer distribution)';

/** The numbers a version starts with ("7.2.4-rc1": 7, 2, 4); undefined when it does not start with major.minor. */
function versionNumbers(version: string): number[] | undefined {
  const match = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(version.trim());
  return match ? [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)] : undefined;
}

/** Whether `version` (INFO's redis_version) is MIN_REDIS_VERSION or newer; undefined when it is missing or not a version. */
export function meetsRedisMinimum(version: string | undefined): boolean | undefined {
  const found = version === undefined ? undefined : versionNumbers(version);
  if (found === undefined) return undefined;
  const needed = versionNumbers(MIN_REDIS_VERSION)!;
  const differs = found.findIndex((n, i) => n !== needed[i]);
  return differs === -1 || found[differs] > needed[differs];
}

/** The start's refusal of a Redis older than MIN_REDIS_VERSION. */
export class RedisTooOldError extends Error {
  constructor(where: string, version: string) {
    super(`Redis at ${where} runs version ${version}, and ${REDIS_VERSION_NEEDED}`);
    this.name = 'RedisTooOldError';
  }
}

export class RedisVersionCheck {
  private warnedUnreadable = false;

  constructor(
    private readonly client: Client,
    private readonly where: string,
    private readonly log: Logger,
  ) {}

  /** Throws RedisTooOldError when the server is older than MIN_REDIS_VERSION. */
  async atStart(): Promise<void> {
    const version = await this.read();
    if (version !== undefined && !meetsRedisMinimum(version)) throw new RedisTooOldError(this.where, version);
  }

  /** After a reconnect, which may reach another server (a failover to an older replica): logs an error when it is too old. */
  async afterReconnect(): Promise<void> {
    const version = await this.read();
    if (version === undefined || meetsRedisMinimum(version)) return;
    this.log.error(`${new RedisTooOldError(this.where, version).message}; reconnected to it, this process fails the requests that need Redis 7 until it is replaced`);
  }

  /** The server's redis_version; undefined (warned of once) when it cannot be read. */
  private async read(): Promise<string | undefined> {
    let info: string;
    try {
      info = await this.client.info('server');
    } catch (err) {
      this.unreadable(`INFO server failed: ${errorMessage(err)}`, err);
      return undefined;
    }
    const version = infoField(info, 'redis_version');
    if (meetsRedisMinimum(version) !== undefined) return version;
    this.unreadable(version === undefined ? 'INFO server has no redis_version' : `its redis_version is ${JSON.stringify(version)}`);
    return undefined;
  }

  private unreadable(why: string, err?: unknown): void {
    if (this.warnedUnreadable) return;
    this.warnedUnreadable = true;
    this.log.warn({ err }, `could not read the version of the Redis server at ${this.where} (${why}): going on without checking it; roomcast needs Redis ${MIN_REDIS_VERSION} or newer, or a compatible server with EXPIRE ... GT and PEXPIRE ... LT`);
  }
}
