/**
 * A rolling upgrade on Redis: for a while a gateway node of another version
 * hears the queries of the logic API (GET /rooms, /rooms/:id, /stats) and may
 * not know one. It then answers nothing; the logic leaves its part out, says
 * so once, and answers from the nodes that did.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { createClient } from 'redis';
import { startStandalone, type RunningServer } from '../src/standalone.js';
import { TestClient } from './helpers/client.js';
import { call, post } from './helpers/http.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { testConfig } from './helpers/server.js';

interface LogLine {
  level: number;
  msg: string;
  node?: string;
  query?: string;
}

describe('a gateway node that answers nothing to a query it does not know (another version)', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  let redis: RedisServer;
  let server: RunningServer;
  let otherVersion: ReturnType<typeof createClient>;
  let listener: ReturnType<typeof createClient>;
  let client: TestClient;
  let lines: LogLine[];

  // each test has its own Redis, server and node of another version: the warning it counts is its own
  beforeEach(async () => {
    lines = [];
    redis = await RedisServer.start();
    const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
    server = await startStandalone(testConfig({ broker: redis.url }), log);
    // the node of another version: on the channel every gateway node hears queries on, it answers each with no result
    otherVersion = createClient({ url: redis.url });
    await otherVersion.connect();
    listener = otherVersion.duplicate();
    await listener.connect();
    await listener.subscribe('roomcast:nodes', (message) => {
      const request = JSON.parse(message) as { from: string; reqId: number };
      void otherVersion.publish(`roomcast:reply:${request.from}`, JSON.stringify({ type: 'reply', from: 'other-version', reqId: request.reqId }));
    });
    client = await TestClient.connect(server.gatewayUrl);
    assert.equal((await post(server.logicUrl, '/room/join', { id: 'here', wsId: client.wsId })).status, 200);
  });

  afterEach(async () => {
    await client?.closeAndWait();
    await server?.close();
    await Promise.all([otherVersion?.quit(), listener?.quit()]);
    await redis?.stop();
  });

  /** Asks each query `rounds` times, checking each answer comes from this version's node alone. */
  async function askEveryQuery(rounds: number): Promise<void> {
    for (let i = 0; i < rounds; i++) {
      const rooms = await call(server.logicUrl, '/rooms');
      assert.equal(rooms.status, 200, rooms.text);
      assert.deepEqual(rooms.body.data, { total: 1, offset: 0, limit: 100, rooms: [{ room: 'here', members: 1 }] });
      const room = await call(server.logicUrl, '/rooms/here');
      assert.equal(room.status, 200, room.text);
      assert.deepEqual(room.body.data, { room: 'here', members: 1, offset: 0, limit: 100, wsIds: [client.wsId] });
      const stats = await call(server.logicUrl, '/stats');
      assert.equal(stats.status, 200, stats.text);
      assert.deepEqual([stats.body.data?.nodes, stats.body.data?.connections, stats.body.data?.rooms], [1, 1, 1]);
    }
  }

  it("leaves its part out of GET /rooms, /rooms/:id and /stats, which answer from this version's node", async () => {
    await askEveryQuery(3);
  });

  it('says so once, naming the node, however often it is asked', async () => {
    await askEveryQuery(3);
    const warned = lines.filter((line) => line.msg.includes('answered nothing to a query'));
    assert.equal(warned.length, 1, JSON.stringify(warned));
    assert.equal(warned[0].node, 'other-version');
    assert.equal(warned[0].level, 40);
  });
});
