/**
 * The secret every node signs and checks resume tokens with, kept in Redis:
 * the first node stores one, the others read it.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { BrokerUnavailableError, type GatewayHandler } from '../broker.js';
import { unavailable, type RedisCalls } from './calls.js';
import type { RedisNames } from './keys.js';

export class SharedResumeSecret {
  private secret: Promise<string> | undefined;

  constructor(
    private readonly names: RedisNames,
    private readonly calls: RedisCalls,
    private readonly log: Logger,
    private readonly gateway: () => GatewayHandler | undefined,
  ) {}

  get(): Promise<string> {
    this.secret ??= (async () => {
      await this.calls.client.set(this.names.secretKey, randomBytes(32).toString('base64url'), { NX: true });
      const secret = await this.calls.client.get(this.names.secretKey);
      if (secret === null) throw new BrokerUnavailableError('the resume secret vanished from Redis');
      return secret;
    })().catch((err: unknown) => {
      this.secret = undefined;
      throw unavailable(err);
    });
    return this.secret;
  }

  /**
   * After a reconnect Redis may have lost the resume secret (no persistence),
   * and a node started since may have stored its own: this one stores its
   * secret again unless one is there, and then uses the stored one, still
   * accepting tokens signed with its own.
   */
  async restore(): Promise<void> {
    const had = await this.secret?.catch(() => undefined);
    if (had === undefined) return;
    try {
      await this.calls.client.set(this.names.secretKey, had, { NX: true });
      const stored = await this.calls.client.get(this.names.secretKey);
      if (stored === null || stored === had) return;
      this.secret = Promise.resolve(stored);
      this.log.warn('Redis holds another resume secret than this node had (it lost its data and another node stored its own): using it');
      this.gateway()?.onResumeSecret(stored);
    } catch (err) {
      this.calls.logError(err, 'restoring the resume secret');
    }
  }
}
