/**
 * What a gateway holds on to once its connections and sessions are gone: the
 * connections themselves, and the per-session state of those that went away,
 * are let go without waiting for more traffic to push them out.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';
import { collectGarbage } from './helpers/gc.js';
import { startServer, type TestServer } from './helpers/server.js';
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
    // past the newcomers' grace (1 s), whose queue holds a connection that long
    await sleep(1300);
    assert.equal(await stillReachable(conns), 0, 'connections still reachable');
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
    await until('the server to send the sessions away', () => (server.gateway.node.awaySessions.size === 30 ? true : undefined));
    // the window (500 ms), then the gateway's sweep (every second at most)
    await sleep(2000);
    assert.equal(server.gateway.node.awaySessions.size, 0, 'sessions kept in the ledger past their window');
  });
});
