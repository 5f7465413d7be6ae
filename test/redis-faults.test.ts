/**
 * The Redis engine when Redis misbehaves, over real sockets on a real Redis:
 * Redis stopped (SIGSTOP) while pushes go on, one gateway cut off from Redis
 * while the others keep it, two deployments on two databases of one Redis,
 * and broker URLs that carry a password.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { createClient } from 'redis';
import { WebSocket } from 'ws';
import { freePort } from '../bench/local-redis.js';
import type { Broker } from '../src/broker/broker.js';
import { RedisBroker } from '../src/broker/redis/broker.js';
import { isPush, TestClient, type Frame } from './helpers/client.js';
import { nodeOf, startCluster, redisEngine, type EngineFactory, type TestCluster } from './helpers/cluster.js';
import { CutRelay } from './helpers/cut-relay.js';
import { RedisRelay } from './helpers/redis-relay.js';
import { call, post } from './helpers/http.js';
import { settled } from './helpers/pushes.js';
import { runCli, spawnRoomcast, stopProcess } from './helpers/process.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { assertResumed, member, resumeOn } from './helpers/resume.js';
import { startServer } from './helpers/server.js';
import { selfSignedCertificate } from './helpers/tls-cert.js';
import { stallFor, until, within } from './helpers/until.js';

/** The message of the last log line a failed start wrote. */
function startFailure(stdout: string): string {
  return (JSON.parse(stdout.trim().split('\n').at(-1)!) as { msg: string }).msg;
}

function tlsFiles(): { cert: Buffer; key: Buffer } {
  const { cert, key } = selfSignedCertificate();
  return { cert: readFileSync(cert), key: readFileSync(key) };
}

// one redis-server for the file; each cluster has its own key prefix
let redis: RedisServer;
before(async () => {
  if (skipWithoutRedis === false) redis = await RedisServer.start();
});
after(() => redis?.stop());

function pushToRoom(logicUrl: string, room: string, val: string): ReturnType<typeof post> {
  return post(logicUrl, '/push/room', { val, tag: 2, id: room });
}

/** The values of the pushes among the frames, in order. */
function pushedValues(frames: Frame[]): unknown[] {
  return frames.filter(isPush).map((f) => f.data);
}

/** Pings from each client every 2 s (their PONGs are not pushes), so none is closed for silence in a long test; returns what stops it. */
function keepAlive(clients: TestClient[]): () => void {
  const timer = setInterval(() => {
    for (const client of clients) if (client.ws.readyState === WebSocket.OPEN) client.send({ type: 1, data: 'PING' });
  }, 2000);
  return () => clearInterval(timer);
}

describe('Redis stopped (SIGSTOP) while pushes go on', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  it('pushes answer 503 within the deadline, and at once while Redis stays silent; none of them is delivered once it wakes; then pushes flow again, every 200 once and in order', async () => {
    const cluster = await startCluster(redisEngine(redis.url, { commandTimeoutMs: 1000 }), 2);
    const pid = Number(/process_id:(\d+)/.exec(String(await redis.command(['INFO', 'server'])))?.[1]);
    const members: TestClient[] = [];
    let stopped = false;
    let stopPinging = (): void => undefined;
    try {
      for (const node of [0, 1]) members.push((await member({ gatewayUrl: cluster.gatewayUrls[node], logicUrl: cluster.logicUrl }, ['r'])).client);
      stopPinging = keepAlive(members);
      for (const val of ['before-0', 'before-1']) assert.equal((await pushToRoom(cluster.logicUrl, 'r', val)).status, 200);

      process.kill(pid, 'SIGSTOP');
      stopped = true;
      const stoppedAt = Date.now();
      // within the deadline (1 s) and the wait for an answer past it (1 s), not once Redis wakes
      const during = await within(Promise.all([0, 1, 2].map((i) => pushToRoom(cluster.logicUrl, 'r', `during-${i}`))), 4000, 'pushes answered while Redis is stopped');
      assert.deepEqual(
        during.map((answer) => answer.status),
        [503, 503, 503],
      );
      assert.match(during[0].body.msg, /Redis/);
      await until('/readyz says 503', async () => ((await call(cluster.logicUrl, '/readyz')).status === 503 ? true : undefined), 3000);
      const askedAt = Date.now();
      const refused = await pushToRoom(cluster.logicUrl, 'r', 'during-silence');
      assert.equal(refused.status, 503);
      assert.match(refused.body.msg, /Redis has not answered/);
      assert.ok(Date.now() - askedAt < 1000, 'answered at once, without waiting for Redis');
      for (const client of members) assert.deepEqual(await client.ping(), { type: 1, data: 'PONG' });

      await sleep(5000 - (Date.now() - stoppedAt));
      process.kill(pid, 'SIGCONT');
      stopped = false;
      const accepted: string[] = [];
      await until(
        'a push accepted again',
        async () => {
          const val = `after-${accepted.length}-${Date.now()}`;
          const answer = await pushToRoom(cluster.logicUrl, 'r', val);
          return answer.status === 200 ? accepted.push(val) : undefined;
        },
        5000,
      );
      for (const [i, client] of members.entries()) {
        await client.collect(isPush, 3);
        await client.ping();
        assert.deepEqual(pushedValues(client.frames), ['before-0', 'before-1', ...accepted], `member on node ${i}`);
        assert.equal(client.ws.readyState, WebSocket.OPEN);
      }
    } finally {
      if (stopped) process.kill(pid, 'SIGCONT');
      stopPinging();
      await Promise.all(members.map((c) => c.closeAndWait()));
      await cluster.close();
    }
  });
});

/** Sends `request` on an open socket to `url`; resolves with the answer's status line once it arrives. */
async function rawRequestSender(url: string): Promise<(request: string) => Promise<string>> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  await within(once(socket, 'connect'), 20_000, `a TCP connection to ${url}`);
  return async (request) => {
    let answer = '';
    const statusLine = new Promise<string>((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        answer += chunk.toString();
        if (answer.includes('\r\n')) resolve(answer.slice(0, answer.indexOf('\r\n')));
      });
      socket.once('error', reject);
    });
    socket.write(request);
    return within(statusLine, 20_000, `the answer to ${request.split('\r\n')[0]}`).finally(() => socket.destroy());
  };
}

describe('this process stalled (GC, CPU) past a deadline while Redis answered in time', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  it('a push Redis ran before the stall resolves with its publication (not 503) and is delivered', async () => {
    const brokers: RedisBroker[] = [];
    // the push waits for its answer 300 ms + 1 s at most
    const cluster = await startCluster(redisEngine(redis.url, { commandTimeoutMs: 300 }, brokers), 1);
    const logicBroker = brokers.at(-1) as RedisBroker;
    const { client } = await member(nodeOf(cluster, 0), ['r']);
    try {
      // Redis then has the script: the push below is one round trip (not NOSCRIPT, then EVAL)
      await logicBroker.publish('r', { tag: 2, val: 'before-the-stall' });
      assert.equal((await client.next(isPush)).data, 'before-the-stall');
      const pushed = logicBroker.publish('r', { tag: 2, val: 'across-the-stall' });
      // the script goes out in a setImmediate publish queued; this one runs right after it, before its answer is read
      setImmediate(() => stallFor(2000));
      const publication = await pushed;
      assert.equal(publication.val, 'across-the-stall');
      assert.equal((await client.next(isPush)).data, 'across-the-stall');
    } finally {
      await client.closeAndWait();
      await cluster.close();
    }
  });

  it('a push read right after the stall, while the answer to a question of the time waits unread, is not refused as "Redis has not answered"', async () => {
    // Redis counts as not answering once a TIME has waited 1.5 s
    const brokers: RedisBroker[] = [];
    const relay = await RedisRelay.start(redis.port);
    const cluster = await startCluster(redisEngine(relay.url, { commandTimeoutMs: 1500 }, brokers), 1);
    const { client } = await member(nodeOf(cluster, 0), ['r']);
    const send = await rawRequestSender(cluster.logicUrl);
    // the logic API's command connection, which the push goes out on
    const logicCommands = `roomcast:commands:${(brokers.at(-1) as RedisBroker).processId}`;
    try {
      // Redis holds every command for 1 s, less than the 1.5 s: the TIME asked meanwhile (every 500 ms) waits, and is answered in time
      await redis.command(['CLIENT', 'PAUSE', '1000', 'ALL']);
      const time = relay.hold((name, text) => name === logicCommands && text.toUpperCase().includes('\r\nTIME\r\n'));
      await time.held;
      // held only until seen: it goes on to the paused Redis, and the stall below begins in this same tick, so the TIME waits through it
      time.release();
      const body = 'val=after-the-stall&tag=2&id=r';
      const answer = send(`POST /push/room HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      // the push is read before the TIME's answer, which arrives during the stall, when that TIME has waited more than 1.5 s by the clock
      stallFor(2200);
      assert.equal(await answer, 'HTTP/1.1 200 OK');
      assert.equal((await client.next(isPush)).data, 'after-the-stall');
    } finally {
      await client.closeAndWait();
      await cluster.close();
      await relay.close();
    }
  });
});

/** Like redisEngine, but the second broker asked for (gateway node 1) reaches Redis through `relay`. */
function engineWithNodeBehind(relay: CutRelay): EngineFactory {
  return async () => {
    const brokers: Broker[] = [];
    const prefix = `cut${Date.now()}${Math.random().toString(36).slice(2, 6)}:`;
    return {
      brokerFor: async () => {
        const url = brokers.length === 1 ? relay.url : redis.url;
        const broker = await RedisBroker.connect({ url, prefix }, pino({ level: 'silent' }));
        brokers.push(broker);
        return broker;
      },
      close: async () => {
        await Promise.all(brokers.map((b) => b.close()));
      },
    };
  };
}

describe('Redis that stops answering while a broker starts, after it accepted the connections', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  const holds: [string, (name: string, text: string) => boolean][] = [
    ['the SUBSCRIBE to its reply channel', (name, text) => name.includes('subscriber') && text.includes('\r\nsubscribe\r\n')],
    ['the first question of the time', (name, text) => name.includes('commands') && text.includes('\r\nTIME\r\n')],
  ];
  for (const [what, matches] of holds) {
    it(`held at ${what}: the start fails within the connect timeout, naming Redis`, async () => {
      const relay = await RedisRelay.start(redis.port);
      const hold = relay.hold(matches);
      try {
        const started = Date.now();
        const connecting = RedisBroker.connect({ url: relay.url, prefix: `stall${Date.now()}:`, connectTimeoutMs: 1000 }, pino({ level: 'silent' }));
        await hold.held;
        await assert.rejects(within(connecting, 5000, 'the start to fail'), /cannot reach Redis at 127\.0\.0\.1:\d+ within 1000 ms/);
        assert.ok(Date.now() - started < 3000, `failed after ${Date.now() - started} ms`);
      } finally {
        hold.release();
        await relay.close();
      }
    });
  }
});

describe('Redis that does not answer the scripts check while a broker starts', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  it('the start goes on, with a warning that says a user who may not run scripts would show as 503s', async () => {
    const relay = await RedisRelay.start(redis.port);
    const hold = relay.hold((name, text) => name.includes('commands') && text.toUpperCase().includes('\r\nEVALSHA\r\n'));
    const lines: { level: number; msg: string }[] = [];
    const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    let broker: RedisBroker | undefined;
    try {
      const connecting = RedisBroker.connect({ url: relay.url, prefix: `unchecked${Date.now()}:`, commandTimeoutMs: 500 }, log);
      await hold.held;
      broker = await within(connecting, 5000, 'the start to go on without the check');
      const warnings = lines.filter((l) => l.level === 40).map((l) => l.msg);
      assert.deepEqual(warnings, [
        'could not check that Redis lets roomcast run its Lua scripts (loading the scripts did not finish within 500 ms): starting anyway. ' +
          'The check and the scripts stay queued and still reach Redis before any later request; ' +
          'if this Redis user may not run scripts (EVALSHA, EVAL, SCRIPT LOAD), every push, join and session change will answer 503 until that is allowed',
      ]);
    } finally {
      hold.release();
      await broker?.close();
      await relay.close();
    }
  });
});

describe('Redis that does not answer while a gateway reads the shared resume secret', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  it('the read fails within the request deadline (a start fails instead of hanging), and succeeds once Redis answers', async () => {
    const relay = await RedisRelay.start(redis.port);
    let broker: RedisBroker | undefined;
    const hold = relay.hold((name, text) => name.includes('commands') && text.includes('resume-secret'));
    try {
      broker = await RedisBroker.connect({ url: relay.url, prefix: `secret${Date.now()}:`, commandTimeoutMs: 500 }, pino({ level: 'silent' }));
      const reading = broker.resumeSecret();
      await hold.held;
      await assert.rejects(within(reading, 5000, 'the read of the resume secret to fail'), { name: 'BrokerUnavailableError' });
      hold.release();
      assert.match(await within(broker.resumeSecret(), 5000, 'the read once Redis answers'), /^[\w-]{43}$/);
    } finally {
      hold.release();
      await broker?.close();
      await relay.close();
    }
  });
});

describe('one gateway cut off from Redis while the others keep it', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  let relay: CutRelay;
  let cluster: TestCluster;
  before(async () => {
    relay = await CutRelay.start(redis.port);
    cluster = await startCluster(engineWithNodeBehind(relay), 2);
  });
  after(async () => {
    await cluster?.close();
    await relay?.close();
  });

  it('commands by wsId answered 2xx meanwhile take effect once it is back: the joined member resumes into the room, the kicked one is closed with 4003, an untouched one stays and is found again', async () => {
    const node1 = { gatewayUrl: cluster.gatewayUrls[1], logicUrl: cluster.logicUrl };
    const joined = await member(node1, ['r']);
    const kicked = await member(node1, ['r']);
    const untouched = await member(node1, ['r']);
    const clients = [joined.client, kicked.client, untouched.client];
    const stopPinging = keepAlive(clients);
    try {
      relay.sever();
      // the logic finds no subscriber on the node's channel: it takes the node for dead, its sessions for away
      await until('the logic takes the cut-off node for dead', async () => ((await call(cluster.logicUrl, `/conns/${untouched.client.wsId}`)).body.data?.state === 'away' ? true : undefined));
      assert.equal((await post(cluster.logicUrl, '/room/join', { id: 'news', wsId: joined.client.wsId })).body.data?.changed, true);
      assert.equal((await post(cluster.logicUrl, '/room/leave', { id: 'r', wsId: joined.client.wsId })).body.data?.changed, true);
      assert.equal((await post(cluster.logicUrl, '/conn/kick', { wsId: kicked.client.wsId })).body.data?.kicked, true);
      const news = await pushToRoom(cluster.logicUrl, 'news', 'to news');
      const room = await pushToRoom(cluster.logicUrl, 'r', 'to r');
      assert.deepEqual([news.status, room.status], [200, 200]);

      relay.mend();
      assert.equal(await joined.client.closeCode(), 4005, 'the member whose session changed is told to resume');
      assert.equal(await kicked.client.closeCode(), 4003);

      const { client: again, frames, end } = await resumeOn(cluster.gatewayUrls[1], joined.client.welcome!.resume as string, joined.since);
      clients.push(again);
      // recovered:false: the session left r while away and keeps no record of where, and r had a push after the
      // client's since, which the resume cannot tell apart from one it should have replayed (REFERENCE §7)
      assertResumed(end, { wsId: joined.client.wsId, recovered: false });
      assert.ok(
        frames.some((f) => f.op === 'joined' && f.room === 'news'),
        JSON.stringify(frames),
      );
      assert.ok(
        frames.some((f) => f.op === 'left' && f.room === 'r'),
        JSON.stringify(frames),
      );
      assert.deepEqual(pushedValues(frames), ['to news']);
      assert.deepEqual((await call(cluster.logicUrl, `/conns/${joined.client.wsId}`)).body.data?.rooms, ['news']);

      // the untouched member kept its connection, got the push it missed from history, and is found on its node again
      assert.deepEqual((await untouched.client.collect(isPush, 1)).map((f) => f.data), ['to r']);
      await until('the untouched member is registered again', async () => ((await call(cluster.logicUrl, `/conns/${untouched.client.wsId}`)).body.data?.state === 'connected' ? true : undefined));
      assert.equal((await post(cluster.logicUrl, '/room/join', { id: 'later', wsId: untouched.client.wsId })).body.data?.changed, true);
      await untouched.client.next((f) => f.op === 'joined' && f.room === 'later');
      assert.equal(untouched.client.ws.readyState, WebSocket.OPEN);
    } finally {
      stopPinging();
      relay.mend();
      await Promise.all(clients.map((c) => c.closeAndWait()));
    }
  });
});

describe('two deployments on two databases of one Redis', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  it("do not hear each other: pushes on one reach none of the other's members, and each counts only its own gateways", async () => {
    const servers = [await startServer({ broker: `${redis.url}/1` }), await startServer({ broker: `${redis.url}/2` })];
    const members: TestClient[] = [];
    try {
      for (const server of servers) members.push((await member(server, ['r'])).client);
      assert.equal((await pushToRoom(servers[0].logicUrl, 'r', 'first')).status, 200);
      assert.equal((await post(servers[0].logicUrl, '/push/all', { val: 'first to all', tag: 2 })).status, 200);
      await members[0].collect(isPush, 2);
      // pub/sub channels are shared by every database: a publication the other deployment heard would reach it before this push to it
      await settled(servers[1].logicUrl, members[1]);
      assert.deepEqual(pushedValues(members[1].frames), []);
      assert.equal(members[1].ws.readyState, WebSocket.OPEN);
      for (const server of servers) {
        const stats = await call(server.logicUrl, '/stats');
        assert.equal(stats.body.data?.nodes, 1);
        assert.equal(stats.body.data?.connections, 1);
      }
    } finally {
      await Promise.all(members.map((c) => c.closeAndWait()));
      await Promise.all(servers.map((s) => s.close()));
    }
  });
});

describe('a broker URL with a password', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  const password = 'hunter2-do-not-print';

  it('is never repeated by a refusal of the URL, from the flag or from the environment', async () => {
    const refusals = [
      await runCli(['logic', '--port', '0', '--broker', `redis://:${password}@127.0.0.1:1:2`]),
      await runCli(['logic', '--port', '0'], { ROOMCAST_BROKER: `redis://user:${password}@127.0.0.1:1:2` }),
    ];
    for (const { code, stdout, stderr } of refusals) {
      assert.equal(code, 1);
      assert.match(stderr, /--broker must be memory or a redis:\/\/HOST:PORT URL, got "redis:\/\/(user)?:\*\*\*@127\.0\.0\.1:1:2"/);
      assert.ok(!(stdout + stderr).includes(password), stdout + stderr);
    }
    const path = await runCli(['gateway', '--port', '0', '--broker', `redis://:${password}@127.0.0.1:1/users`]);
    assert.equal(path.code, 1);
    assert.match(path.stderr, /--broker: the path of a redis:\/\/ URL is the database number \(redis:\/\/HOST:PORT\/2\), got "\/users"/);
    assert.ok(!path.stderr.includes(password));
  });

  it('a Redis that cannot be reached: the start fails naming why, without the password', async () => {
    const port = await freePort();
    const { code, stdout, stderr } = await runCli(['logic', '--host', '127.0.0.1', '--port', '0', '--broker', `redis://:${password}@127.0.0.1:${port}/3`], {}, undefined, 20_000);
    assert.equal(code, 1);
    assert.match(stdout, new RegExp(`could not start: cannot reach Redis at 127\\.0\\.0\\.1:${port} within 5000 ms: connect ECONNREFUSED`));
    assert.ok(!(stdout + stderr).includes(password));
  });

  it('a server at the URL that is not a plain Redis (an HTTP port, a TLS port named redis://): the start fails saying so, not "Socket closed unexpectedly"', async () => {
    const http = createHttpServer((_req, res) => res.end('not redis')).listen(0, '127.0.0.1');
    const tlsOnly = createTlsServer(tlsFiles(), (socket) => socket.end()).listen(0, '127.0.0.1');
    await Promise.all([once(http, 'listening'), once(tlsOnly, 'listening')]);
    try {
      const httpPort = (http.address() as AddressInfo).port;
      const tlsPort = (tlsOnly.address() as AddressInfo).port;
      const [notRedis, wantsTls] = await Promise.all([
        runCli(['logic', '--host', '127.0.0.1', '--port', '0', '--broker', `redis://127.0.0.1:${httpPort}`], {}, undefined, 20_000),
        runCli(['logic', '--host', '127.0.0.1', '--port', '0', '--broker', `redis://127.0.0.1:${tlsPort}`], {}, undefined, 20_000),
      ]);
      assert.equal(notRedis.code, 1);
      assert.match(startFailure(notRedis.stdout), new RegExp(`could not start: cannot reach Redis at 127\\.0\\.0\\.1:${httpPort} within 5000 ms: the server there does not answer as Redis does \\(its answer began with "H"\\): is 127\\.0\\.0\\.1:${httpPort} the port of a Redis server\\?`));
      assert.equal(wantsTls.code, 1);
      assert.match(
        startFailure(wantsTls.stdout),
        new RegExp(`could not start: cannot reach Redis at 127\\.0\\.0\\.1:${tlsPort} within 5000 ms: the server closed the connection without answering \\(Socket closed unexpectedly\\): is it a Redis server, and does it want TLS \\(rediss://\\)\\?`),
      );
    } finally {
      http.close();
      tlsOnly.close();
    }
  });
});

describe('a Redis ACL user that may not run scripts', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  const password = 'acl-secret-do-not-print';
  before(() => redis.command(['ACL', 'SETUSER', 'noscripts', 'on', `>${password}`, '~*', '&*', '+@all', '-@scripting']));
  after(() => redis?.command(['ACL', 'DELUSER', 'noscripts']));

  it('fails the start of logic and gateway processes with a message naming the missing permission (not a logic that says ready and answers every push 503)', async () => {
    const url = `redis://noscripts:${password}@127.0.0.1:${redis.port}`;
    const runs = await Promise.all(['logic', 'gateway'].map((command) => runCli([command, '--host', '127.0.0.1', '--port', '0', '--broker', url], {}, undefined, 20_000)));
    for (const { code, stdout, stderr } of runs) {
      assert.equal(code, 1, stdout + stderr);
      assert.equal(
        startFailure(stdout),
        'could not start: the Redis user "noscripts" may not run Lua scripts, which roomcast runs for every push, join and session change ' +
          "(Redis answered: NOPERM this user has no permissions to run the 'evalsha' command): allow EVALSHA, EVAL and SCRIPT LOAD, e.g. ACL SETUSER noscripts +evalsha +eval +script|load (or +@scripting)",
      );
      assert.ok(!(stdout + stderr).includes(password));
    }
  });

  it('with EVALSHA alone (no EVAL to load a script Redis does not hold) the start fails naming EVAL; without SCRIPT LOAD, naming it; with all three it starts', async () => {
    await redis.command(['SCRIPT', 'FLUSH']);
    await redis.command(['ACL', 'SETUSER', 'noscripts', '+evalsha']);
    const url = `redis://noscripts:${password}@127.0.0.1:${redis.port}`;
    const evalshaOnly = await runCli(['logic', '--host', '127.0.0.1', '--port', '0', '--broker', url], {}, undefined, 20_000);
    assert.equal(evalshaOnly.code, 1, evalshaOnly.stdout + evalshaOnly.stderr);
    assert.match(startFailure(evalshaOnly.stdout), /\(Redis answered: NOPERM this user has no permissions to run the 'eval' command\)/);
    await redis.command(['ACL', 'SETUSER', 'noscripts', '+eval']);
    const noScriptLoad = await runCli(['logic', '--host', '127.0.0.1', '--port', '0', '--broker', url], {}, undefined, 20_000);
    assert.equal(noScriptLoad.code, 1, noScriptLoad.stdout + noScriptLoad.stderr);
    assert.match(startFailure(noScriptLoad.stdout), /\(Redis answered: NOPERM this user has no permissions to run the 'script\|load' command\)/);
    await redis.command(['ACL', 'SETUSER', 'noscripts', '+script|load']);
    const logic = await spawnRoomcast('logic', ['--host', '127.0.0.1', '--port', '0', '--broker', url]);
    try {
      assert.equal((await call(logic.logicUrl, '/readyz')).status, 200);
      assert.equal((await post(logic.logicUrl, '/push/all', { val: 'allowed', tag: 2 })).status, 200);
    } finally {
      await stopProcess(logic);
    }
  });
});

describe('a Redis that evicts keys when it is full', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  let redis: RedisServer;
  before(async () => (redis = await RedisServer.start()));
  after(async () => redis?.kill());

  async function configure(maxmemory: string, policy: string): Promise<void> {
    const client = createClient({ url: redis.url });
    await client.connect();
    await client.configSet({ maxmemory, 'maxmemory-policy': policy });
    await client.close();
  }

  async function warnings(): Promise<string[]> {
    const logic = await spawnRoomcast('logic', ['--host', '127.0.0.1', '--port', '0', '--broker', redis.url]);
    await stopProcess(logic);
    return logic.lines.filter((line) => line.level === 40).map((line) => line.msg);
  }

  it('is named at the start (with maxmemory and a policy other than noeviction), as it drops registry entries and stream positions', async () => {
    await configure('100mb', 'volatile-lru');
    assert.deepEqual(await warnings(), [
      `Redis at 127.0.0.1:${redis.port} evicts keys when it reaches its maxmemory (104857600 bytes, maxmemory-policy volatile-lru): ` +
        'an evicted key loses a connection\'s registration (404 for a connected wsId) or a stream\'s seq and history; set maxmemory-policy noeviction (a full Redis then refuses pushes with 503)',
    ]);
    await configure('100mb', 'noeviction');
    assert.deepEqual(await warnings(), []);
    await configure('0', 'allkeys-lru');
    assert.deepEqual(await warnings(), []);
  });
});

describe('a node reply larger than Redis lets a subscriber hold (client-output-buffer-limit pubsub)', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  it('GET /rooms over 1,000 rooms of long ids answers them all, and Redis does not drop the asking process\'s subscriber', async () => {
    const small = await RedisServer.start();
    // the reply of the node's room counts (~110 KB) is over this hard limit: published, it would get the subscriber closed
    await small.command(['CONFIG', 'SET', 'client-output-buffer-limit', 'pubsub 32kb 16kb 60']);
    const server = await startServer({ broker: small.url, allowClientJoin: true, maxFramesPerSecond: 0 });
    const subscribers = async (): Promise<string[]> => String(await small.command(['CLIENT', 'LIST'])).split('\n').filter((line) => line.includes('name=roomcast:subscriber:')).map((line) => /id=(\d+)/.exec(line)?.[1] ?? '');
    const client = await TestClient.connect(server.gatewayUrl);
    try {
      const rooms = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(4, '0')}-${'x'.repeat(100)}`);
      for (const [i, room] of rooms.entries()) client.send({ op: 'join', room, id: i });
      await client.collect((f) => f.op === 'reply', rooms.length, 30_000);
      const before = await subscribers();
      // a page of all 1,000: the node's answer holds each of them with its count
      const listed = await call(server.logicUrl, '/rooms?limit=1000');
      assert.equal(listed.status, 200);
      assert.equal(listed.body.data?.total, 1000);
      assert.deepEqual((listed.body.data?.rooms as { room: string }[]).map((r) => r.room), rooms);
      assert.equal((await call(server.logicUrl, '/stats')).body.data?.rooms, 1000);
      assert.deepEqual(await subscribers(), before);
      assert.equal((await pushToRoom(server.logicUrl, rooms[999], 'still subscribed')).status, 200);
      assert.equal((await client.next(isPush)).data, 'still subscribed');
      assert.equal(client.ws.readyState, WebSocket.OPEN);
      assert.deepEqual(String(await small.command(['KEYS', 'roomcast:answer:*'])), '');
    } finally {
      await client.closeAndWait();
      await server.close();
      await small.stop();
    }
  });
});
