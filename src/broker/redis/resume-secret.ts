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
      // bounded: a gateway's start waits for it, and must fail rather than hang on a Redis that stopped answering
      const secret = await this.calls.bounded(() => this.storeUnlessSet(randomBytes(32).toString('base64url')));
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
      const stored = await this.storeUnlessSet(had);
      if (stored === null || stored === had) return;
      this.secret = Promise.resolve(stored);
      this.log.warn('Redis holds another resume secret than this node had (it lost its data and another node stored its own): using it');
      this.gateway()?.onResumeSecret(stored);
    } catch (err) {
      this.calls.logError(err, 'restoring the resume secret');
    }
  }

  /** Stores `candidate` unless Redis holds a secret already; resolves with the one Redis holds then. */
  private async storeUnlessSet(candidate: string): Promise<string | null> {
    await this.calls.client.set(this.names.secretKey, candidate, { NX: true });
    return this.calls.client.get(this.names.secretKey);
  }
}
