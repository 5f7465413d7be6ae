/**
 * SIGTERM in the middle of a reconnect storm, on real processes: a thousand
 * clients drop at once, all reconnect and resume at once while pushes go on,
 * and the server is told to stop while the resumes are in flight. It must stop
 * as REFERENCE.md §4 says (stop accepting, close every client with 1001, exit 0
 * within 5 s) without a crash or an error line, and on Redis no session may be lost:
 * also with `start --workers`, stopped by SIGTERM to its primary or by a Ctrl-C
 * (SIGINT to the primary and its workers at once).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { childPids } from '../bench/proc-stats.js';
import { call, post } from './helpers/http.js';
import { alive, exitOrKill, spawnRoomcast, spawnServer, stopProcess, type ServerProcess } from './helpers/process.js';
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
 * Starts the storm and calls `stop` (by default: SIGTERM to `server`) from the frame handler of the `WELCOMED_AT_SIGNAL`-th welcome,
 * so most of the storm is still in flight however fast it runs; resolves with when it was sent.
 */
function stormThenStop(
  server: ServerProcess,
  sessions: StormSession[],
  stop = (): void => void server.proc.kill('SIGTERM'),
): { storm: ReturnType<typeof resumeAll>; signalled: Promise<number> } {
  let signal!: (at: number) => void;
  const signalled = new Promise<number>((resolve) => (signal = resolve));
  const storm = resumeAll(server.gatewayUrl, sessions, (count) => {
    if (count !== WELCOMED_AT_SIGNAL) return;
    stop();
    signal(performance.now());
  });
  return { storm, signalled };
}

/** Resumes the signal cut short: connections that ended without their `resumed` frame. */
function cutShort(attempts: StormAttempt[]): number {
  return attempts.filter((a) => a.resumed === undefined).length;
}

/**
 * Asserts the process exited 0 within 5 s of `at`, said nothing on stderr, logged no error and finished its shutdown (no deadline).
 * The lines of `--workers` workers are in their primary's output (they share its stdout): none of them may be an error either.
 */
async function assertCleanExit(server: ServerProcess, at: number): Promise<void> {
  const exit = await exitOrKill(server.proc, server.exited, 5000, `${server.command} to exit within 5 s of the signal`);
  const took = performance.now() - at;
  assert.deepEqual(exit, { code: 0, signal: null }, `${server.command} exited after ${Math.round(took)} ms`);
  assert.ok(took < 5000, `exited ${Math.round(took)} ms after the signal`);
  assert.equal(server.stderr().trim(), '', 'nothing on stderr');
  const errors = server.lines.filter((l) => l.level >= 50).map((l) => `${l.msg} ${JSON.stringify(l.err ?? '')}`);
  assert.deepEqual(errors, [], 'no line at error level or above');
  const messages = server.lines.filter((l) => l.pid === server.proc.pid).map((l) => l.msg);
  assert.ok(messages.includes('stopped'), `the shutdown finished before the deadline: ${messages.slice(-5).join(' | ')}`);
}

/** Every connection that got a welcome was closed with 1001; the others never got one. Resolves once every client saw its end. */
async function assertGoingAway(attempts: StormAttempt[]): Promise<void> {
  await until(() => `every storm connection to end (${attempts.filter((a) => a.closed === undefined).length} still open)`, () => (attempts.every((a) => a.closed !== undefined) ? true : undefined), 5000);
  const welcomedNot1001 = attempts.filter((a) => a.welcomed && a.closed?.code !== 1001).map((a) => `${a.session.wsId}: ${JSON.stringify(a.closed)}`);
  assert.deepEqual(welcomedNot1001, [], 'every welcomed connection closed with 1001');
}

/**
 * Resumes every session on the gateway at `gatewayUrl`: each must come back with its wsId, recovered
 * (history holds every push), in the rooms it was in; then the clients are cut off.
 */
async function assertEverySessionBack(gatewayUrl: string, logicUrl: string, sessions: StormSession[]): Promise<void> {
  const roomsOf = (streams: object): string[] => Object.keys(streams).filter((stream) => stream !== '*').sort();
  const roomsBefore = new Map(sessions.map((session) => [session.wsId, roomsOf(session.since)]));
  const again = resumeAll(gatewayUrl, sessions);
  await again.opened;
  await until(() => `every session to resume on the new gateway (${again.attempts.filter((a) => a.resumed !== undefined).length} of ${sessions.length})`, () => (again.attempts.every((a) => a.resumed !== undefined || a.refused !== undefined || a.closed !== undefined) ? true : undefined), 30_000);
  const back = again.attempts.filter((a) => a.resumed?.wsId === a.session.wsId);
  const recovered = back.filter((a) => a.resumed?.recovered === true);
  const lost = again.attempts.filter((a) => a.resumed?.wsId !== a.session.wsId).map((a) => `${a.session.wsId}: ${JSON.stringify(a.resumed ?? a.refused ?? a.closed)}`);
  assert.deepEqual(lost.slice(0, 5), [], `${lost.length} sessions did not come back`);
  assert.equal(back.length, sessions.length, 'every session came back with its wsId');
  assert.equal(recovered.length, sessions.length, 'every session recovered (history holds every push)');
  const roomsChanged = back
    .filter((a) => JSON.stringify(roomsOf(a.resumed?.streams as object)) !== JSON.stringify(roomsBefore.get(a.session.wsId)))
    .map((a) => `${a.session.wsId}: ${JSON.stringify(roomsBefore.get(a.session.wsId))} became ${JSON.stringify(a.resumed?.streams)}`);
  assert.deepEqual(roomsChanged.slice(0, 5), [], `${roomsChanged.length} sessions came back in other rooms than they were in`);
  const inRooms = await call(logicUrl, '/stats');
  assert.equal(inRooms.body.data?.connections, sessions.length);
  for (const a of again.attempts) a.client?.ws.terminate();
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
      await assertEverySessionBack(second.gatewayUrl, logic.logicUrl, sessions);
    } finally {
      await Promise.all([first, second].map((p) => p && killed(p)));
      if (logic !== undefined) await stopProcess(logic);
    }
  });
});

describe('a signal to the primary during a reconnect storm: roomcast start --workers 2 on Redis', { skip: skipWithoutRedis, timeout: 120_000 }, () => {
  /** `roomcast start --workers 2` on `redis`, with the pids of its 2 workers. */
  const startWorkers = async (redis: RedisServer): Promise<{ primary: ServerProcess; workers: number[] }> => {
    const primary = await spawnServer(['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0', '--workers', '2', '--broker', redis.url, ...GATEWAY_FLAGS]);
    const pid = primary.proc.pid!;
    return { primary, workers: await until('the 2 workers of the primary', () => (childPids(pid).length === 2 ? childPids(pid) : undefined)) };
  };

  /** After the primary's exit: no worker runs on (nor one it started meanwhile, found by its log lines), and each finished its own shutdown. */
  const assertWorkersStopped = (primary: ServerProcess, workers: number[]): void => {
    const logged = primary.lines.map((l) => l.pid as number).filter((pid) => pid !== primary.proc.pid);
    assert.deepEqual([...new Set([...workers, ...logged])].filter(alive), [], 'no worker outlives the primary');
    const stopped = primary.lines.filter((l) => l.msg === 'stopped' && workers.includes(l.pid as number)).map((l) => l.pid as number);
    assert.deepEqual(stopped.sort(), [...workers].sort(), 'each worker finished its shutdown');
    const killedWorkers = primary.lines.filter((l) => l.msg.startsWith('gateway worker did not stop')).map((l) => l.pid);
    assert.deepEqual(killedWorkers, [], 'the primary killed no worker');
  };

  const stops = [
    { name: 'SIGTERM to the primary', stop: (primary: ServerProcess): void => void primary.proc.kill('SIGTERM') },
    {
      // what Ctrl-C does: the terminal signals the whole process group, so each worker hears it itself, besides the SIGTERM
      // its primary sends it; Linux signals a group's newest processes first, the workers here
      name: 'SIGINT to the primary and its workers at once (Ctrl-C)',
      stop: (primary: ServerProcess, workers: number[]): void => {
        for (const pid of [...workers, primary.proc.pid!]) process.kill(pid, 'SIGINT');
      },
    },
  ];

  for (const { name, stop } of stops) {
    it(`${name}: exits 0 within 5 s with no worker left, every welcomed client closed with 1001, and all ${CLIENTS} sessions resume on a fresh start, recovered`, async () => {
      const redis = await RedisServer.start();
      let first: { primary: ServerProcess; workers: number[] } | undefined;
      let second: ServerProcess | undefined;
      try {
        first = await startWorkers(redis);
        const { primary, workers } = first;
        const members = await connectMembers(primary.gatewayUrl, CLIENTS, ROOMS);
        const nodes = new Set<unknown>();
        for (const m of members.slice(0, 20)) nodes.add((await call(primary.logicUrl, `/conns/${m.client.wsId}`)).body.data?.node);
        assert.equal(nodes.size, 2, 'the clients are spread over both workers');
        const sessions = members.map((m) => m.session);
        await dropAll(
          members.map((m) => m.client),
          primary.logicUrl,
        );
        const pushing = pushWhileStorming(primary.logicUrl, ROOMS, PUSH_LIMIT / 2);
        const { storm, signalled } = stormThenStop(primary, sessions, () => stop(primary, workers));
        await assertCleanExit(primary, await within(signalled, 20_000, `${WELCOMED_AT_SIGNAL} welcomes before the signal`));
        assertWorkersStopped(primary, workers);
        await pushing.stop();
        await storm.opened;
        await assertGoingAway(storm.attempts);
        assert.ok(cutShort(storm.attempts) > 0, 'the signal cut resumes short');

        second = (await startWorkers(redis)).primary;
        await assertEverySessionBack(second.gatewayUrl, second.logicUrl, sessions);
      } finally {
        for (const pid of first?.workers ?? []) if (alive(pid)) process.kill(pid, 'SIGKILL');
        if (first !== undefined) await killed(first.primary);
        if (second !== undefined) await stopProcess(second);
        await redis.stop();
      }
    });
  }
});
