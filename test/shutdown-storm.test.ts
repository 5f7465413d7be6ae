/**
 * SIGTERM in the middle of a reconnect storm, on real processes: a thousand
 * clients drop at once, all reconnect and resume at once while pushes go on,
 * and the server is told to stop while the resumes are in flight. It must stop
 * as REFERENCE.md §4 says (stop accepting, close every client with 1001, exit 0
 * within 5 s) without a crash or an error line, and on Redis no session may be lost.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, post } from './helpers/http.js';
import { exitOrKill, spawnRoomcast, spawnServer, stopProcess, type ServerProcess } from './helpers/process.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { connectMembers, dropAll, pushWhileStorming, resumeAll, type StormAttempt, type StormSession } from './helpers/storm.js';
import { until, within } from './helpers/until.js';

const CLIENTS = 1000;
const ROOMS = Array.from({ length: 10 }, (_, i) => `storm-${i}`);
/** Pushes per phase: with ten rooms, well inside the 1,000 publications a stream's history keeps. */
const PUSH_LIMIT = 400;
/** SIGTERM goes out once this many connections of the storm are welcomed: the rest are opening, or sending their resumes. */
const WELCOMED_AT_SIGNAL = 100;
/** Every client comes from 127.0.0.1: the per-address limits would refuse most of the storm. */
const GATEWAY_FLAGS = ['--allow-client-join', '--connect-rate-per-ip', '0', '--max-connections-per-ip', '0'];

/** Kills `server` (SIGKILL: whatever state a failed test left it in) and waits for its exit. */
async function killed(server: ServerProcess): Promise<void> {
  server.proc.kill('SIGKILL');
  await server.exited;
}

/**
 * Starts the storm and sends SIGTERM to `server` from the frame handler of the `WELCOMED_AT_SIGNAL`-th welcome,
 * so most of the storm is still in flight however fast it runs; resolves with when it was sent.
 */
function stormThenStop(server: ServerProcess, sessions: StormSession[]): { storm: ReturnType<typeof resumeAll>; signalled: Promise<number> } {
  let signal!: (at: number) => void;
  const signalled = new Promise<number>((resolve) => (signal = resolve));
  const storm = resumeAll(server.gatewayUrl, sessions, (count) => {
    if (count !== WELCOMED_AT_SIGNAL) return;
    server.proc.kill('SIGTERM');
    signal(performance.now());
  });
  return { storm, signalled };
}

/** Resumes the signal cut short: connections that ended without their `resumed` frame. */
function cutShort(attempts: StormAttempt[]): number {
  return attempts.filter((a) => a.resumed === undefined).length;
}

/** Asserts the process exited 0 within 5 s of `at`, said nothing on stderr, logged no error and finished its shutdown (no deadline). */
async function assertCleanExit(server: ServerProcess, at: number): Promise<void> {
  const exit = await exitOrKill(server.proc, server.exited, 5000, `${server.command} to exit within 5 s of SIGTERM`);
  const took = performance.now() - at;
  assert.deepEqual(exit, { code: 0, signal: null }, `${server.command} exited after ${Math.round(took)} ms`);
  assert.ok(took < 5000, `exited ${Math.round(took)} ms after SIGTERM`);
  assert.equal(server.stderr().trim(), '', 'nothing on stderr');
  const errors = server.lines.filter((l) => l.level >= 50).map((l) => `${l.msg} ${JSON.stringify(l.err ?? '')}`);
  assert.deepEqual(errors, [], 'no line at error level or above');
  const messages = server.lines.map((l) => l.msg);
  assert.ok(messages.includes('stopped'), `the shutdown finished before the deadline: ${messages.slice(-5).join(' | ')}`);
}

/** Every connection that got a welcome was closed with 1001; the others never got one. Resolves once every client saw its end. */
async function assertGoingAway(attempts: StormAttempt[]): Promise<void> {
  await until(() => `every storm connection to end (${attempts.filter((a) => a.closed === undefined).length} still open)`, () => (attempts.every((a) => a.closed !== undefined) ? true : undefined), 5000);
  const welcomedNot1001 = attempts.filter((a) => a.welcomed && a.closed?.code !== 1001).map((a) => `${a.session.wsId}: ${JSON.stringify(a.closed)}`);
  assert.deepEqual(welcomedNot1001, [], 'every welcomed connection closed with 1001');
}

describe('SIGTERM during a reconnect storm: roomcast start', { timeout: 60_000 }, () => {
  it(`${CLIENTS} clients resuming at once while pushes go on: exits 0 within 5 s, every welcomed client closed with 1001, no error`, async () => {
    const server = await spawnServer(['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0', ...GATEWAY_FLAGS]);
    try {
      const members = await connectMembers(server.gatewayUrl, CLIENTS, ROOMS);
      const before = pushWhileStorming(server.logicUrl, ROOMS, PUSH_LIMIT / 2);
      await dropAll(
        members.map((m) => m.client),
        server.logicUrl,
      );
      await before.stop();
      const pushing = pushWhileStorming(server.logicUrl, ROOMS, PUSH_LIMIT);
      const { storm, signalled } = stormThenStop(
        server,
        members.map((m) => m.session),
      );
      await assertCleanExit(server, await within(signalled, 20_000, `${WELCOMED_AT_SIGNAL} welcomes before the signal`));
      await pushing.stop();
      await storm.opened;
      await assertGoingAway(storm.attempts);
      assert.ok(cutShort(storm.attempts) > 0, 'the signal cut resumes short');
    } finally {
      await killed(server);
    }
  });
});

describe('SIGTERM to a gateway during a reconnect storm: roomcast gateway + logic on Redis', { skip: skipWithoutRedis, timeout: 90_000 }, () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(() => redis?.stop());

  it(`the gateway exits 0 within 5 s, the logic answers on, and all ${CLIENTS} sessions resume on a new gateway, recovered`, async () => {
    const args = ['--host', '127.0.0.1', '--port', '0', '--broker', redis.url];
    let logic: ServerProcess | undefined;
    let first: ServerProcess | undefined;
    let second: ServerProcess | undefined;
    try {
      logic = await spawnRoomcast('logic', args);
      first = await spawnRoomcast('gateway', [...args, ...GATEWAY_FLAGS]);
      const members = await connectMembers(first.gatewayUrl, CLIENTS, ROOMS);
      const sessions = members.map((m) => m.session);
      await dropAll(
        members.map((m) => m.client),
        logic.logicUrl,
      );
      const pushing = pushWhileStorming(logic.logicUrl, ROOMS, PUSH_LIMIT / 2);
      const { storm, signalled } = stormThenStop(first, sessions);
      await assertCleanExit(first, await within(signalled, 20_000, `${WELCOMED_AT_SIGNAL} welcomes before the signal`));
      await storm.opened;
      await assertGoingAway(storm.attempts);
      assert.ok(cutShort(storm.attempts) > 0, 'the signal cut resumes short');

      // the logic API answers on, and takes pushes while no gateway runs
      assert.equal((await call(logic.logicUrl, '/stats')).status, 200);
      await pushing.stop();
      for (const room of ROOMS) assert.equal((await post(logic.logicUrl, '/push/room', { val: 'while no gateway runs', tag: 2, id: room })).status, 200);

      second = await spawnRoomcast('gateway', [...args, ...GATEWAY_FLAGS]);
      const again = resumeAll(second.gatewayUrl, sessions);
      await again.opened;
      await until(() => `every session to resume on the new gateway (${again.attempts.filter((a) => a.resumed !== undefined).length} of ${CLIENTS})`, () => (again.attempts.every((a) => a.resumed !== undefined || a.refused !== undefined || a.closed !== undefined) ? true : undefined), 30_000);
      const back = again.attempts.filter((a) => a.resumed?.wsId === a.session.wsId);
      const recovered = back.filter((a) => a.resumed?.recovered === true);
      const lost = again.attempts.filter((a) => a.resumed?.wsId !== a.session.wsId).map((a) => `${a.session.wsId}: ${JSON.stringify(a.resumed ?? a.refused ?? a.closed)}`);
      assert.deepEqual(lost.slice(0, 5), [], `${lost.length} sessions did not come back`);
      assert.equal(back.length, CLIENTS, 'every session came back with its wsId');
      assert.equal(recovered.length, CLIENTS, 'every session recovered (history holds every push)');
      const inRooms = await call(logic.logicUrl, '/stats');
      assert.equal(inRooms.body.data?.connections, CLIENTS);
      for (const a of again.attempts) a.client?.ws.terminate();
    } finally {
      await Promise.all([first, second].map((p) => p && killed(p)));
      if (logic !== undefined) await stopProcess(logic);
    }
  });
});
