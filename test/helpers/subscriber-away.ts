/** A session away from a Redis gateway whose subscriber connection is cut, so the gateway is behind its rooms' history. */
import { createClient } from 'redis';
import type { RedisBroker } from '../../src/broker/redis/broker.js';
import type { TestClient } from './client.js';
import { nodeOf, redisEngine, startCluster, type TestCluster } from './cluster.js';
import { post } from './http.js';
import { RedisServer } from './redis.js';
import { dropConnection, member, type Position } from './resume.js';

export interface BehindItsNode {
  cluster: TestCluster;
  gatewayUrl: string;
  /** The session's old connection (its welcome holds the token) and where it stood, in room `behind`. */
  client: TestClient;
  since: Record<string, Position>;
  /** Another member of `behind` that keeps the room open on the gateway. */
  stays: TestClient;
  /** The 5 pushes to `behind` since the session went away, which the gateway has not heard. */
  missed: number[];
  /** Lets the subscriber connect again. */
  admitClients(): Promise<void>;
}

/** Runs `body` on one Redis gateway whose subscriber stays away (no new connection to Redis is admitted) until `admitClients`. */
export async function withNodeBehind(body: (setup: BehindItsNode) => Promise<void>): Promise<void> {
  const redis = await RedisServer.start();
  const cluster = await startCluster(redisEngine(redis.url), 1);
  const admin = createClient({ url: redis.url });
  await admin.connect();
  const admitClients = async (): Promise<void> => void (await admin.sendCommand(['CONFIG', 'SET', 'maxclients', '10000']));
  try {
    const servers = nodeOf(cluster, 0);
    const { client, since } = await member(servers, ['behind']);
    const { client: stays } = await member(servers, ['behind']);
    await dropConnection(servers, client);
    const clients = String(await admin.sendCommand(['CLIENT', 'LIST'])).trim().split('\n');
    await admin.sendCommand(['CONFIG', 'SET', 'maxclients', String(clients.length - 1)]);
    const subscriber = `roomcast:subscriber:${(cluster.gateways[0].node.broker as RedisBroker).processId}`;
    const id = clients.find((line) => line.includes(` name=${subscriber} `))?.match(/^id=(\d+)/)?.[1];
    await admin.sendCommand(['CLIENT', 'KILL', 'ID', id!]);
    const missed: number[] = [];
    for (let i = 0; i < 5; i++) missed.push((await post(cluster.logicUrl, '/push/room', { val: `b${i}`, tag: 2, id: 'behind' })).body.data?.seq as number);
    await body({ cluster, gatewayUrl: servers.gatewayUrl, client, since, stays, missed, admitClients });
  } finally {
    await admitClients().catch(() => undefined);
    admin.destroy();
    await cluster.close();
    await redis.stop();
  }
}
