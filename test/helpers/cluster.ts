/** Several gateway nodes and a logic API on one broker, in this process, over real sockets. */
import { after, before } from 'node:test';
import { pino } from 'pino';
import type { Broker } from '../../src/broker/broker.js';
import { MemoryBroker } from '../../src/broker/memory.js';
import { RedisBroker, type RedisBrokerOptions } from '../../src/broker/redis/broker.js';
import { DEFAULTS, gatewayPart, logicPart } from '../../src/config.js';
import type { GatewayServer } from '../../src/gateway/server.js';
import type { LogicServer } from '../../src/logic/server.js';
import { createGateway, createLogic, gatewayUrl, logicUrl } from '../../src/standalone.js';
import { RedisRelay } from './redis-relay.js';
import { RedisServer } from './redis.js';
import { testConfig } from './server.js';

export interface TestCluster {
  gatewayUrls: string[];
  gateways: GatewayServer[];
  logicUrl: string;
  logic: LogicServer;
  /** Starts one more gateway node on the same broker (a new node id, counters from 0); resolves with its URL. */
  addGateway(): Promise<string>;
  /** Starts one more logic API on the same broker (on Redis with a connection of its own, as another process would have); resolves with its URL. */
  addLogic(): Promise<string>;
  close(): Promise<void>;
}

export type EngineFactory = () => Promise<{ brokerFor: (role: 'gateway' | 'logic') => Promise<Broker>; close(): Promise<void> }>;

const log = pino({ level: 'silent' });

export const memoryEngine: EngineFactory = async () => {
  const broker = new MemoryBroker();
  return { brokerFor: async () => broker, close: () => broker.close() };
};

/** Each node gets its own connection to Redis, as separate processes would; each broker is also added to `made` (the logic's last). */
export function redisEngine(url: string, options: Partial<Omit<RedisBrokerOptions, 'url' | 'prefix'>> = {}, made: RedisBroker[] = []): EngineFactory {
  return async () => {
    const brokers: Broker[] = [];
    // a fresh key space per cluster, so suites sharing one redis-server never see each other
    const prefix = `t${Date.now()}${Math.random().toString(36).slice(2, 6)}:`;
    return {
      brokerFor: async () => {
        const broker = await RedisBroker.connect({ url, prefix, ...options }, log);
        brokers.push(broker);
        made.push(broker);
        return broker;
      },
      close: async () => {
        await Promise.all(brokers.map((b) => b.close()));
      },
    };
  };
}

/** Gateway node `index` of a cluster with its logic API, as one server: what `member` and the resume steps take. */
export function nodeOf(cluster: TestCluster, index: number): { gatewayUrl: string; logicUrl: string } {
  return { gatewayUrl: cluster.gatewayUrls[index], logicUrl: cluster.logicUrl };
}

type Overrides = Parameters<typeof testConfig>[0];

/** `overrides` apply to every process; `nodeOverrides[i]` to gateway node i only. */
export async function startCluster(engine: EngineFactory, nodes = 2, overrides: Overrides = {}, nodeOverrides: Overrides[] = []): Promise<TestCluster> {
  const config = testConfig({ ...overrides, broker: DEFAULTS.broker });
  const made = await engine();
  const gateways: GatewayServer[] = [];
  const gatewayUrls: string[] = [];
  const addGateway = async (nodeOverride: Overrides = {}): Promise<string> => {
    const nodeConfig = gatewayPart({ ...config, ...nodeOverride });
    const gateway = createGateway(nodeConfig, await made.brokerFor('gateway'), log);
    const url = gatewayUrl(nodeConfig, (await gateway.listen()).port);
    gatewayUrls.push(url);
    gateways.push(gateway);
    return url;
  };
  for (let i = 0; i < nodes; i++) await addGateway(nodeOverrides[i]);
  const logics: LogicServer[] = [];
  const addLogic = async (): Promise<string> => {
    const logic = createLogic(logicPart(config), await made.brokerFor('logic'), log);
    logics.push(logic);
    return logicUrl(logicPart(config), (await logic.listen()).port);
  };
  const url = await addLogic();
  return {
    gatewayUrls,
    gateways,
    logicUrl: url,
    logic: logics[0],
    addGateway,
    addLogic,
    async close() {
      await Promise.all([...gateways.map((g) => g.close()), ...logics.map((l) => l.close())]);
      await made.close();
    },
  };
}

/** A cluster whose every Redis connection passes a relay (which can hold one connection's commands back), on a redis-server of its own. */
export interface RelayedCluster {
  redis: RedisServer;
  relay: RedisRelay;
  cluster: TestCluster;
}

/** A RelayedCluster started before the tests of the calling suite and closed after them: read its fields inside the tests. */
export function relayedClusterPerSuite(nodes: number, options: Partial<Omit<RedisBrokerOptions, 'url' | 'prefix'>> = {}, overrides: Overrides = {}): RelayedCluster {
  const made = {} as RelayedCluster;
  before(async () => {
    made.redis = await RedisServer.start();
    made.relay = await RedisRelay.start(made.redis.port);
    made.cluster = await startCluster(redisEngine(made.relay.url, options), nodes, overrides);
  });
  after(async () => {
    await made.cluster?.close();
    await made.relay?.close();
    await made.redis?.stop();
  });
  return made;
}
