import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { backoffCeiling, backoffDelay, DEFAULT_BACKOFF, RoomcastClient, RoomcastError, type JoinResult, type Message, type StateChange } from '../client/node.js';
import { WebSocket as WsWebSocket, type WebSocket } from 'ws';
import { RoomcastClient as BrowserRoomcastClient } from '../client/browser.js';
import { CloseCode, isTerminalCloseCode } from '../src/protocol/close-codes.js';
import { post } from './helpers/http.js';
import { stopProcess, spawnServer } from './helpers/process.js';
import { nextEvent, record, runClientScript, ScriptedGateway } from './helpers/sdk.js';
import { serverPerSuite, withServer } from './helpers/server.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';
import { until, untilLength } from './helpers/until.js';

const FAST = { initialDelayMs: 20, maxDelayMs: 80, factor: 2 };

describe('SDK backoff', () => {
  it('bounds the n-th delay by min(maxDelayMs, initialDelayMs * factor^n), with full jitter from 0', () => {
    const options = { initialDelayMs: 500, maxDelayMs: 30_000, factor: 2 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 7, 100, 5000].map((n) => backoffCeiling(n, options)),
      [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000],
    );
    for (const n of [0, 3, 9, 5000]) {
      assert.equal(backoffDelay(n, options, () => 0), 0);
      const highest = backoffDelay(n, options, () => 0.999_999_9);
      assert.ok(highest < backoffCeiling(n, options) && highest >= backoffCeiling(n, options) - 1, `attempt ${n}: ${highest}`);
    }
    // initialDelayMs 0 retries at once however many retries failed: 0 * 2^5000 is 0 * Infinity, NaN, and must not show
    const immediate = { initialDelayMs: 0, maxDelayMs: 1000, factor: 2 };
    assert.deepEqual([0, 1, 1100, 5000].map((n) => [backoffCeiling(n, immediate), backoffDelay(n, immediate, () => 0.5)]), [[0, 0], [0, 0], [0, 0], [0, 0]]);
  });

  it('spreads delays over the whole range with Math.random', () => {
    const delays = Array.from({ length: 2000 }, () => backoffDelay(3, DEFAULT_BACKOFF));
    assert.ok(delays.every((d) => Number.isInteger(d) && d >= 0 && d < 4000));
    assert.ok(Math.min(...delays) < 400 && Math.max(...delays) > 3600, 'full jitter covers [0, ceiling)');
  });

  it('rejects reconnect options that make no sense, naming the option', () => {
    assert.throws(() => new RoomcastClient('ws://127.0.0.1:1/connect', { reconnect: { initialDelayMs: -1 } }), /reconnect\.initialDelayMs must be a number >= 0/);
    assert.throws(() => new RoomcastClient('ws://127.0.0.1:1/connect', { reconnect: { initialDelayMs: 100, maxDelayMs: 50 } }), /reconnect\.maxDelayMs must be a number >= reconnect\.initialDelayMs \(100\)/);
    assert.throws(() => new RoomcastClient('ws://127.0.0.1:1/connect', { reconnect: { factor: 0.5 } }), /reconnect\.factor must be a number >= 1/);
  });
});

describe('SDK options', () => {
  it('rejects a URL that is not ws:// or wss://, and bad timeouts or tokens', () => {
    assert.throws(() => new RoomcastClient('localhost:8888'), { name: 'TypeError', message: 'url must be an absolute ws:// or wss:// URL, got "localhost:8888"' });
    assert.throws(() => new RoomcastClient('not a url'), { name: 'TypeError', message: 'url must be an absolute ws:// or wss:// URL, got "not a url"' });
    assert.throws(() => new RoomcastClient('http://127.0.0.1:8888/connect'), { name: 'TypeError', message: 'url must be an absolute ws:// or wss:// URL, got "http://127.0.0.1:8888/connect"' });
    assert.throws(() => new RoomcastClient('ws://127.0.0.1:1/connect', { timeoutMs: 0 }), /timeoutMs must be a number of ms above 0, got 0/);
    assert.throws(() => new RoomcastClient('ws://127.0.0.1:1/connect', { token: '' }), /token must be a non-empty string/);
  });

  it('setToken() rejects a token that is missing or empty, and keeps the one it had', async () => {
    const gateway = await ScriptedGateway.start(() => undefined);
    const client = new RoomcastClient(gateway.url, { token: 'first', reconnect: FAST });
    const connected = nextEvent(client, 'state', (s) => s.state === 'connected');
    try {
      // a getToken resolving to undefined hands setToken() this: it must not drop the token silently
      await assert.rejects(client.setToken(undefined as unknown as string), { name: 'TypeError', message: 'token must be a non-empty string' });
      await assert.rejects(client.setToken(''), { name: 'TypeError', message: 'token must be a non-empty string' });
      await connected;
      gateway.sockets[0].close(1001);
      await nextEvent(client, 'state', (s) => s.state === 'connected' && s.wsId === 'ws-1');
      // every connection carried the token the client had, and none was sent a refresh
      assert.deepEqual(gateway.urls, ['/connect?token=first', '/connect?token=first']);
      assert.ok(!gateway.received.some((text) => text.includes('refresh')), gateway.received.join('\n'));
    } finally {
      client.close();
      await gateway.close();
    }
  });

  it('is what `roomcast/client` resolves to in Node', async () => {
    const specifier = 'roomcast/client';
    const exported = (await import(specifier)) as { RoomcastClient: unknown };
    assert.equal(exported.RoomcastClient, RoomcastClient);
  });

  it('is the native-WebSocket build under the browser condition, which says what to do where there is none', () => {
    const script =
      "const m = await import('roomcast/client'); try { new m.RoomcastClient('ws://127.0.0.1:1/connect', { reconnect: false }).close(); console.log('built on the global WebSocket'); } catch (e) { console.log(e.message); }";
    const run = spawnSync(process.execPath, ['--conditions=browser', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      cwd: new URL('../..', import.meta.url),
      timeout: 20_000,
    });
    assert.equal(run.status, 0, run.stderr);
    // Node 22 and newer have a global WebSocket, as browsers do; Node 20 has none
    const expected =
      typeof globalThis.WebSocket === 'function'
        ? 'built on the global WebSocket'
        : 'no global WebSocket here: in Node 20, import roomcast/client without the browser condition (that build uses ws)';
    assert.equal(run.stdout.trim(), expected);
  });

  it('fits in 4,086 bytes minified and gzipped as a browser bundle', () => {
    const bundle = readFileSync(new URL('../../dist/client-bundle/roomcast-client.js', import.meta.url));
    const gzipped = gzipSync(bundle, { level: 9 }).length;
    assert.ok(gzipped < 4086, `the browser bundle is ${gzipped} bytes gzipped`);
  });
});

describe('SDK against a roomcast server', () => {
  const server = serverPerSuite({ allowClientJoin: true, heartbeatTimeout: 600 });

  it('connects, joins with its own op, and receives room, all and connection pushes as typed messages', async () => {
    const client = new RoomcastClient(server.gatewayUrl);
    const states = record(client, 'state');
    try {
      const connected = await nextEvent(client, 'state', (s) => s.state === 'connected');
      assert.equal(typeof connected.wsId, 'string');
      assert.equal(client.wsId, connected.wsId);
      assert.deepEqual(states.map((s) => s.state), ['connecting', 'connected']);

      const joined = nextEvent(client, 'joined');
      assert.deepEqual(await client.join('lobby'), { room: 'lobby', changed: true });
      const joinedEvent = await joined;
      assert.deepEqual(joinedEvent, { room: 'lobby', seq: 0, epoch: joinedEvent.epoch });
      assert.equal(typeof joinedEvent.epoch, 'string');
      assert.deepEqual(await client.join('lobby'), { room: 'lobby', changed: false });
      assert.deepEqual([...client.rooms], ['lobby']);

      const messages = record(client, 'message');
      const roomSeq = (await post(server.logicUrl, '/push/room', { id: 'lobby', tag: 7, val: 'to the room' })).body.data?.seq as number;
      const allSeq = (await post(server.logicUrl, '/push/all', { tag: 3, val: 'to all' })).body.data?.seq as number;
      await post(server.logicUrl, '/push/conn', { wsId: client.wsId ?? '', tag: 4, val: 'to you' });
      await untilLength('messages', messages, 3);
      assert.deepEqual(messages, [
        { tag: 7, data: 'to the room', room: 'lobby', seq: roomSeq },
        { tag: 3, data: 'to all', room: undefined, seq: allSeq },
        { tag: 4, data: 'to you', room: undefined, seq: undefined },
      ] satisfies Message[]);
      const positions = Object.fromEntries(client.positions);
      assert.deepEqual(positions, { lobby: { seq: roomSeq, epoch: joinedEvent.epoch }, '*': { seq: allSeq, epoch: positions['*'].epoch } });
      assert.equal(typeof positions['*'].epoch, 'string');

      const left = nextEvent(client, 'left');
      assert.deepEqual(await client.leave('lobby'), { room: 'lobby', changed: true });
      assert.deepEqual(await left, { room: 'lobby' });
      assert.equal(client.rooms.size, 0);
    } finally {
      client.close();
    }
  });

  it('after its connection drops, resumes the session: same wsId, same rooms, every missed push in order', async () => {
    // the retry waits just under 400 ms: long enough for the pushes below to happen while it is away
    const client = new RoomcastClient(server.gatewayUrl, { reconnect: { initialDelayMs: 400, maxDelayMs: 400 }, random: () => 0.99 });
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      await client.join('resumable');
      const wsId = client.wsId!;
      const messages = record(client, 'message');
      // the network drops: the server's socket is destroyed without a close handshake
      server.gateway.node.hub.conns.get(wsId)!.terminate();
      await nextEvent(client, 'state', (s) => s.state === 'reconnecting');
      const reconnected = nextEvent(client, 'state', (s) => s.state === 'connected');
      const sent: string[] = [];
      for (let i = 0; i < 20; i++) {
        const val = `missed ${i}`;
        await post(server.logicUrl, i % 2 ? '/push/all' : '/push/room', { id: 'resumable', tag: 2, val });
        sent.push(val);
      }
      assert.deepEqual(await reconnected, { state: 'connected', wsId, recovered: true });
      assert.equal(client.wsId, wsId);
      assert.deepEqual([...client.rooms], ['resumable']);
      await untilLength('messages', messages, 20);
      assert.deepEqual(
        messages.map((m) => m.data),
        sent,
      );
      const live = (await post(server.logicUrl, '/push/room', { id: 'resumable', tag: 2, val: 'live' })).body.data?.seq;
      await untilLength('messages', messages, 21);
      assert.deepEqual(messages[20], { tag: 2, data: 'live', room: 'resumable', seq: live });
    } finally {
      client.close();
    }
  });

  it('sends the ops it held while reconnecting before any a listener of the connected state calls: in the order they were called', async () => {
    const client = new RoomcastClient(server.gatewayUrl, { reconnect: { initialDelayMs: 100, maxDelayMs: 100 } });
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      server.gateway.node.hub.conns.get(client.wsId!)!.terminate();
      await nextEvent(client, 'state', (s) => s.state === 'reconnecting');
      // held until the session is back...
      const joined = client.join('held-then-left');
      let left: Promise<JoinResult> | undefined;
      // ...and called after it, by an app that acts once connected
      const off = client.on('state', ({ state }) => state === 'connected' && (left = client.leave('held-then-left')));
      assert.equal((await nextEvent(client, 'state', (s) => s.state === 'connected')).recovered, true);
      off();
      assert.deepEqual(await joined, { room: 'held-then-left', changed: true });
      assert.deepEqual(await left, { room: 'held-then-left', changed: true });
      assert.deepEqual([...client.rooms], []);
    } finally {
      client.close();
    }
  });

  it('resumes a room named __proto__ from where it stood: what it had received before the drop is not replayed', async () => {
    const client = new RoomcastClient(server.gatewayUrl, { reconnect: { initialDelayMs: 400, maxDelayMs: 400 }, random: () => 0.99 });
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      await client.join('__proto__');
      const messages = record(client, 'message');
      await post(server.logicUrl, '/push/room', { id: '__proto__', tag: 2, val: 'before' });
      await untilLength('messages', messages, 1);
      server.gateway.node.hub.conns.get(client.wsId!)!.terminate();
      await nextEvent(client, 'state', (s) => s.state === 'reconnecting');
      const reconnected = nextEvent(client, 'state', (s) => s.state === 'connected');
      await post(server.logicUrl, '/push/room', { id: '__proto__', tag: 2, val: 'missed' });
      assert.equal((await reconnected).recovered, true);
      const live = await post(server.logicUrl, '/push/room', { id: '__proto__', tag: 2, val: 'live' });
      await until('the live push', () => (messages.some((m) => m.seq === live.body.data?.seq) ? true : undefined));
      assert.deepEqual(
        messages.map((m) => m.data),
        ['before', 'missed', 'live'],
      );
    } finally {
      client.close();
    }
  });

  it('keeps its rooms while it reconnects to resume them, and emits left for each when a reconnect cannot take the session back (a kick)', async () => {
    const client = new RoomcastClient(server.gatewayUrl, { reconnect: FAST });
    const left = record(client, 'left');
    try {
      const first = await nextEvent(client, 'state', (s) => s.state === 'connected');
      await client.join('kept-a');
      await client.join('kept-b');
      const roomsWhileReconnecting = nextEvent(client, 'state', (s) => s.state === 'reconnecting').then(() => [...client.rooms]);
      server.gateway.node.hub.conns.get(first.wsId!)!.terminate();
      assert.deepEqual(await roomsWhileReconnecting, ['kept-a', 'kept-b']);
      assert.deepEqual(await nextEvent(client, 'state', (s) => s.state === 'connected'), { state: 'connected', wsId: first.wsId, recovered: true });
      assert.deepEqual([...client.rooms], ['kept-a', 'kept-b']);
      assert.deepEqual(left, []);

      // a kick ends the session: the next connection is a new one, in no room, and says so room by room
      const fresh = nextEvent(client, 'state', (s) => s.state === 'connected');
      await post(server.logicUrl, '/conn/kick', { wsId: first.wsId! });
      const second = await fresh;
      assert.notEqual(second.wsId, first.wsId);
      assert.deepEqual(left, [{ room: 'kept-a' }, { room: 'kept-b' }]);
      assert.equal(client.rooms.size, 0);
    } finally {
      client.close();
    }
  });

  it('pings on its own, so a server with a 600 ms heartbeat timeout keeps it for 2 s', async () => {
    const client = new RoomcastClient(server.gatewayUrl);
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      const states = record(client, 'state');
      const timeoutsBefore = (await server.broker.stats()).heartbeatTimeouts;
      await sleep(2000);
      assert.deepEqual(states, []);
      assert.equal(client.state, 'connected');
      assert.equal((await server.broker.stats()).heartbeatTimeouts, timeoutsBefore);
    } finally {
      client.close();
    }
  });

  it('after its process was too busy to ping, reads what the server sent meanwhile before judging it silent: it reports the server\'s 4002, and resumes', async () => {
    const run = await runClientScript(
      `const client = new RoomcastClient(${JSON.stringify(server.gatewayUrl)}, { reconnect: { initialDelayMs: 20, maxDelayMs: 80 } });
      client.on('state', (s) => {
        console.log([s.state, s.code, s.reason, s.recovered].filter((x) => x !== undefined).join(' '));
        if (s.state === 'connected' && s.recovered === undefined) {
          // busy for 1.5 s: no ping goes out, and the server (heartbeat 600 ms) closes the connection with 4002
          setTimeout(() => { const end = Date.now() + 1500; while (Date.now() < end); }, 10);
        } else if (s.state === 'connected') client.close();
      });`,
      10_000,
    );
    assert.equal(run.stderr, '');
    assert.deepEqual(run.lines, ['connecting', 'connected', 'reconnecting 4002 heartbeat timeout', 'connected true', 'closed 1000 closed by the client']);
  });

  // the browser build runs on ws here, whose close() without a code sends what a browser's does (a close frame with no status, 1005)
  for (const build of ['node', 'browser'] as const) {
    it(`gives up on a server gone silent without ending the session there (${build} build): the resume takes back its wsId and rooms`, async () => {
      const saved = Object.getOwnPropertyDescriptor(globalThis, 'WebSocket');
      if (build === 'browser') Object.defineProperty(globalThis, 'WebSocket', { value: WsWebSocket, configurable: true, writable: true });
      // the retry waits just under 300 ms: time for the server to finish with the connection given up
      const options = { reconnect: { initialDelayMs: 300, maxDelayMs: 300 }, random: () => 0.99 };
      const client = build === 'node' ? new RoomcastClient(server.gatewayUrl, options) : new BrowserRoomcastClient(server.gatewayUrl, options);
      try {
        const first = await nextEvent(client, 'state', (s) => s.state === 'connected');
        await client.join('silent-server');
        // the server goes on reading (the client's pings keep the connection alive there), but nothing it writes leaves
        const { socket } = server.gateway.node.hub.conns.get(first.wsId!)! as unknown as { socket: Duplex };
        socket.cork();
        const dropped = await nextEvent(client, 'state', (s) => s.state === 'reconnecting', 3000);
        assert.deepEqual([dropped.code, dropped.reason], [1006, 'the server sent nothing for 600 ms']);
        // the server speaks again (it was only slow): it finishes the close the client sent as it gave up
        socket.uncork();
        assert.deepEqual(await nextEvent(client, 'state', (s) => s.state === 'connected'), { state: 'connected', wsId: first.wsId, recovered: true });
        assert.deepEqual([...client.rooms], ['silent-server']);
      } finally {
        client.close();
        if (saved === undefined) delete (globalThis as { WebSocket?: unknown }).WebSocket;
        else Object.defineProperty(globalThis, 'WebSocket', saved);
      }
    });
  }

  it('rejects a join with a bad room at once, without asking the server', async () => {
    const client = new RoomcastClient(server.gatewayUrl);
    try {
      await assert.rejects(client.join('no spaces'), (err: RoomcastError) => {
        assert.equal(err.code, 'bad_request');
        assert.equal(err.message, 'room must be a string of 1-128 characters from A-Z a-z 0-9 _ . : @ -, not "." or "..", got "no spaces"');
        return true;
      });
    } finally {
      client.close();
    }
  });

  it('after a kick (4003) reconnects with backoff as a new connection in no room: it rejoins nothing by itself', async () => {
    const client = new RoomcastClient(server.gatewayUrl, { reconnect: FAST });
    try {
      const first = await nextEvent(client, 'state', (s) => s.state === 'connected');
      await client.join('before-kick');
      const reconnecting = nextEvent(client, 'state', (s) => s.state === 'reconnecting');
      const reconnected = nextEvent(client, 'state', (s) => s.state === 'connected');
      await post(server.logicUrl, '/conn/kick', { wsId: first.wsId ?? '' });
      const dropped = await reconnecting;
      assert.equal(dropped.code, CloseCode.kicked);
      assert.ok(dropped.retryInMs !== undefined && dropped.retryInMs >= 0 && dropped.retryInMs < FAST.initialDelayMs, `retry in ${dropped.retryInMs}`);
      const second = await reconnected;
      assert.notEqual(second.wsId, first.wsId);
      assert.equal(second.recovered, false);
      assert.equal(client.rooms.size, 0);
      assert.equal((await server.broker.roomMemberPage('before-kick', { offset: 0, limit: 0 })).total, 0);
    } finally {
      client.close();
    }
  });

  it('without --allow-client-join, join rejects with the server error code forbidden', async () => {
    await withServer({}, async (strict) => {
      const client = new RoomcastClient(strict.gatewayUrl);
      try {
        await assert.rejects(client.join('lobby'), (err: RoomcastError) => {
          assert.equal(err.name, 'RoomcastError');
          assert.equal(err.code, 'forbidden');
          assert.match(err.message, /--allow-client-join/);
          return true;
        });
      } finally {
        client.close();
      }
    });
  });

  it('close() closes with 1000, rejects pending ops, and never reconnects', async () => {
    const client = new RoomcastClient(server.gatewayUrl, { reconnect: FAST });
    await nextEvent(client, 'state', (s) => s.state === 'connected');
    const before = (await server.broker.stats()).connections;
    const closed = nextEvent(client, 'state', (s) => s.state === 'closed');
    client.close();
    assert.deepEqual(await closed, { state: 'closed', code: 1000, reason: 'closed by the client' } satisfies StateChange);
    await assert.rejects(client.join('x'), { code: 'closed' });
    await sleep(300);
    assert.equal(client.state, 'closed');
    assert.equal((await server.broker.stats()).connections, before - 1);
  });
});

describe('SDK close() leaves nothing running: the process exits by itself', () => {
  const server = serverPerSuite({ allowClientJoin: true });
  /** A retry that would come 20 s later: a client that left it scheduled keeps its process that long. */
  const SLOW_RETRY = '{ reconnect: { initialDelayMs: 20000, maxDelayMs: 20000 }, random: () => 0.99 }';
  const PRINT_STATES = "client.on('state', (s) => console.log(s.state + (s.code === undefined ? '' : ' ' + s.code)));";

  async function assertExits(script: string, expected: string[]): Promise<void> {
    const run = await runClientScript(script, 8000);
    assert.equal(run.stderr, '');
    assert.deepEqual(run.lines, expected);
    assert.ok(run.exited && run.ms < 5000, `the process ${run.exited ? `exited after ${Math.round(run.ms)} ms` : 'was still running after 8 s'}`);
  }

  it('when close() is called right after new, before the client started connecting: no socket is opened, no state after closed', async () => {
    await assertExits(
      `const client = new RoomcastClient(${JSON.stringify(server.gatewayUrl)}, ${SLOW_RETRY});
      ${PRINT_STATES}
      client.close();`,
      ['closed 1000'],
    );
  });

  it('when close() is called by a listener of the connecting state: no socket is opened after it', async () => {
    await assertExits(
      `const client = new RoomcastClient(${JSON.stringify(server.gatewayUrl)}, ${SLOW_RETRY});
      ${PRINT_STATES}
      client.on('state', (s) => s.state === 'connecting' && client.close());`,
      ['connecting', 'closed 1000'],
    );
  });

  it('when close() is called by a listener of the reconnecting state: the retry it announced is not left scheduled', async () => {
    const kick = `fetch(${JSON.stringify(`${server.logicUrl}/conn/kick`)}, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ wsId: s.wsId }) })`;
    await assertExits(
      `const client = new RoomcastClient(${JSON.stringify(server.gatewayUrl)}, ${SLOW_RETRY});
      ${PRINT_STATES}
      client.on('state', (s) => {
        if (s.state === 'connected') ${kick};
        if (s.state === 'reconnecting') client.close();
      });`,
      ['connecting', 'connected', 'reconnecting 4003', 'closed 1000'],
    );
  });

  it('when close() is called while reconnecting with a join waiting: the join is rejected', async () => {
    await assertExits(
      `const client = new RoomcastClient('ws://127.0.0.1:1/connect', ${SLOW_RETRY});
      ${PRINT_STATES}
      client.on('state', (s) => {
        if (s.state !== 'reconnecting') return;
        // the retry is 20 s away: close while waiting for it
        setTimeout(() => {
          client.join('waiting').catch((err) => console.log('join ' + err.code));
          client.close();
        }, 50);
      });`,
      ['connecting', 'reconnecting 1006', 'closed 1000', 'join closed'],
    );
  });

  it('when close() is called while the server is frozen (SIGSTOP) and never answers the close: within about a second, not 30 s', async () => {
    const frozen = await spawnServer(['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0']);
    try {
      await assertExits(
        `const client = new RoomcastClient(${JSON.stringify(frozen.gatewayUrl)});
        ${PRINT_STATES}
        client.on('state', (s) => {
          if (s.state !== 'connected') return;
          process.kill(${frozen.proc.pid}, 'SIGSTOP');
          client.close();
        });`,
        ['connecting', 'connected', 'closed 1000'],
      );
    } finally {
      frozen.proc.kill('SIGCONT');
      await stopProcess(frozen);
    }
  });
});

describe('SDK against a scripted gateway', () => {
  for (const code of [4500, 4501, 4999]) {
    it(`never reconnects after a ${code} close (4500-4999 mean "do not reconnect")`, async () => {
      const gateway = await ScriptedGateway.start((ws) => setTimeout(() => ws.close(code, 'go away for good'), 20));
      const client = new RoomcastClient(gateway.url, { reconnect: FAST });
      try {
        const closed = await nextEvent(client, 'state', (s) => s.state === 'closed');
        assert.deepEqual(closed, { state: 'closed', code, reason: 'go away for good' });
        await sleep(400); // five times the largest backoff
        assert.equal(gateway.connections, 1);
        assert.equal(client.state, 'closed');
      } finally {
        client.close();
        await gateway.close();
      }
    });
  }

  /** How the scripted gateway ends the first connection, and the code the client sees. */
  const retried: { name: string; end(ws: WebSocket): void; code: number }[] = [
    { name: 'a 4499 close', end: (ws) => ws.close(4499, 'last retryable code'), code: 4499 },
    { name: 'a 3000 close (an application code outside 4000-4999)', end: (ws) => ws.close(3000, 'app code'), code: 3000 },
    { name: 'a dropped socket (1006)', end: (ws) => ws.terminate(), code: 1006 },
    // 5000 and above are not valid close codes: the client's ws rejects the frame and reports 1006, as browsers do
    { name: 'a close frame with code 5000', end: (ws) => (ws as unknown as { _socket: Socket })._socket.write(Buffer.from([0x88, 0x02, 0x13, 0x88])), code: 1006 },
  ];
  for (const { name, end, code } of retried) {
    it(`reconnects after ${name}`, async () => {
      const gateway = await ScriptedGateway.start((ws, index) => {
        if (index === 0) setTimeout(() => end(ws), 20);
      });
      const client = new RoomcastClient(gateway.url, { reconnect: FAST });
      try {
        const dropped = await nextEvent(client, 'state', (s) => s.state !== 'connecting' && s.state !== 'connected');
        assert.equal(dropped.state, 'reconnecting');
        assert.equal(dropped.code, code);
        const second = await nextEvent(client, 'state', (s) => s.state === 'connected' && s.wsId === 'ws-1');
        // this gateway keeps no history (no resume token): the new connection is a new session
        assert.equal(second.recovered, false);
        assert.equal(gateway.connections, 2);
      } finally {
        client.close();
        await gateway.close();
      }
    });
  }

  it('decides with 4500-4999 exactly: 4499 and 5000 are retried, 4500 and 4999 are not', () => {
    assert.deepEqual(
      [1000, 1006, 3999, 4000, 4499, 4500, 4999, 5000].map((code) => [code, isTerminalCloseCode(code)]),
      [[1000, false], [1006, false], [3999, false], [4000, false], [4499, false], [4500, true], [4999, true], [5000, false]],
    );
  });

  it('does reconnect after a 4000-4499 close, until the server keeps it, backing off further after each connection that did not stay up', async () => {
    const gateway = await ScriptedGateway.start((ws, index) => {
      // closed as soon as welcomed: a close after a timer could, on a loaded machine, come after maxDelayMs and reset the backoff
      if (index < 2) ws.close(4000 + index, 'try again');
    });
    // random 0.99: each delay is just under its ceiling, so the ceilings can be read from retryInMs
    const client = new RoomcastClient(gateway.url, { reconnect: FAST, random: () => 0.99 });
    const states = record(client, 'state');
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected' && s.wsId === 'ws-2');
      assert.deepEqual(
        states.map((s) => [s.state, s.code, s.retryInMs]),
        [
          ['connecting', undefined, undefined],
          ['connected', undefined, undefined],
          ['reconnecting', 4000, 19],
          ['connected', undefined, undefined],
          // the connection between did not last maxDelayMs (80): the backoff goes on to its next step
          ['reconnecting', 4001, 39],
          ['connected', undefined, undefined],
        ],
      );
      assert.equal(gateway.connections, 3);
    } finally {
      client.close();
      await gateway.close();
    }
  });

  it('retries a server that welcomes and closes at once ever more slowly, up to maxDelayMs, and starts over after a connection that stayed up', async () => {
    const closeAtOnce = [4000, 4001, 4003, 4029, 4000];
    const gateway = await ScriptedGateway.start((ws, index) => {
      if (index < closeAtOnce.length) ws.close(closeAtOnce[index], 'accepted, then closed');
      else if (index === closeAtOnce.length) setTimeout(() => ws.close(4000, 'stayed up a while'), FAST.maxDelayMs + 70);
      else if (index === closeAtOnce.length + 1) ws.close(4000, 'accepted, then closed');
    });
    const client = new RoomcastClient(gateway.url, { reconnect: FAST, random: () => 0.99 });
    const states = record(client, 'state');
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected' && s.wsId === `ws-${closeAtOnce.length + 2}`);
      const retries = states.filter((s) => s.state === 'reconnecting').map((s) => [s.code, s.retryInMs]);
      assert.deepEqual(retries, [
        // ceilings 20, 40, 80, then capped at 80
        [4000, 19],
        [4001, 39],
        [4003, 79],
        [4029, 79],
        [4000, 79],
        // this connection stayed up for longer than maxDelayMs: the backoff starts over
        [4000, 19],
        [4000, 39],
      ]);
    } finally {
      client.close();
      await gateway.close();
    }
  });

  it('drops a resume the server never answers after connectTimeoutMs, though pongs keep coming, and resumes again with the same token and positions', async () => {
    const resumes: { index: number; frame: unknown; at: number }[] = [];
    const gateway = await ScriptedGateway.start(
      (ws, index) => {
        ws.on('message', (data: Buffer) => {
          const frame = JSON.parse(data.toString()) as { op?: string; type?: number };
          if (frame.type === 1) ws.send('{"type":1,"data":"PONG"}');
          if (frame.op !== 'resume') return;
          resumes.push({ index, frame, at: performance.now() });
          // the first resume is never answered; the second one is
          if (index === 2) ws.send(JSON.stringify({ type: 0, op: 'resumed', wsId: 'ws-0', resume: 'token-2', recovered: true, streams: { '*': { seq: 5, epoch: 'e1' } } }));
        });
        if (index === 0) setTimeout(() => ws.close(4000, 'slow consumer'), 20);
      },
      { heartbeatMs: 150, welcome: (index) => ({ resume: `token-${index}`, epoch: 'e1', seq: 5 }) },
    );
    const client = new RoomcastClient(gateway.url, { reconnect: FAST, connectTimeoutMs: 400 });
    const states = record(client, 'state');
    try {
      const resumed = await nextEvent(client, 'state', (s) => s.state === 'connected' && s.recovered === true);
      assert.deepEqual(resumed, { state: 'connected', wsId: 'ws-0', recovered: true });
      assert.deepEqual(
        states.map((s) => [s.state, s.code, s.reason]),
        [
          ['connecting', undefined, undefined],
          ['connected', undefined, undefined],
          ['reconnecting', 4000, 'slow consumer'],
          ['reconnecting', 1006, 'no answer to the resume within 400 ms'],
          ['connected', undefined, undefined],
        ],
      );
      const sent = { op: 'resume', token: 'token-0', since: { '*': { seq: 5, epoch: 'e1' } } };
      assert.deepEqual(
        resumes.map((r) => [r.index, r.frame]),
        [
          [1, sent],
          [2, sent],
        ],
      );
      const waited = resumes[1].at - resumes[0].at;
      // the 400 ms timeout, a backoff of at most 80 ms and a new connection, with room for a loaded machine; a timer
      // left at the 5 s default timeoutMs or the 10 s default connectTimeoutMs still fails
      assert.ok(waited >= 400 && waited < 2500, `the second resume came ${waited} ms after the first`);
      assert.equal(gateway.sockets[1].readyState, gateway.sockets[1].CLOSED, 'the unanswered connection was dropped');
    } finally {
      client.close();
      await gateway.close();
    }
  });

  it('takes an error of any code answering its resume (bad_request here) as a refused resume: it goes on as the new connection', async () => {
    const resumes: number[] = [];
    const gateway = await ScriptedGateway.start(
      (ws, index) => {
        ws.on('message', (data: Buffer) => {
          if ((JSON.parse(data.toString()) as { op?: string }).op !== 'resume') return;
          resumes.push(index);
          ws.send(JSON.stringify({ type: 0, op: 'error', code: 'bad_request', message: 'since may name at most 1000 streams' }));
        });
        if (index === 0) setTimeout(() => ws.close(1001, 'restart'), 20);
      },
      { welcome: (index) => ({ resume: `token-${index}`, epoch: 'e1', seq: 5 }) },
    );
    const client = new RoomcastClient(gateway.url, { reconnect: FAST, connectTimeoutMs: 300 });
    const states = record(client, 'state');
    const errors = record(client, 'error');
    try {
      const fresh = await nextEvent(client, 'state', (s) => s.state === 'connected' && s.wsId === 'ws-1');
      assert.deepEqual(fresh, { state: 'connected', wsId: 'ws-1', recovered: false });
      assert.deepEqual(
        errors.map((e) => [(e as RoomcastError).code, e.message]),
        [['bad_request', 'since may name at most 1000 streams']],
      );
      await sleep(600); // twice connectTimeoutMs: the refused resume is not dropped and retried
      assert.equal(client.state, 'connected');
      assert.equal(client.wsId, 'ws-1');
      assert.equal(gateway.connections, 2);
      assert.deepEqual(resumes, [1]);
      assert.deepEqual(states.map((s) => s.state), ['connecting', 'connected', 'reconnecting', 'connected']);
    } finally {
      client.close();
      await gateway.close();
    }
  });

  it('rejects a join the server never answers with code timeout after timeoutMs', async () => {
    const gateway = await ScriptedGateway.start(() => undefined);
    const client = new RoomcastClient(gateway.url, { timeoutMs: 250 });
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      const started = performance.now();
      await assert.rejects(client.join('quiet'), (err: RoomcastError) => {
        assert.equal(err.code, 'timeout');
        assert.equal(err.message, 'join quiet: the server did not answer within 250 ms');
        return true;
      });
      const waited = performance.now() - started;
      // room for a loaded machine, and still half the 5 s a timer left at the default timeoutMs takes
      assert.ok(waited >= 245 && waited < 2500, `waited ${waited} ms`);
      // its first frame is a PING (it does not resume), then the join
      assert.deepEqual(gateway.received.map((t) => JSON.parse(t) as unknown), [
        { type: 1, data: 'PING' },
        { op: 'join', room: 'quiet', id: 1 },
      ]);
    } finally {
      client.close();
      await gateway.close();
    }
  });

  it('drops a server that stops answering its pings, and reconnects (1006)', async () => {
    const gateway = await ScriptedGateway.start(() => undefined, { heartbeatMs: 300 });
    const client = new RoomcastClient(gateway.url, { reconnect: FAST });
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      const dropped = await nextEvent(client, 'state', (s) => s.state === 'reconnecting', 2000);
      assert.equal(dropped.code, 1006);
      assert.equal(dropped.reason, 'the server sent nothing for 300 ms');
      const pings = gateway.received.filter((t) => t === '{"type":1,"data":"PING"}').length;
      assert.ok(pings >= 2, `sent ${pings} pings at a third of the heartbeat`);
      await nextEvent(client, 'state', (s) => s.state === 'connected' && s.wsId === 'ws-1');
    } finally {
      client.close();
      await gateway.close();
    }
  });

  it('retries a server that is not there yet, then connects when it comes up', async () => {
    const probe = await ScriptedGateway.start(() => undefined);
    const port = probe.port;
    await probe.close();
    const client = new RoomcastClient(`ws://127.0.0.1:${port}/connect`, { reconnect: FAST });
    const states = record(client, 'state');
    let gateway: ScriptedGateway | undefined;
    try {
      await nextEvent(client, 'state', (s) => s.state === 'reconnecting');
      await nextEvent(client, 'state', (s) => s.state === 'reconnecting');
      gateway = await ScriptedGateway.start(() => undefined, { port });
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      assert.equal(states[0].state, 'connecting');
      const retries = states.slice(1, -1);
      assert.ok(retries.length >= 2);
      for (const s of retries) {
        assert.equal(s.state, 'reconnecting');
        assert.equal(s.code, 1006);
        assert.ok(s.retryInMs !== undefined && s.retryInMs < FAST.maxDelayMs);
      }
    } finally {
      client.close();
      await gateway?.close();
    }
  });
});

describe('SDK with client auth', () => {
  // no clock tolerance: these tests time the server's close at a token's exp itself
  const server = serverPerSuite({ auth: 'required', jwtSecret: JWT_SECRET, jwtClockTolerance: 0 });

  it('setToken() renews a token before it expires, so the server keeps the connection; a token for another user is refused', async () => {
    const client = new RoomcastClient(server.gatewayUrl, { token: await signToken({ sub: 'sdk-user', expiresIn: 2 }) });
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      await client.setToken(await signToken({ sub: 'sdk-user', expiresIn: 60 }));
      await assert.rejects(client.setToken(await signToken({ sub: 'someone-else', expiresIn: 60 })), (err: RoomcastError) => {
        assert.equal(err.code, 'forbidden');
        return true;
      });
      const states = record(client, 'state');
      await sleep(3000);
      assert.deepEqual(states, [], 'no close at the first token expiry');
      assert.equal(client.state, 'connected');
      const uid = (await post(server.logicUrl, '/push/user', { uid: 'sdk-user', tag: 2, val: 'still here' })).body.data?.nodes;
      assert.equal(uid, 1);
    } finally {
      client.close();
    }
  });

  it('setToken() while the connection is being opened, with the token before: sends the new one once connected, so the server does not close it when the old one expires', async () => {
    const [expiring, renewed] = [await signToken({ sub: 'sdk-user', expiresIn: 2 }), await signToken({ sub: 'sdk-user', expiresIn: 600 })];
    const client = new RoomcastClient(server.gatewayUrl, { token: expiring, reconnect: FAST });
    const states = record(client, 'state');
    try {
      await Promise.resolve(); // the client opens its socket on a microtask, with the token it was given
      await client.setToken(renewed);
      assert.equal(client.state, 'connecting');
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      const life = await until('the server holds the new token', () => {
        const expiresAt = server.gateway.node.hub.conns.get(client.wsId!)?.identity?.expiresAt;
        return expiresAt !== undefined && expiresAt - Date.now() > 60_000 ? expiresAt - Date.now() : undefined;
      }, 5000); // a refresh later than the first token's expiry fails below: the server closes the connection (4001)
      assert.ok(life > 590_000, `${life} ms`);
      await sleep(2500); // past the first token's expiry
      assert.deepEqual(states.map((s) => s.state), ['connecting', 'connected']);
    } finally {
      client.close();
    }
  });

  it('getToken() is asked for a new token when the server expires the one it has (4001): the retry waits for it and resumes the session; a failed ask is an error event, and it asks again', async () => {
    const asked: number[] = [];
    const getToken = async (): Promise<string> => {
      // asked before exp, while connected (see sdk-refresh.test.ts): fail, so the server closes at exp (4001), the path under test here
      if (client.state === 'connected') throw new Error('not before exp');
      asked.push(Date.now());
      if (asked.length === 1) {
        // the first connection's own token is short-lived too: the next one is refused (4001) and asks again
        return signToken({ sub: 'sdk-user', expiresIn: -10 });
      }
      if (asked.length === 2) throw new Error('the token service is down');
      await sleep(300); // longer than the retry's backoff: the retry waits
      return signToken({ sub: 'sdk-user', expiresIn: 600 });
    };
    const client = new RoomcastClient(server.gatewayUrl, { token: await signToken({ sub: 'sdk-user', expiresIn: 2 }), getToken, reconnect: FAST });
    const states = record(client, 'state');
    const errors = record(client, 'error');
    try {
      const first = await nextEvent(client, 'state', (s) => s.state === 'connected');
      const resumed = await nextEvent(client, 'state', (s) => s.state === 'connected', 8000);
      assert.deepEqual(resumed, { state: 'connected', wsId: first.wsId, recovered: true });
      assert.deepEqual(
        states.map((s) => [s.state, s.code]),
        [
          ['connecting', undefined],
          ['connected', undefined],
          ['reconnecting', 4001],
          ['reconnecting', 4001], // the expired token getToken gave first
          ['reconnecting', 4001], // getToken failed: the retry went with the token before
          ['connected', undefined],
        ],
      );
      const [early, late] = [errors.filter((e) => e.message === 'not before exp'), errors.filter((e) => e.message !== 'not before exp')];
      assert.ok(early.length >= 1, 'getToken was asked before exp');
      assert.deepEqual(late.map((e) => e.message), ['the token service is down']);
      assert.equal(asked.length, 3);
      const life = (server.gateway.node.hub.conns.get(client.wsId!)!.identity!.expiresAt! - Date.now()) / 1000;
      assert.ok(life > 590, `the server holds the token getToken gave last: ${life} s`);
    } finally {
      client.close();
    }
  });

  it('getToken() that never answers: after connectTimeoutMs an error event, and the retry goes with the token before (no stall)', async () => {
    let asked = 0;
    const getToken = (): Promise<string> => {
      // the ask before exp, while connected (see sdk-refresh.test.ts), never answers either: it is not counted
      if (client.state !== 'connected') asked++;
      return new Promise<string>(() => undefined);
    };
    const client = new RoomcastClient(server.gatewayUrl, { token: await signToken({ sub: 'sdk-user', expiresIn: 1 }), getToken, reconnect: FAST, connectTimeoutMs: 500 });
    const states = record(client, 'state');
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      const error = await nextEvent(client, 'error', () => true, 5000);
      assert.ok(error instanceof RoomcastError, String(error));
      assert.deepEqual([error.code, error.message], ['timeout', 'getToken gave no token within 500 ms']);
      // the retry went with the expired token: refused (4001), which asks again
      await until('a second ask', () => (asked >= 2 ? true : undefined), 3000);
      assert.deepEqual(states.filter((s) => s.state === 'reconnecting').slice(0, 2).map((s) => s.code), [4001, 4001]);
    } finally {
      client.close();
    }
  });

  it('setToken() while the connection is being opened, with a token the server then refuses: an error event says so (setToken had resolved), and the connection keeps the token before', async () => {
    const client = new RoomcastClient(server.gatewayUrl, { token: await signToken({ sub: 'sdk-user', expiresIn: 600 }), reconnect: FAST });
    const errors = record(client, 'error');
    try {
      await Promise.resolve(); // the client opens its socket on a microtask, with the token it was given
      await client.setToken(await signToken({ sub: 'someone-else', expiresIn: 600 }));
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      const refused = await until('an error event', () => errors[0], 3000);
      assert.ok(refused instanceof RoomcastError);
      assert.equal(refused.code, 'forbidden');
      assert.equal(server.gateway.node.hub.conns.get(client.wsId!)!.identity!.uid, 'sdk-user');
    } finally {
      client.close();
    }
  });

  it('getToken() that rejects with something that is not an Error: the error event still carries an Error, naming it', async () => {
    const getToken = (): Promise<string> => Promise.reject('the token service said 503');
    const client = new RoomcastClient(server.gatewayUrl, { token: await signToken({ sub: 'sdk-user', expiresIn: -10 }), getToken, reconnect: FAST });
    try {
      const error = await nextEvent(client, 'error', () => true, 5000);
      assert.ok(error instanceof Error, `the error event carries ${typeof error} ${String(error)}`);
      assert.equal(error.message, 'getToken rejected with the token service said 503');
    } finally {
      client.close();
    }
  });

  it('rejects a getToken that is not a function', () => {
    assert.throws(() => new RoomcastClient(server.gatewayUrl, { getToken: 'token' as unknown as () => Promise<string> }), { name: 'TypeError', message: 'getToken must be a function' });
  });

  it('setToken() whose refresh the connection loses: the reconnect uses the new token; after a refused token, the one before', async () => {
    const client = new RoomcastClient(server.gatewayUrl, { token: await signToken({ sub: 'sdk-user', expiresIn: 100 }), reconnect: FAST });
    /** Seconds until the token the server holds for this connection expires. */
    const serverTokenLife = (): number => {
      const identity = server.gateway.node.hub.conns.get(client.wsId!)!.identity!;
      assert.equal(identity.uid, 'sdk-user');
      return Math.round((identity.expiresAt! - Date.now()) / 1000);
    };
    const dropConnection = (): void => server.gateway.node.hub.conns.get(client.wsId!)!.terminate();
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      assert.ok(Math.abs(serverTokenLife() - 100) <= 2, `${serverTokenLife()} s`);

      const reconnected = nextEvent(client, 'state', (s) => s.state === 'connected');
      const refresh = client.setToken(await signToken({ sub: 'sdk-user', expiresIn: 600 }));
      // the server's socket goes before it reads the refresh
      dropConnection();
      await assert.rejects(refresh, { code: 'disconnected' });
      await reconnected;
      assert.ok(Math.abs(serverTokenLife() - 600) <= 2, `the reconnect used the token of the lost refresh: ${serverTokenLife()} s`);

      await assert.rejects(client.setToken(await signToken({ sub: 'someone-else', expiresIn: 60 })), { code: 'forbidden' });
      const again = nextEvent(client, 'state', (s) => s.state === 'connected');
      dropConnection();
      await again;
      assert.ok(Math.abs(serverTokenLife() - 600) <= 2, `after a refused token, the reconnect used the one before: ${serverTokenLife()} s`);
    } finally {
      client.close();
    }
  });
});
