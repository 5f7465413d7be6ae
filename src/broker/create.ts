/** Picks the broker engine from the `--broker` setting. */
import type { Logger } from 'pino';
import type { Broker } from './broker.js';
import { MemoryBroker } from './memory.js';

export async function createBroker(setting: string, log: Logger): Promise<Broker> {
  if (setting === 'memory') return new MemoryBroker();
  // loaded only when used, so a memory-only process does not carry the Redis client
  const { RedisBroker } = await import('./redis/broker.js');
  return RedisBroker.connect({ url: setting }, log);
}
