/**
 * What a gateway holds on to once its connections and sessions are gone: the
 * connections themselves, and the per-session state of those that went away,
 * are let go without waiting for more traffic to push them out.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { createClient } from 'redis';
import type { RedisBroker } from '../src/broker/redis/broker.js';
import { CLOSE_CONN, REFRESH_CONNS, type LuaScript } from '../src/broker/redis/scripts.js';
import { startStandalone } from '../src/standalone.js';
import { TestClient } from './helpers/client.js';
import { collectGarbage } from './helpers/gc.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { RedisRelay } from './helpers/redis-relay.js';
import { redisEngine, startCluster } from './helpers/cluster.js';
import { startServer, testConfig, type TestServer } from './helpers/server.js';
import { until } from './helpers/until.js';

/** How many of the objects are still reachable after full garbage collections (given a few tries, as finalization is lazy). */
async function stillReachable(refs: WeakRef<object>[], tries = 10): Promise<number> {
  let left = refs.length;
  for (let i = 0; i < tries && left > 0; i++) {
    collectGarbage();
    await sleep(50);
    left = refs.filter((ref) => ref.deref() !== undefined).length;
  }
  return left;
}

describe('connections a gateway lets go', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ connectRatePerIp: 0 });
  });
  after(() => server.close());

  it('20 clients that were written to and closed are collected while the server writes nothing more', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => TestClient.connect(server.gatewayUrl)));
    // each got its welcome and the answer to its PING through the outbox
    const conns = clients.map((client) => new WeakRef(server.gateway.node.hub.conns.get(client.wsId)!));
    await Promise.all(clients.map((client) => client.closeAndWait()));
    await until('the server to let the connections go', () => (server.gateway.node.hub.conns.size === 0 ? true : undefined));
    // past the newcomers' grace (1 s), whose queue holds a connection that long: polled, as a loaded machine runs its timer late
    let left = conns.length;
    await until(
      () => `the connections to be collected (${left} of ${conns.length} still reachable)`,
      async () => ((left = await stillReachable(conns, 1)) === 0 ? true : undefined),
      10_000,
    );
    assert.equal(left, 0, 'connections still reachable');
  });
});

describe('away sessions a gateway lets go', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ connectRatePerIp: 0, recoveryWindow: 500 });
  });
  after(() => server.close());

  it('30 clients that drop leave nothing in the ledger of away sessions once their window has closed, though no client drops after them', async () => {
    const clients = await Promise.all(Array.from({ length: 30 }, () => TestClient.connect(server.gatewayUrl)));
    for (const client of clients) client.ws.terminate();
    await until('the server to send the sessions away', () => (server.gateway.node.awaySessionCount === 30 ? true : undefined));
    // the window (500 ms), then the gateway's sweep (every second at most): polled, with room for a loaded machine
    await until(
      () => `the ledger to let the sessions go (${server.gateway.node.awaySessionCount} left)`,
      () => (server.gateway.node.awaySessionCount === 0 ? true : undefined),
      5000,
    );
    assert.equal(server.gateway.node.awaySessionCount, 0, 'sessions kept in the ledger past their window');
  });
});

/** How many times the node logged a registration of a connection that did not reach Redis. */
function registrationFailures(lines: readonly { msg: string }[]): number {
  return lines.filter((line) => line.msg === 'Redis error while registering a connection').length;
}

/** The wsIds whose session the node is to rewrite at its next refresh, as a write of it failed (nothing else shows them). */
function unsyncedSessions(server: TestServer): ReadonlySet<string> {
  return (server.broker as unknown as { sessions: { registry: { unsynced: Set<string> } } }).sessions.registry.unsynced;
}

/** For RedisRelay.answered: a node's run of `lua` (EVALSHA, or EVAL after NOSCRIPT) with a key of the connection `wsId`. */
function runOf(lua: LuaScript, wsId: string): (name: string, words: string[]) => boolean {
  return (name, [command, script, ...rest]) =>
    name.startsWith('roomcast:commands:') &&
    ((command.toUpperCase() === 'EVALSHA' && script === lua.sha) || (command.toUpperCase() === 'EVAL' && script === lua.source)) &&
    rest.some((arg) => arg.endsWith(`:${wsId}`));
}

describe('writes to Redis a gateway loses', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  let redis: RedisServer;
  let relay: RedisRelay;
  let server: TestServer;
  const logLines: { msg: string }[] = [];
  before(async () => {
    redis = await RedisServer.start();
    relay = await RedisRelay.start(redis.port);
    const config = testConfig({ broker: relay.url, recoveryWindow: 5000, logLevel: 'debug' });
    server = await startStandalone(config, pino({ level: 'debug' }, { write: (line: string) => void logLines.push(JSON.parse(line) as { msg: string }) }));
  });
  after(async () => {
    await server?.close();
    await relay?.close();
    await redis?.stop();
  });

  it('a connection whose registration failed after it closed is not kept to be rewritten: the refresh after the reconnect lets it go', async () => {
    const broker = server.broker as RedisBroker;
    // a connection that stays, so that each refresh writes something, and its answer shows the refresh ran
    const staying = await TestClient.connect(server.gatewayUrl);
    await until('the staying connection to be registered', async () => ((await redis.command(['EXISTS', broker.names.connKey(staying.wsId)])) === 1 ? true : undefined));
    // the registration of the next connection waits in the relay, with all that follows it
    const hold = relay.hold((name, text) => name.includes(':commands:') && text.includes(':conn:'));
    try {
      const client = await TestClient.connect(server.gatewayUrl);
      await hold.held;
      await client.closeAndWait();
      await until('the gateway to let the connection go', () => (server.gateway.node.hub.conns.size === 1 ? true : undefined));
      // the connection to Redis drops with the registration unsent: it fails, for a connection already gone
      const failuresBefore = registrationFailures(logLines);
      // what the node sent since the hold waits in the relay, and goes nowhere: the refresh to come is one sent after the reconnect
      const refreshed = relay.answered(runOf(REFRESH_CONNS, staying.wsId));
      await redis.killClient(`roomcast:commands:${broker.processId}`);
      await Promise.all([until('the registration to fail', () => (registrationFailures(logLines) > failuresBefore ? true : undefined)), refreshed]);
      assert.deepEqual([...unsyncedSessions(server)], [], 'sessions of gone connections kept to be rewritten');
    } finally {
      hold.release();
      await staying.closeAndWait();
    }
  });
});

describe('the registry on a Redis that has not cached its scripts', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  it('a refresh that names a connection closed after it was sent does not register it again', async () => {
    const redis = await RedisServer.start();
    const relay = await RedisRelay.start(redis.port);
    // as after a restart where a close has run (and cached its script) but no refresh yet
    await redis.command(['SCRIPT', 'LOAD', CLOSE_CONN.source]);
    // the node's first refresh, and all it sends after, wait in the relay
    const hold = relay.hold((name, text) => name.includes(':commands:') && text.includes(':kicked:'));
    const cluster = await startCluster(redisEngine(relay.url, { registryTtlMs: 600 }), 1);
    const store = createClient({ url: redis.url });
    try {
      await store.connect();
      const client = await TestClient.connect(cluster.gatewayUrls[0]);
      await hold.held;
      await client.closeAndWait();
      await until('the gateway to let the connection go', () => (cluster.gateways[0].node.hub.conns.size === 0 ? true : undefined));
      // both the held refresh (which names the connection) and the close sent after it have been run, whatever their order
      const ran = Promise.all([relay.answered(runOf(REFRESH_CONNS, client.wsId)), relay.answered(runOf(CLOSE_CONN, client.wsId))]);
      hold.release();
      await ran;
      assert.deepEqual(await store.keys(`*:${client.wsId}`), [], 'registry entry or session of a connection closed with 1000');
    } finally {
      hold.release();
      await store.close();
      await cluster.close();
      await relay.close();
      await redis.stop();
    }
  });
});
