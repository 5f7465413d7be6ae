/**
 * The SDK against a gateway that misbehaves: a real `ws` server on loopback sends what no
 * roomcast gateway sends (garbage, frames missing fields, answers to nothing), closes at once
 * in a loop, or never welcomes. The client must not throw out of its handlers, must not spin,
 * and close() must stop everything.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { RoomcastClient, type RoomcastError } from '../client/node.js';
import { nextEvent, record, ScriptedGateway } from './helpers/sdk.js';

const FAST = { initialDelayMs: 20, maxDelayMs: 80, factor: 2 };

/** Records every uncaught exception and unhandled rejection while the suite runs. */
function watchProcess(): unknown[] {
  const seen: unknown[] = [];
  const onError = (err: unknown): void => void seen.push(err);
  before(() => {
    process.on('uncaughtException', onError);
    process.on('unhandledRejection', onError);
  });
  after(() => {
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
  });
  return seen;
}

/** Timers (setTimeout/setInterval) alive in this process now. */
function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

describe('SDK against a gateway that sends what no gateway sends', () => {
  const uncaught = watchProcess();

  it('ignores frames that are no roomcast frame, answers to ops it never sent, binary and very large frames: no throw, same connection', async () => {
    const garbage = [
      'not json at all',
      '{"type":2,"data":"truncated',
      '42',
      '"a string"',
      'null',
      '[{"type":2,"data":"in an array"}]',
      '{"data":"no type"}',
      '{"type":2}',
      '{"type":2,"data":{"not":"a string"}}',
      '{"type":-3,"data":"negative tag"}',
      '{"type":2.5,"data":"fractional tag"}',
      '{"type":0}',
      '{"type":0,"op":"no such op"}',
      '{"type":0,"op":"welcome","heartbeat":10000}',
      '{"type":0,"op":"resumed","wsId":"ws-other","recovered":true,"streams":{"lobby":{"seq":9,"epoch":"e"}}}',
      '{"type":0,"op":"reply","id":999,"changed":true}',
      '{"type":0,"op":"reply","id":"1","changed":true}',
      '{"type":0,"op":"joined"}',
      '{"type":0,"op":"left","room":7}',
      '{"type":0,"op":"resumed"}',
      '{"__proto__":{"type":2,"data":"polluted"}}',
    ];
    const big = 'x'.repeat(8 * 1024 * 1024);
    const gateway = await ScriptedGateway.start((ws) => {
      ws.on('message', (data: Buffer) => {
        if (!data.toString().includes('"go"')) return;
        for (const text of garbage) ws.send(text);
        ws.send(Buffer.from('{"type":2,"data":"binary"}'), { binary: true });
        ws.send(JSON.stringify({ type: 2, data: big }));
        ws.send('{"type":2,"data":"still here"}');
      });
    });
    const client = new RoomcastClient(gateway.url, { reconnect: FAST });
    const states = record(client, 'state');
    const errors = record(client, 'error');
    const messages = record(client, 'message');
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      // a join the server answers with nothing but the garbage: "go" in its room id starts it
      const join = client.join('go').catch((err: RoomcastError) => err.code);
      await nextEvent(client, 'message', (m) => m.data === 'still here');
      assert.deepEqual(
        messages.map((m) => (m.data.length > 100 ? `${m.data.length} bytes` : m.data)),
        [`${big.length} bytes`, 'still here'],
      );
      assert.deepEqual(states.map((s) => s.state), ['connecting', 'connected']);
      assert.equal(client.wsId, 'ws-0');
      assert.deepEqual([...client.rooms], []);
      assert.deepEqual([...client.positions], []);
      assert.deepEqual(errors, []);
      client.close();
      assert.equal(await join, 'closed');
      assert.equal(gateway.connections, 1);
      assert.deepEqual(uncaught, []);
    } finally {
      client.close();
      await gateway.close();
    }
  });

  it('reports an error frame that answers none of its ops (an unknown id, or none) as an error event, and goes on', async () => {
    const gateway = await ScriptedGateway.start((ws) => {
      ws.send('{"type":0,"op":"error","id":999,"code":"bad_request","message":"for an op never sent"}');
      ws.send('{"type":0,"op":"error"}');
      ws.send('{"type":2,"data":"after"}');
    });
    const client = new RoomcastClient(gateway.url, { reconnect: FAST });
    const errors = record(client, 'error');
    try {
      await nextEvent(client, 'message', (m) => m.data === 'after');
      assert.deepEqual(
        errors.map((e) => [(e as RoomcastError).code, e.message]),
        [
          ['bad_request', 'for an op never sent'],
          ['unknown', ''],
        ],
      );
      assert.equal(client.state, 'connected');
      assert.deepEqual(uncaught, []);
    } finally {
      client.close();
      await gateway.close();
    }
  });

  it('ignores a second welcome on the same connection: same wsId, same rooms and positions, no left event, no new session', async () => {
    const gateway = await ScriptedGateway.start((ws) => {
      ws.send('{"type":0,"op":"joined","room":"lobby","seq":4,"epoch":"e1"}');
      ws.send('{"type":0,"op":"welcome","data":"ws-other","wsId":"ws-other","heartbeat":10000,"resume":"r2","seq":0,"epoch":"e2"}');
      ws.send('{"type":2,"data":"after","room":"lobby","seq":5}');
    });
    const client = new RoomcastClient(gateway.url, { reconnect: FAST });
    const states = record(client, 'state');
    const left = record(client, 'left');
    try {
      await nextEvent(client, 'message', (m) => m.data === 'after');
      assert.equal(client.wsId, 'ws-0');
      assert.deepEqual([...client.rooms], ['lobby']);
      assert.deepEqual([...client.positions], [['lobby', { seq: 5, epoch: 'e1' }]]);
      assert.deepEqual(left, []);
      assert.deepEqual(states.map((s) => s.state), ['connecting', 'connected']);
      assert.deepEqual(uncaught, []);
    } finally {
      client.close();
      await gateway.close();
    }
  });

  it('pings at most every 2^31-1 ms / 3 for a welcome whose heartbeat is beyond what a timer can wait, not in a tight loop', async () => {
    const gateway = await ScriptedGateway.start(() => undefined, { heartbeatMs: 1e13 });
    const client = new RoomcastClient(gateway.url, { reconnect: FAST });
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      await sleep(300);
      const pings = gateway.received.filter((t) => t === '{"type":1,"data":"PING"}').length;
      // the one it sends on the welcome, and none after
      assert.ok(pings <= 1, `sent ${pings} pings in 300 ms`);
      assert.equal(client.state, 'connected');
    } finally {
      client.close();
      await gateway.close();
    }
  });
});

describe('SDK against a gateway that closes at once or never welcomes', () => {
  const uncaught = watchProcess();

  for (const [name, end, code] of [
    ['drops the socket (1006)', (ws: WebSocket) => ws.terminate(), 1006],
    ['closes with 1011', (ws: WebSocket) => ws.close(1011, 'internal error'), 1011],
    ['closes with 1000', (ws: WebSocket) => ws.close(1000, 'bye'), 1000],
    ['closes with 1008', (ws: WebSocket) => ws.close(1008, 'policy'), 1008],
  ] as const) {
    it(`backs off against a server that accepts and ${name} before any welcome, every time; close() stops it all`, async () => {
      const timersBefore = activeTimers();
      const server = await ScriptedGateway.start(end, { welcome: false });
      // random 0.99: each delay just under its ceiling (20, 40, then 80 ms)
      const client = new RoomcastClient(server.url, { reconnect: FAST, random: () => 0.99 });
      const states = record(client, 'state');
      try {
        await sleep(1000);
        const retries = states.filter((s) => s.state === 'reconnecting');
        assert.ok(retries.every((s) => s.code === code), `codes ${JSON.stringify(retries.map((s) => s.code))}`);
        assert.deepEqual(
          retries.slice(0, 4).map((s) => s.retryInMs),
          [19, 39, 79, 79],
        );
        // 19 + 39 + 79 * n <= 1000 ms: at most 13 connections, more only in a tight loop; a loaded machine may make fewer
        assert.ok(server.connections >= 4 && server.connections <= 14, `${server.connections} connections in 1 s`);
        client.close();
        const seen = server.connections;
        await sleep(300);
        // a handshake in flight as the client closed may still reach the server (the client aborts it, but its request
        // may be there already); one started after close() would need a timer still set, which the check below finds
        assert.ok(server.connections <= seen + 1, `${server.connections - seen} connections after close()`);
        const settled = server.connections;
        await sleep(300);
        assert.equal(server.connections, settled, 'no connection after close()');
        assert.equal(client.state, 'closed');
        assert.equal(states.at(-1)?.state, 'closed');
        assert.ok(activeTimers() <= timersBefore, `${activeTimers()} timers, ${timersBefore} before`);
        assert.deepEqual(uncaught, []);
      } finally {
        client.close();
        await server.close();
      }
    });
  }

  it('gives a server that never welcomes connectTimeoutMs, then backs off, and again; close() leaves no timer', async () => {
    const timersBefore = activeTimers();
    const server = await ScriptedGateway.start(() => undefined, { welcome: false });
    const client = new RoomcastClient(server.url, { reconnect: FAST, random: () => 0.99, connectTimeoutMs: 150 });
    const states = record(client, 'state');
    try {
      await sleep(700);
      const retries = states.filter((s) => s.state === 'reconnecting');
      assert.ok(retries.length >= 2 && retries.length <= 5, `${retries.length} retries in 700 ms`);
      for (const s of retries) assert.deepEqual([s.code, s.reason], [1006, 'no welcome frame within 150 ms']);
      assert.deepEqual(retries.slice(0, 2).map((s) => s.retryInMs), [19, 39]);
      // each retry is a connection; the last one may be open and waiting for its welcome
      assert.ok([retries.length, retries.length + 1].includes(server.connections), `${server.connections} connections, ${retries.length} retries`);
      client.close();
      const seen = server.connections;
      await sleep(300);
      assert.equal(server.connections, seen);
      assert.ok(activeTimers() <= timersBefore, `${activeTimers()} timers, ${timersBefore} before`);
      assert.deepEqual(uncaught, []);
    } finally {
      client.close();
      await server.close();
    }
  });
});
