/** Picks the broker engine from the `--broker` setting. */
import type { Logger } from 'pino';
import type { CommonConfig, GatewaySettings, LogicSettings } from '../config.js';
import type { Broker, ProcessRole } from './broker.js';
import { MemoryBroker } from './memory.js';

/** `role`: what the process serves, as the other processes on Redis name it when its shared settings differ from theirs. */
export async function createBroker(
  config: CommonConfig & Partial<Pick<GatewaySettings, 'sendBufferLimit'> & Pick<LogicSettings, 'maxValSize'>>,
  log: Logger,
  role: ProcessRole,
): Promise<Broker> {
  const options = { history: { size: config.historySize, ttlMs: config.historyTtl }, recoveryWindowMs: config.recoveryWindow };
  if (config.broker === 'memory') return new MemoryBroker({ ...options, historyMaxMemory: config.historyMaxMemory });
  // loaded only when used, so a memory-only process does not carry the Redis client
  const { RedisBroker } = await import('./redis/broker.js');
  // each process records the limit of what it serves: a `start --workers` config holds both, for a logic primary and gateway workers
  const pushLimits = {
    maxValSize: role === 'gateway' ? undefined : config.maxValSize,
    sendBufferLimit: role === 'logic' ? undefined : config.sendBufferLimit,
  };
  return RedisBroker.connect({ url: config.broker, ...options, role, pushLimits }, log);
}
