/** One suite run on each broker engine: memory, and Redis on a redis-server of its own. */
import { after, before, describe } from 'node:test';
import { memoryEngine, redisEngine, startCluster, type TestCluster } from './cluster.js';
import type { testConfig } from './server.js';
import { RedisServer, skipWithoutRedis } from './redis.js';

export type EngineName = 'memory' | 'redis';

/** What a suite body gets: filled in before its tests run. */
export interface EngineSuite {
  cluster: TestCluster;
  /** The suite's redis-server; undefined on memory. */
  redis: RedisServer | undefined;
}

/**
 * Declares `title: <engine>` for each engine, each with a cluster of `nodes` gateway nodes started before its tests and stopped after
 * (`overrides` of the config apply to every process).
 */
export function onEachEngine(title: string, nodes: number, body: (suite: EngineSuite) => void, overrides: Parameters<typeof testConfig>[0] = {}): void {
  for (const engine of ['memory', 'redis'] as EngineName[]) {
    describe(`${title}: ${engine}`, { skip: engine === 'redis' && skipWithoutRedis }, () => {
      const suite = { redis: undefined } as EngineSuite;
      before(async () => {
        suite.redis = engine === 'redis' ? await RedisServer.start() : undefined;
        suite.cluster = await startCluster(suite.redis === undefined ? memoryEngine : redisEngine(suite.redis.url), nodes, overrides);
      });
      after(async () => {
        await suite.cluster?.close();
        await suite.redis?.stop();
      });
      body(suite);
    });
  }
}
