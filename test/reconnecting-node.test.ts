/**
 * Real `roomcast gateway` and `roomcast logic` processes on a real Redis: the
 * gateway's subscriber connection is dropped (CLIENT KILL) and kept from
 * reconnecting (maxclients pinned to the clients left), while its command
 * connection stays. A command by wsId for one of its live connections must
 * not take the node for dead.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import { WebSocket } from 'ws';
import { TestClient, isPush } from './helpers/client.js';
import { call, post } from './helpers/http.js';
import { spawnRoomcast, stopProcess, type ServerProcess } from './helpers/process.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { until } from './helpers/until.js';

describe('a gateway whose subscriber is reconnecting to Redis', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  let redis: RedisServer;
  let gateway: ServerProcess;
  let logic: ServerProcess;
  before(async () => {
    redis = await RedisServer.start();
    const args = ['--host', '127.0.0.1', '--port', '0', '--broker', redis.url];
    // no heartbeat close: the test watches the client past a registry refresh without pinging
    [gateway, logic] = await Promise.all([spawnRoomcast('gateway', [...args, '--heartbeat-timeout', '0']), spawnRoomcast('logic', args)]);
  });
  after(async () => {
    await Promise.all([gateway, logic].filter((p) => p !== undefined).map((p) => stopProcess(p)));
    await redis?.stop();
  });

  /** The process id of the one gateway, from its record of shared settings. */
  async function gatewayProcessId(): Promise<string> {
    // each record is `<expiry>|<json>`
    const records = (await redis.command(['HGETALL', 'roomcast:settings'])) as Record<string, string>;
    for (const [id, record] of Object.entries(records)) if ((JSON.parse(record.slice(record.indexOf('|') + 1)) as { role: string }).role === 'gateway') return id;
    throw new Error(`no gateway among the processes' records: ${JSON.stringify(records)}`);
  }

  it('join, leave, push and kick by wsId answer 503 saying the node is reconnecting; the client stays connected, and once the node is back the join works and a room push reaches it', async () => {
    const client = await TestClient.connect(gateway.gatewayUrl);
    await until('the connection is registered', async () => ((await call(logic.logicUrl, `/conns/${client.wsId}`)).body.data?.state === 'connected' ? true : undefined));
    // one connection of its own: while maxclients is pinned no new one is admitted
    const admin = createClient({ url: redis.url });
    await admin.connect();
    const admit = (): Promise<unknown> => admin.sendCommand(['CONFIG', 'SET', 'maxclients', '10000']);
    try {
      const subscriber = `roomcast:subscriber:${await gatewayProcessId()}`;
      const clients = String(await admin.sendCommand(['CLIENT', 'LIST'])).trim().split('\n');
      // room for the ones left once the subscriber is gone, none for it coming back
      await admin.sendCommand(['CONFIG', 'SET', 'maxclients', String(clients.length - 1)]);
      const id = clients.find((line) => line.includes(` name=${subscriber} `))?.match(/^id=(\d+)/)?.[1];
      assert.ok(id !== undefined, `no ${subscriber} among ${clients.join('; ')}`);
      await admin.sendCommand(['CLIENT', 'KILL', 'ID', id]);
      await until('the gateway notices its subscriber is gone', () => (gateway.lines.some((l) => l.role === 'subscriber' && /lost the connection to Redis/.test(l.msg)) ? true : undefined));

      const commands: [string, Record<string, string | number>][] = [
        ['/room/join', { id: 'r', wsId: client.wsId }],
        ['/room/leave', { id: 'r', wsId: client.wsId }],
        ['/push/conn', { wsId: client.wsId, val: 'direct', tag: 2 }],
        ['/conn/kick', { wsId: client.wsId }],
      ];
      for (const [path, form] of commands) {
        const answer = await post(logic.logicUrl, path, form);
        assert.equal(answer.status, 503, `${path}: ${answer.text}`);
        assert.equal(answer.body.code, 503);
        assert.match(answer.body.msg, new RegExp(`${client.wsId}.*reconnecting to Redis.*try again`));
      }
      assert.equal((await call(logic.logicUrl, `/conns/${client.wsId}`)).status, 503);
      assert.deepEqual(await client.ping(), { type: 1, data: 'PONG' });

      await admit();
      const joined = await until('the join works once the node is back', async () => {
        const answer = await post(logic.logicUrl, '/room/join', { id: 'r', wsId: client.wsId });
        assert.ok([200, 503].includes(answer.status), answer.text);
        return answer.status === 200 ? answer : undefined;
      });
      assert.equal(joined.body.data?.changed, true);
      const pushed = await post(logic.logicUrl, '/push/room', { id: 'r', val: 'back', tag: 2 });
      assert.equal(pushed.status, 200);
      assert.equal((await client.next(isPush)).data, 'back');
      // past a registry refresh (every 10 s), which would close a connection whose session the logic changed meanwhile
      assert.equal(await client.closeCode(11_000), 'still open');
      assert.equal(client.ws.readyState, WebSocket.OPEN);
      assert.equal((await call(logic.logicUrl, `/conns/${client.wsId}`)).body.data?.state, 'connected');
    } finally {
      await admit();
      admin.destroy();
      await client.closeAndWait();
    }
  });
});
