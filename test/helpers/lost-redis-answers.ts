/**
 * One gateway and a logic API on a real Redis, the logic API's connection going
 * through a relay that can lose what Redis answers it (the gateway talks to
 * Redis directly): Redis runs a command, the logic API never hears it did, and
 * answers 503 (after the broker's 500 ms command deadline).
 */
import { pino } from 'pino';
import type { ServerConfig } from '../../src/config.js';
import { RedisBroker } from '../../src/broker/redis/broker.js';
import { startCluster, type EngineFactory, type TestCluster } from './cluster.js';
import type { RedisServer } from './redis.js';
import { TcpRelay } from './tcp-relay.js';

export interface LostAnswersCluster {
  cluster: TestCluster;
  /** Holds back what Redis answers the logic API, as a network that loses it would, until `answer()`. */
  loseAnswers(): { answer(): void };
  close(): Promise<void>;
}

export async function startLostAnswersCluster(redis: RedisServer, prefix: string, config: Partial<ServerConfig> = {}): Promise<LostAnswersCluster> {
  const relay = await TcpRelay.start(() => redis.port);
  const engine: EngineFactory = async () => {
    const brokers: RedisBroker[] = [];
    return {
      brokerFor: async (role) => {
        const url = role === 'logic' ? `redis://127.0.0.1:${relay.port}` : redis.url;
        const broker = await RedisBroker.connect({ url, prefix, commandTimeoutMs: 500 }, pino({ level: 'silent' }));
        brokers.push(broker);
        return broker;
      },
      close: async () => void (await Promise.all(brokers.map((b) => b.close()))),
    };
  };
  const cluster = await startCluster(engine, 1, config);
  return {
    cluster,
    loseAnswers: () => {
      for (const { client: toLogic, upstream } of relay.links) {
        upstream.unpipe(toLogic);
        upstream.pause();
      }
      return {
        answer: () => {
          for (const { client: toLogic, upstream } of relay.links) upstream.pipe(toLogic);
        },
      };
    },
    close: async () => {
      await cluster.close();
      await relay.close();
    },
  };
}
