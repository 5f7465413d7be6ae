/**
 * What a hostile client, or anyone who can reach a port, can cost the server:
 * every abuse here is bounded by a limit, answered with an error naming it, and
 * leaves nothing behind (docs/SECURITY.md "What one client, or one address, can cost").
 */
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { maxHeaderSize } from 'node:http';
import { connect, type Socket } from 'node:net';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { TestClient, type Frame } from './helpers/client.js';
import { call, post } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { dropConnection, resumeOn } from './helpers/resume.js';
import { startServer, type TestServer } from './helpers/server.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';
import { collectGarbage } from './helpers/gc.js';
import { until, within } from './helpers/until.js';


async function heapUsed(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    collectGarbage();
    await sleep(20);
  }
  return process.memoryUsage().heapUsed;
}

interface Away {
  wsId: string;
  resume: string;
}

/** A client from `address` that the backend puts in `rooms`, then loses its network: its session stays away. */
async function awayFrom(server: TestServer, address: string, rooms: string[] = []): Promise<Away> {
  const client = await TestClient.connect(server.gatewayUrl, { localAddress: address });
  for (const room of rooms) assert.equal((await post(server.logicUrl, '/room/join', { id: room, wsId: client.wsId })).status, 200);
  await dropConnection(server, client);
  return { wsId: client.wsId, resume: client.welcome!.resume as string };
}

async function stateOf(server: TestServer, wsId: string): Promise<string> {
  const info = await call(server.logicUrl, `/conns/${wsId}`);
  return info.status === 404 ? 'gone' : String(info.body.data?.state);
}

async function statesOf(server: TestServer, sessions: Away[]): Promise<string[]> {
  return Promise.all(sessions.map((s) => stateOf(server, s.wsId)));
}

async function awaySessionsEnded(server: TestServer): Promise<number> {
  return ((await call(server.logicUrl, '/stats')).body.data?.limits as Record<string, number>).awaySessions;
}

describe('away sessions: clients that connect and drop', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ maxConnectionsPerIp: 3, maxConnections: 6, connectRatePerIp: 0 });
  });
  after(() => server.close());

  it('an address keeps at most --max-connections-per-ip of them: the oldest ends first, and resumes as recovered:false with no rooms', async () => {
    const sessions: Away[] = [];
    for (let i = 0; i < 5; i++) sessions.push(await awayFrom(server, '127.0.0.2', [`a${i}`]));
    const other = await awayFrom(server, '127.0.0.3', ['b']);
    await until('the two oldest sessions of 127.0.0.2 to end', async () => ((await statesOf(server, sessions.slice(0, 2))).every((s) => s === 'gone') ? true : undefined));
    assert.deepEqual(await statesOf(server, sessions), ['gone', 'gone', 'away', 'away', 'away']);
    assert.equal(await stateOf(server, other.wsId), 'away', "another address's session is not its to end");
    assert.equal(await awaySessionsEnded(server), 2);

    const { client, end } = await resumeOn(server.gatewayUrl, sessions[0].resume, {});
    assert.equal(end.op, 'resumed', JSON.stringify(end));
    assert.equal(end.wsId, sessions[0].wsId);
    assert.equal(end.recovered, false);
    assert.deepEqual(Object.keys(end.streams as object), ['*'], 'an ended session comes back with no rooms');
    await client.closeAndWait();
    // nothing left away for the next test (a kicked session still counts on its node until its window closes; ending it again ends nothing)
    await post(server.logicUrl, '/conn/kick', { wsId: other.wsId });
    for (const s of sessions.slice(2)) await post(server.logicUrl, '/conn/kick', { wsId: s.wsId });
  });

  it('a node keeps at most --max-connections of them, whatever their addresses: the oldest ends first', async () => {
    const before = await awaySessionsEnded(server);
    const sessions: Away[] = [];
    for (let i = 0; i < 8; i++) sessions.push(await awayFrom(server, `127.0.1.${i + 1}`, ['shared']));
    await until('the two oldest sessions to end', async () => ((await statesOf(server, sessions.slice(0, 2))).every((s) => s === 'gone') ? true : undefined));
    assert.deepEqual(await statesOf(server, sessions), ['gone', 'gone', 'away', 'away', 'away', 'away', 'away', 'away']);
    assert.equal((await awaySessionsEnded(server)) - before, 2);
    for (const s of sessions.slice(2)) await post(server.logicUrl, '/conn/kick', { wsId: s.wsId });
  });

  it('a session taken back in time is not ended for the ones after it; away again, it is the newest', async () => {
    const first = await awayFrom(server, '127.0.0.4', ['c']);
    const back = await TestClient.connect(server.gatewayUrl, { localAddress: '127.0.0.4', quiet: true });
    back.send({ op: 'resume', token: first.resume, since: {} });
    const end = await back.next((f) => f.op === 'resumed');
    assert.equal(end.wsId, first.wsId);
    const later = [await awayFrom(server, '127.0.0.4'), await awayFrom(server, '127.0.0.4'), await awayFrom(server, '127.0.0.4')];
    assert.equal(await stateOf(server, first.wsId), 'connected');
    assert.deepEqual(await statesOf(server, later), ['away', 'away', 'away']);

    await dropConnection(server, Object.assign(back, { wsId: first.wsId }));
    await until('the oldest of the later sessions to end', async () => ((await stateOf(server, later[0].wsId)) === 'gone' ? true : undefined));
    assert.deepEqual(await statesOf(server, [first, ...later]), ['away', 'gone', 'away', 'away']);
    for (const s of [first, ...later.slice(1)]) await post(server.logicUrl, '/conn/kick', { wsId: s.wsId });
  });
});

describe('memory a flood of dropped clients can hold', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ maxConnectionsPerIp: 50, connectRatePerIp: 0, maxFramesPerSecond: 0, allowClientJoin: true });
  });
  after(() => server.close());

  /** A client from 127.0.0.5 that joins `rooms` by itself, all in one socket write, and loses its network. */
  async function joinAndDrop(rooms: string[]): Promise<void> {
    const client = await TestClient.connect(server.gatewayUrl, { localAddress: '127.0.0.5' });
    for (const room of rooms) client.send({ op: 'join', room });
    await client.collect((f: Frame) => f.op === 'reply', rooms.length);
    client.ws.terminate();
    await client.closedWithin();
  }

  it('1,200 clients that join 50 rooms each and drop keep only the 50 newest sessions and their rooms', async (t) => {
    const baseline = await heapUsed();
    for (let i = 0; i < 1200; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, k) => joinAndDrop(Array.from({ length: 50 }, (_, r) => `flood-${i + k}-${r}`.padEnd(100, '.')))));
    }
    await sleep(2200); // the broker's sweep forgets the rooms no session is in any more
    const grown = (await heapUsed()) - baseline;
    t.diagnostic(`the heap grew by ${(grown / 1e6).toFixed(1)} MB`);
    // 1,200 sessions in 60,000 rooms took 25 MB; 50 in 2,500 take a few
    assert.ok(grown < 8e6, `the heap grew by ${(grown / 1e6).toFixed(1)} MB`);
    const stats = (await call(server.logicUrl, '/stats')).body.data!;
    assert.equal(stats.connections, 0);
    assert.equal((stats.limits as Record<string, number>).awaySessions, 1150);
  });

  it('rooms only joined and left are forgotten at the next sweep: 40,000 of them hold no memory, and a join after opens a new epoch', async (t) => {
    const client = await TestClient.connect(server.gatewayUrl);
    client.send({ op: 'join', room: 'brief' });
    const first = await client.next((f) => f.op === 'joined');
    client.send({ op: 'leave', room: 'brief' });
    await client.next((f) => f.op === 'left');
    const baseline = await heapUsed();
    for (let i = 0; i < 40; i++) {
      const rooms = Array.from({ length: 1000 }, (_, r) => `churn-${i}-${r}`.padEnd(100, '.'));
      for (const room of rooms) client.send({ op: 'join', room });
      for (const room of rooms) client.send({ op: 'leave', room });
      await client.collect((f) => f.op === 'reply', 2000, 30_000);
      client.frames.length = 0;
    }
    await sleep(2200);
    const grown = (await heapUsed()) - baseline;
    t.diagnostic(`the heap grew by ${(grown / 1e6).toFixed(1)} MB`);
    assert.ok(grown < 4e6, `the heap grew by ${(grown / 1e6).toFixed(1)} MB`);
    client.send({ op: 'join', room: 'brief' });
    const again = await client.next((f) => f.op === 'joined');
    assert.equal(again.seq, 0);
    assert.notEqual(again.epoch, first.epoch, 'the room was forgotten: nothing was pushed to it, nobody is in it');
    await client.closeAndWait();
  });
});

/** Opens a socket to `url`'s port and writes `text`; resolves with what came back once the server closed it, or 'still open' at `waitMs`. */
async function rawExchange(url: string, text: string, waitMs: number): Promise<{ answer: string; closedAfterMs: number | 'still open' }> {
  const { hostname, port } = new URL(url);
  const socket: Socket = connect({ host: hostname, port: Number(port) });
  socket.on('error', () => undefined);
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
  const started = Date.now();
  socket.write(text);
  const closed = await Promise.race([new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started))), sleep(waitMs, 'still open' as const)]);
  socket.destroy();
  return { answer, closedAfterMs: closed };
}

describe('the logic API to callers that hold sockets', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ apiKey: 'the-key' });
  });
  after(() => server.close());

  it('a request whose body or headers never finish is answered 408 within 10 s and closed', async () => {
    const [slowBody, slowHeaders] = await Promise.all([
      rawExchange(
        server.logicUrl,
        'POST /push/all HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer the-key\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nval=',
        15_000,
      ),
      rawExchange(server.logicUrl, 'POST /push/all HTTP/1.1\r\nHost: x\r\n', 15_000),
    ]);
    for (const { answer, closedAfterMs } of [slowBody, slowHeaders]) {
      assert.notEqual(closedAfterMs, 'still open');
      assert.ok((closedAfterMs as number) < 12_500, `closed after ${String(closedAfterMs)} ms`);
      assert.match(answer, /^HTTP\/1.1 408 /);
      assert.ok(answer.endsWith('{"code":408,"msg":"the request did not arrive within 10000 ms"}'), answer);
    }
  });

  it('a malformed request is answered 400 and its socket let go, even when the caller never closes its side', async () => {
    const connections = (): Promise<number> =>
      new Promise((resolve, reject) => server.logic.app.server.getConnections((err, count) => (err ? reject(err) : resolve(count))));
    const idle = await until('the earlier tests\' sockets gone', async () => ((await connections()) === 0 ? true : undefined));
    assert.ok(idle);
    const { hostname, port } = new URL(server.logicUrl);
    const socket: Socket = connect({ host: hostname, port: Number(port), allowHalfOpen: true });
    socket.on('error', () => undefined);
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    socket.write('GARBAGE\r\n\r\n');
    await until('the 400 answer', () => (answer.startsWith('HTTP/1.1 400 ') ? true : undefined), 5000);
    assert.equal(await connections(), 1);
    // our side stays open: the server must let its socket go by itself
    await until('the server letting the half-open socket go', async () => ((await connections()) === 0 ? true : undefined), 6000);
    socket.destroy();
  });

  it('a request line and headers over the HTTP limit get 431 naming the limit, as the gateway answers, not "malformed"', async () => {
    const { answer, closedAfterMs } = await rawExchange(server.logicUrl, `GET /rooms/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 5000);
    assert.match(answer, /^HTTP\/1.1 431 /);
    assert.ok(answer.endsWith(`{"code":431,"msg":"the request line and headers of the request are over ${maxHeaderSize} bytes"}`), answer);
    assert.notEqual(closedAfterMs, 'still open');
  });

  it('a caller without the key gets its answer and the connection is closed, also on the routes that need no key', async () => {
    const refused = await rawExchange(server.logicUrl, 'POST /push/all HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nval=', 3000);
    assert.match(refused.answer, /^HTTP\/1.1 401 /);
    assert.match(refused.answer, /connection: close/i);
    assert.notEqual(refused.closedAfterMs, 'still open', 'the rest of its body is not waited for');
    const health = await rawExchange(server.logicUrl, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 3000);
    assert.match(health.answer, /^HTTP\/1.1 200 /);
    assert.notEqual(health.closedAfterMs, 'still open', 'no keep-alive for a caller the API does not trust');
    const trusted = await rawExchange(server.logicUrl, 'GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer the-key\r\n\r\n', 1000);
    assert.match(trusted.answer, /^HTTP\/1.1 200 /);
    assert.equal(trusted.closedAfterMs, 'still open', 'the backend keeps its connection');
  });
});

describe('away sessions on Redis', { skip: skipWithoutRedis }, () => {
  let redis: RedisServer;
  let server: TestServer;
  before(async () => {
    redis = await RedisServer.start();
    server = await startServer({ broker: redis.url, maxConnectionsPerIp: 2, maxRoomsPerConnection: 3, connectRatePerIp: 0 });
  });
  after(async () => {
    await server?.close();
    await redis?.stop();
  });

  it('an address keeps at most --max-connections-per-ip: the oldest session is deleted from Redis', async () => {
    const sessions = [await awayFrom(server, '127.0.0.6', ['r1']), await awayFrom(server, '127.0.0.6', ['r2']), await awayFrom(server, '127.0.0.6', ['r3'])];
    await until('the oldest session to end', async () => ((await stateOf(server, sessions[0].wsId)) === 'gone' ? true : undefined));
    assert.deepEqual(await statesOf(server, sessions), ['gone', 'away', 'away']);
    assert.equal(await redis.command(['EXISTS', `roomcast:session:${sessions[0].wsId}`]), 0);
    assert.equal(await awaySessionsEnded(server), 1);
  });

  it('joins while away still count only rooms against the rooms limit', async () => {
    const away = await awayFrom(server, '127.0.0.7', ['x1']);
    assert.equal((await post(server.logicUrl, '/room/join', { id: 'x2', wsId: away.wsId })).status, 200);
    assert.equal((await post(server.logicUrl, '/room/join', { id: 'x3', wsId: away.wsId })).status, 200);
    const refused = await post(server.logicUrl, '/room/join', { id: 'x4', wsId: away.wsId });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.msg, 'the connection is in 3 rooms, the limit (--max-rooms-per-connection)');
  });
});

/** Timers and sockets of this process (the server's and the tests' own), by kind. */
function activeResources(): string {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) if (kind === 'Timeout' || kind === 'TCPSocketWrap') counts[kind] = (counts[kind] ?? 0) + 1;
  return JSON.stringify(counts);
}

describe('what connections leave behind once they are gone', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ auth: 'required', jwtSecret: JWT_SECRET, allowClientJoin: true, connectRatePerIp: 0 });
  });
  after(() => server.close());

  it('200 connections in each of seven states, dropped or refused midway, leave no timer or socket behind', async () => {
    // what earlier tests left to expire (sockets closing, lingering refusals) is gone once nothing changes for 3.5 s
    const baseline = await until('a settled process', async () => {
      const now = activeResources();
      await sleep(3500);
      return activeResources() === now ? now : undefined;
    }, 30_000);
    const token = await signToken({ sub: 'someone' });
    const url = server.gatewayUrl;
    const { hostname, port } = new URL(url);
    const states: Record<string, () => Promise<void>> = {
      async halfHandshake() {
        const socket = connect({ host: hostname, port: Number(port) });
        socket.on('error', () => undefined);
        await within(new Promise((resolve) => socket.once('connect', resolve)), 20_000, 'a TCP connection to the gateway');
        socket.write('GET /connect HTTP/1.1\r\nHost: x\r\n');
        await sleep(10);
        socket.destroy();
      },
      async welcomedThenDropped() {
        const client = await TestClient.connect(`${url}?token=${token}`, { quiet: true });
        client.ws.terminate();
      },
      async droppedBeforeAuth() {
        const client = await TestClient.open(url);
        client.ws.terminate();
      },
      async droppedWhileItsTokenIsChecked() {
        const client = await TestClient.open(url);
        client.send({ op: 'auth', token });
        client.ws.terminate();
      },
      async droppedWhileJoining() {
        const client = await TestClient.connect(`${url}?token=${token}`, { quiet: true });
        for (let i = 0; i < 20; i++) client.send({ op: 'join', room: `left-behind-${i}` });
        client.ws.terminate();
      },
      async droppedWhileResuming() {
        const first = await TestClient.connect(`${url}?token=${token}`);
        first.ws.terminate();
        const again = await TestClient.connect(`${url}?token=${token}`, { quiet: true });
        again.send({ op: 'resume', token: first.welcome!.resume, since: {} });
        again.ws.terminate();
      },
      async neverAnswersTheClose() {
        const raw = await RawClient.connect(url);
        raw.socket.removeAllListeners('data');
        for (let i = 0; i < 11; i++) raw.sendText('not json');
        await within(raw.ended, 20_000, 'the server to close a connection that never answers its close');
      },
    };
    for (const [name, drop] of Object.entries(states)) {
      for (let i = 0; i < 200; i += 50) await Promise.all(Array.from({ length: 50 }, () => drop().catch((err: unknown) => assert.fail(`${name}: ${String(err)}`))));
    }
    await until(() => `the timers and sockets of before (${baseline}); now ${activeResources()}`, () => (activeResources() === baseline ? true : undefined), 15_000);
    assert.equal(server.gateway.node.hub.conns.size, 0);
  });

  it('a connection gone before its bad token is judged leaves no close timer behind (the close that judgement starts finds no socket to wait for)', async () => {
    const wrongKeyToken = await signToken({ sub: 'someone' }, 'another-secret-of-at-least-32-bytes!!');
    // the gateway's close grace (3 s): a timer of that length started for a socket already gone would hold the connection 3 s
    const alive = new Set<number>();
    const hook = createHook({
      init: (id, type, _trigger, resource) => {
        if (type === 'Timeout' && (resource as { _idleTimeout?: number })._idleTimeout === 3000) alive.add(id);
      },
      destroy: (id) => void alive.delete(id),
    }).enable();
    const authFailures = async (): Promise<number> => ((await call(server.logicUrl, '/stats')).body.data?.auth as { failures: number }).failures;
    const failuresBefore = await authFailures();
    try {
      const drops = Array.from({ length: 50 }, async () => {
        const client = await TestClient.open(server.gatewayUrl);
        client.send({ op: 'auth', token: wrongKeyToken });
        client.ws.terminate();
      });
      await Promise.all(drops);
      await until('the gateway to let every connection go', () => (server.gateway.node.hub.conns.size === 0 ? true : undefined));
      // every verification has refused its token (and closed what was left of its connection), and no close grace has run out
      await until('the 50 tokens refused', async () => ((await authFailures()) - failuresBefore === 50 ? true : undefined));
      await nextTurn();
      assert.equal(alive.size, 0, `${alive.size} close timers of connections already gone`);
    } finally {
      hook.disable();
    }
  });
});
