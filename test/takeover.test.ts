/**
 * Who holds a session while it is resumed. A resume takes over a session whose
 * old connection is still open (half-open), on its node or another; concurrent
 * resumes of one token leave one connection holding it; a resume that cannot be
 * decided now (Redis down, the holding node silent) is closed with 1013 and
 * retried, by the SDK, with the same token; a node never takes back a wsId
 * another node holds.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import { WebSocket, WebSocketServer } from 'ws';
import { RoomcastClient, type Message, type StateChange } from '../client/node.js';
import { TestClient, isPush } from './helpers/client.js';
import { memoryEngine, nodeOf, redisEngine, startCluster, type EngineFactory, type TestCluster } from './helpers/cluster.js';
import { call, post } from './helpers/http.js';
import { processClusterPerSuite, type ServerProcess } from './helpers/process.js';
import { pushInTurn, settled } from './helpers/pushes.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { Relay } from './helpers/relay.js';
import { assertResumed, awayMember, member, resumeEnd, resumeOn, type Position } from './helpers/resume.js';
import { nextEvent, record } from './helpers/sdk.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';
import { until, untilLength, within } from './helpers/until.js';

const TAKEN = { code: 4500, reason: 'session resumed by another connection' };

/**
 * Sends one resume of the same session on a new connection to each URL at
 * once. Every one must be answered; in the end exactly one connection holds
 * the session (the others got bad_resume and went on as themselves, or were
 * taken over with 4500), the room lists it once, and only it gets its pushes.
 */
async function raceResumes(cluster: TestCluster, urls: string[], session: { wsId: string; token: string; since: Record<string, Position> }, room: string): Promise<void> {
  const clients = await Promise.all(urls.map((url) => TestClient.connect(url, { quiet: true })));
  const ends = await Promise.all(clients.map((c) => resumeEnd(c, session.token, session.since)));
  const outcome = (): string => JSON.stringify(ends.map((e, i) => ({ ...(e.frame ?? e.closed), open: clients[i].ws.readyState === WebSocket.OPEN })));
  for (const end of ends) assert.ok(end.frame !== undefined, `every resume is answered: ${outcome()}`);
  const holds = (c: TestClient, i: number): boolean => ends[i].frame?.op === 'resumed' && c.ws.readyState === WebSocket.OPEN;
  for (let i = 0; i < 100 && clients.filter(holds).length > 1; i++) await sleep(20);
  const holders = clients.filter(holds);
  assert.equal(holders.length, 1, `one connection holds the session: ${outcome()}`);
  for (const [i, c] of clients.entries()) {
    if (c === holders[0]) continue;
    const end = ends[i].frame!;
    if (end.op === 'resumed') {
      assert.deepEqual(await c.closedWithin(), TAKEN);
    } else {
      assert.equal(end.code, 'bad_resume', outcome());
      assert.match(String(end.message), /being resumed by another connection/);
      assert.equal((await call(cluster.logicUrl, `/conns/${c.wsId}`)).body.data?.state, 'connected', 'the loser goes on as its new wsId');
    }
  }
  assert.deepEqual((await call(cluster.logicUrl, `/rooms/${room}`)).body.data?.wsIds, [session.wsId]);
  const live = await post(cluster.logicUrl, '/push/room', { val: 'after the race', tag: 2, id: room });
  assert.equal((await holders[0].next((f) => f.data === 'after the race')).seq, live.body.data?.seq);
  // the losers still open go on as their new wsIds: once a push to one has reached it, the room's push would have too
  const openLosers = clients.filter((c) => c !== holders[0] && c.ws.readyState === WebSocket.OPEN);
  for (const c of openLosers) await settled(cluster.logicUrl, c);
  for (const c of clients) if (c !== holders[0]) assert.equal(c.frames.filter((f) => f.data === 'after the race').length, 0);
  await Promise.all(clients.map((c) => c.closeAndWait()));
}

function takeover(name: string, engine: () => EngineFactory, skip: string | false = false): void {
  describe(`session takeover: ${name}`, { skip }, () => {
    let cluster: TestCluster;
    before(async () => {
      cluster = await startCluster(engine());
    });
    after(() => cluster.close());

    for (const [to, where] of [
      [1, 'on another node'],
      [0, 'on the same node'],
    ] as const) {
      it(`${where}: the open connection is closed with 4500; the new one gets its rooms and every push since its seqs, once, in order`, async () => {
        const room = `taken-${to}`;
        const { client: old, since } = await member(nodeOf(cluster, 0), [room]);
        const sent = (await pushInTurn(cluster.logicUrl, room, 30, 3)).vals;
        // the old connection is still live: it got them too, but the client resumes from where it last read
        await old.collect(isPush, 30);
        const takenBefore = (await call(cluster.logicUrl, '/stats')).body.data?.sessionTakenCloses as number;
        const { client: again, frames, end } = await resumeOn(cluster.gatewayUrls[to], old.welcome!.resume as string, since);
        assertResumed(end, { wsId: old.wsId, recovered: true });
        assert.deepEqual(
          frames.filter(isPush).map((f) => f.data),
          sent,
        );
        assert.deepEqual(await within(old.closed, 5000, 'the old connection closed'), TAKEN);
        assert.equal((await call(cluster.logicUrl, '/stats')).body.data?.sessionTakenCloses, takenBefore + 1, 'the 4500 close is counted');

        const info = await call(cluster.logicUrl, `/conns/${old.wsId}`);
        assert.equal(info.body.data?.state, 'connected');
        assert.equal(info.body.data?.node, cluster.gateways[to].node.nodeId);
        assert.deepEqual(info.body.data?.rooms, [room]);
        assert.deepEqual((await call(cluster.logicUrl, `/rooms/${room}`)).body.data?.wsIds, [old.wsId]);
        const live = await post(cluster.logicUrl, '/push/room', { val: 'live', tag: 3, id: room });
        assert.deepEqual(await again.next(isPush), { type: 3, data: 'live', room, seq: live.body.data?.seq });
        await again.closeAndWait();
      });
    }

    it('two resumes of one token at once, one on each node', async () => {
      const { client: old, since } = await awayMember(nodeOf(cluster, 0), ['race-two']);
      await raceResumes(cluster, cluster.gatewayUrls, { wsId: old.wsId, token: old.welcome!.resume as string, since }, 'race-two');
    });

    it('two resumes of one token at once on one node', async () => {
      const { client: old, since } = await awayMember(nodeOf(cluster, 1), ['race-one']);
      await raceResumes(cluster, [cluster.gatewayUrls[1], cluster.gatewayUrls[1]], { wsId: old.wsId, token: old.welcome!.resume as string, since }, 'race-one');
    });
  });

  describe(`session takeover with client auth: ${name}`, { skip }, () => {
    let cluster: TestCluster;
    before(async () => {
      cluster = await startCluster(engine(), 2, { auth: 'required', jwtSecret: JWT_SECRET });
    });
    after(() => cluster.close());

    it("another user's token does not take over a live session, on either node; the owner's own token does", async () => {
      const owner = await TestClient.connect(`${cluster.gatewayUrls[0]}?token=${await signToken({ sub: 'henry' })}`);
      const token = owner.welcome!.resume as string;
      for (const url of cluster.gatewayUrls) {
        const { client: thief, end } = await resumeOn(`${url}?token=${await signToken({ sub: 'ivan' })}`, token, {});
        assert.equal(end.code, 'bad_resume');
        assert.match(String(end.message), /forged, foreign or expired/);
        await thief.closeAndWait();
      }
      assert.deepEqual(await owner.ping(), { type: 1, data: 'PONG' });
      const { client: again, end } = await resumeOn(`${cluster.gatewayUrls[1]}?token=${await signToken({ sub: 'henry' })}`, token, {});
      assertResumed(end);
      assert.deepEqual(await owner.closedWithin(), TAKEN);
      await again.closeAndWait();
    });
  });

  describe(`session takeover within --max-connections-per-user 1: ${name}`, { skip }, () => {
    let cluster: TestCluster;
    before(async () => {
      cluster = await startCluster(engine(), 2, { auth: 'required', jwtSecret: JWT_SECRET, maxConnectionsPerUser: 1, connectRatePerIp: 0 });
    });
    after(() => cluster.close());

    it("a resume on another node counts there once, and the node it left lets the user's slot go", async () => {
      const url = async (node: number): Promise<string> => `${cluster.gatewayUrls[node]}?token=${await signToken({ sub: 'judy' })}`;
      const refusedOn = async (node: number): Promise<number | undefined> => (await TestClient.open(await url(node)).then(
        (c) => c.closeAndWait().then(() => undefined),
        (err: Error) => Number(/handshake answered (\d+)/.exec(err.message)?.[1]),
      ));
      const owner = await TestClient.connect(await url(0));
      assert.equal(await refusedOn(0), 429, "judy holds node 0's one slot");
      const { client: moved, end } = await resumeOn(await url(1), owner.welcome!.resume as string, {});
      assertResumed(end, { wsId: owner.wsId });
      assert.deepEqual(await owner.closedWithin(), TAKEN);
      assert.equal(await refusedOn(1), 429, 'the resumed connection holds node 1\'s slot, once');
      const back = await until('node 0 to let judy in again', async () => TestClient.connect(await url(0)));
      assert.equal(await refusedOn(0), 429);
      await Promise.all([moved, back].map((c) => c.closeAndWait()));
    });
  });
}

let redis: RedisServer | undefined;
before(async () => {
  if (skipWithoutRedis === false) redis = await RedisServer.start();
});
after(async () => {
  await redis?.stop();
});

takeover('memory', () => memoryEngine);
takeover('redis', () => redisEngine(redis!.url), skipWithoutRedis);

describe('the registry on Redis names one node per wsId', { skip: skipWithoutRedis }, () => {
  let cluster: TestCluster;
  let store: ReturnType<typeof createClient>;
  before(async () => {
    // entries refreshed every 200 ms
    cluster = await startCluster(redisEngine(redis!.url, { registryTtlMs: 600 }));
    store = createClient({ url: redis!.url });
    await store.connect();
  });
  after(async () => {
    await store.close();
    await cluster.close();
  });

  /** The registry entry and session hash of a wsId, under the cluster's prefix. */
  async function keysOf(wsId: string): Promise<{ conn: string; session: string }> {
    const [conn] = await store.keys(`*conn:${wsId}`);
    return { conn, session: `${conn.slice(0, -`conn:${wsId}`.length)}session:${wsId}` };
  }

  it('a node whose entry names another node (it took the session while this one was frozen) closes its connection with 4500 and leaves entry and session alone', async () => {
    const { client } = await member(nodeOf(cluster, 0), ['moved']);
    const keys = await keysOf(client.wsId);
    await store.set(keys.conn, 'another-node', { PX: 60_000 });
    assert.deepEqual(await within(client.closed, 3000, 'the connection closed'), TAKEN);
    await sleep(400);
    assert.equal(await store.get(keys.conn), 'another-node');
    assert.deepEqual(await store.hGetAll(keys.session), { '#uid': '', '#rooms-limit': '1000', moved: '' });
  });

  it("a connection that closes after its session moved leaves the new holder's session alone", async () => {
    const { client } = await member(nodeOf(cluster, 1), ['moved-away']);
    const keys = await keysOf(client.wsId);
    await store.set(keys.conn, 'another-node', { PX: 60_000 });
    // a close by the client ends its session, but this session is not this node's any more
    await client.closeAndWait();
    await sleep(400);
    assert.equal(await store.get(keys.conn), 'another-node');
    assert.deepEqual(await store.hGetAll(keys.session), { '#uid': '', '#rooms-limit': '1000', 'moved-away': '' });
  });
});

describe('a resume while Redis is down', { skip: skipWithoutRedis }, () => {
  it('is closed with 1013 (try again later), not refused: the session is left for the retry', async () => {
    const own = await RedisServer.start();
    const cluster = await startCluster(redisEngine(own.url));
    try {
      const { client, since } = await awayMember(nodeOf(cluster, 0), ['outage']);
      await own.kill();
      const again = await TestClient.connect(cluster.gatewayUrls[1], { quiet: true });
      const end = await resumeEnd(again, client.welcome!.resume as string, since);
      assert.equal(end.closed?.code, 1013, JSON.stringify(end));
      assert.match(end.closed.reason, /^cannot resume now: Redis is unavailable/);
      assert.equal(cluster.gateways[1].node.counters.resumeRetryCloses, 1, 'the 1013 close is counted');
    } finally {
      await own.restart();
      await cluster.close();
      await own.stop();
    }
  });
});

describe('the SDK after a 1013 close of its resume', () => {
  it('resumes again with the same token and positions, and its backoff keeps growing until it is connected', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const resumes: unknown[] = [];
    let connections = 0;
    wss.on('connection', (ws) => {
      const n = connections++;
      ws.send(JSON.stringify({ type: 0, op: 'welcome', wsId: `ws-${n}`, heartbeat: 10_000, resume: `token-${n}`, epoch: 'E', seq: 0 }));
      ws.on('message', (data: Buffer) => {
        const frame = JSON.parse(data.toString()) as { op?: string };
        if (n === 0) {
          // the first connection gets one push, then its network drops
          ws.send(JSON.stringify({ type: 2, data: 'before', seq: 1 }));
          setTimeout(() => ws.terminate(), 20);
        } else if (frame.op === 'resume') {
          resumes.push(frame);
          if (n < 3) ws.close(1013, 'cannot resume now: Redis is unavailable');
          else ws.send(JSON.stringify({ type: 0, op: 'resumed', wsId: 'ws-0', resume: 'token-0b', recovered: true, streams: { '*': { seq: 1, epoch: 'E' } } }));
        }
      });
    });
    const port = (wss.address() as { port: number }).port;
    const client = new RoomcastClient(`ws://127.0.0.1:${port}/connect`, { reconnect: { initialDelayMs: 20, maxDelayMs: 1000, factor: 2 }, random: () => 0.99 });
    const states = record(client, 'state');
    try {
      const back = await until('connected as ws-0 again', () => states.find((s) => s.state === 'connected' && s.recovered !== undefined), 5000);
      assert.deepEqual(back, { state: 'connected', wsId: 'ws-0', recovered: true });
      const same = { op: 'resume', token: 'token-0', since: { '*': { seq: 1, epoch: 'E' } } };
      assert.deepEqual(resumes, [same, same, same]);
      assert.deepEqual(
        states.filter((s) => s.state === 'reconnecting').map((s) => [s.code, s.retryInMs]),
        [
          [1006, 19],
          [1013, 39],
          [1013, 79],
        ],
      );
    } finally {
      client.close();
      await new Promise((resolve) => wss.close(resolve));
    }
  });
});

/** An SDK client reaching the second gateway through a relay (which can move it to the first, or cut it), with what it records. */
async function sdkBehindRelay(nodes: { gateways: ServerProcess[]; logic: ServerProcess }) {
  const { gateways, logic } = nodes;
  const portOf = (g: ServerProcess): number => Number(new URL(g.gatewayUrl).port);
  const relay = await Relay.start(portOf(gateways[1]));
  const client = new RoomcastClient(relay.url, { reconnect: { initialDelayMs: 50, maxDelayMs: 300, factor: 2 } });
  const states: StateChange[] = record(client, 'state');
  const messages: Message[] = record(client, 'message');
  return { logic, gateways, portOf, relay, client, states, messages, frozen: gateways[1].proc };
}

describe('a resume while the node holding the session is frozen (real processes on Redis)', { skip: skipWithoutRedis, timeout: 60_000 }, () => {
  const nodes = processClusterPerSuite();

  it('is closed with 1013 while it is frozen; the SDK retries with the same token and, once the node is back, takes the session over with every push', async () => {
    const { logic, gateways, portOf, relay, client, states, messages, frozen } = await sdkBehindRelay(nodes);
    try {
      const wsId = (await nextEvent(client, 'state', (s) => s.state === 'connected')).wsId!;
      assert.equal((await post(logic.logicUrl, '/room/join', { id: 'frozen', wsId })).status, 200);
      await until('joined', () => (client.rooms.has('frozen') ? true : undefined), 5000);
      const sent = (await pushInTurn(logic.logicUrl, 'frozen', 6, 3)).vals;
      await untilLength('messages', messages, 6);

      // the node holding the connection stops answering; the client's network drops; it reconnects to the other node
      frozen.kill('SIGSTOP');
      relay.moveTo(portOf(gateways[0]));
      relay.cut();
      sent.push(...(await pushInTurn(logic.logicUrl, 'frozen', 6, 3, 'missed:')).vals);
      const retry = await until('a 1013 close', () => states.find((s) => s.state === 'reconnecting' && s.code === 1013), 10_000);
      assert.match(retry.reason ?? '', /^cannot resume now: the node holding the session did not answer within 1000 ms/);
      frozen.kill('SIGCONT');

      const resumed = await until('connected again', () => states.slice(states.indexOf(retry)).find((s) => s.state === 'connected'), 15_000);
      assert.deepEqual(resumed, { state: 'connected', wsId, recovered: true });
      await untilLength('messages', messages, 12);
      assert.deepEqual(
        messages.map((m) => m.data),
        sent,
      );
      assert.ok(!states.some((s) => s.state === 'closed'), JSON.stringify(states));
      assert.ok(relay.closeCodesAfterCut().includes(4500), `the old connection was closed with 4500: ${JSON.stringify(relay.closeCodesAfterCut())}`);
      assert.deepEqual((await call(logic.logicUrl, '/rooms/frozen')).body.data?.wsIds, [wsId]);
      const live = (await post(logic.logicUrl, '/push/room', { id: 'frozen', tag: 2, val: 'live' })).body.data?.seq;
      await untilLength('messages', messages, 13);
      assert.deepEqual(messages[12], { tag: 2, data: 'live', room: 'frozen', seq: live });
    } finally {
      frozen.kill('SIGCONT');
      client.close();
      await relay.close();
    }
  });

  it('holds every live frame of a resume waiting for the frozen node, even past the 64 KiB a newcomer holds: none reaches the client before the replay, none is lost', async () => {
    const { logic, gateways, portOf, relay, client, states, messages, frozen } = await sdkBehindRelay(nodes);
    const pushToAll = async (val: string): Promise<void> => {
      const answer = await post(logic.logicUrl, '/push/all', { val, tag: 2 });
      assert.equal(answer.status, 200, answer.text);
    };
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      const sent = ['before'];
      await pushToAll('before');
      await untilLength('messages', messages, 1);

      frozen.kill('SIGSTOP');
      relay.moveTo(portOf(gateways[0]));
      relay.cut();
      // 120 KB of pushes to all while the resume waits for the frozen node
      for (let i = 0; i < 120; i++) {
        const val = `flood:${i}:${'x'.repeat(1000)}`;
        await pushToAll(val);
        sent.push(val);
      }
      await until('a 1013 close', () => states.find((s) => s.state === 'reconnecting' && s.code === 1013), 10_000);
      frozen.kill('SIGCONT');
      const resumed = await until('connected again', () => states.find((s) => s.state === 'connected' && s.recovered !== undefined), 15_000);
      assert.equal(resumed.recovered, true, JSON.stringify(states));
      // a push after them all marks the end: anything lost, twice or out of order shows before it
      await pushToAll('marker');
      sent.push('marker');
      await untilLength('messages', messages, sent.length);
      assert.deepEqual(
        messages.map((m) => m.data),
        sent,
      );
    } finally {
      frozen.kill('SIGCONT');
      client.close();
      await relay.close();
    }
  });
});
