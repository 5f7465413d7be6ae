/**
 * A randomized soak over real processes: a redis-server, two `roomcast gateway`
 * and one `roomcast logic` on loopback (or `roomcast start --workers N` on the
 * redis-server, or one `roomcast start` on the memory engine), and SDK clients in this process, each
 * behind a relay of its own. Seeded random actions (the same seed draws the same
 * schedule; what each action finds depends on timing), then a settle, then the
 * invariants of bench/soak-check.ts, the server's counts, the processes' exits
 * and logs, and the gateways' memory. Exits 1 when any invariant failed.
 *
 *   node dist/bench/soak.js --seconds 180 --clients 200 [--seed N] [--out DIR] [--no-process-kills]
 *     [--engine redis|memory] [--workers N] [--auth off|optional]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { freePort } from './local-redis.js';
import { SOAK_OPTIONS } from './soak-options.js';
import { checkClient, type Push } from './soak-check.js';
import { SoakClient } from './soak-client.js';
import { childPids } from './proc-stats.js';
import { redisCommand, redisProcess, roomcastProcess, roomcastStart, rssOf, type SoakProcess } from './soak-processes.js';
import { signClientToken } from '../src/token.js';
import { seededRandom } from './seeded-random.js';

const { values } = parseArgs({ options: SOAK_OPTIONS });
const seconds = Number(values.seconds);
const clientCount = Number(values.clients);
const roomCount = Number(values.rooms);
const maxActions = Number(values['max-actions']);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
for (const [name, v] of Object.entries({ seconds, clients: clientCount, rooms: roomCount, 'max-actions': maxActions, seed })) {
  if (!Number.isInteger(v) || v < 0 || (name !== 'seed' && v === 0)) throw new Error(`--${name} must be a positive integer, got ${String(v)}`);
}
const engine = values.engine;
const workerCount = Number(values.workers);
const auth = values.auth;
if (engine !== 'redis' && engine !== 'memory') throw new Error(`--engine must be redis or memory, got ${JSON.stringify(engine)}`);
if (!Number.isInteger(workerCount) || workerCount < 0 || workerCount > 16) throw new Error(`--workers must be an integer from 0 to 16, got ${JSON.stringify(values.workers)}`);
if (engine === 'memory' && workerCount > 0) throw new Error('--workers needs --engine redis (the workers reach each other only through Redis)');
if (auth !== 'off' && auth !== 'optional') throw new Error(`--auth must be off or optional, got ${JSON.stringify(auth)}`);
// a restart of the memory engine loses every session and room by design: nothing to check across it
const processKills = !values['no-process-kills'] && engine === 'redis';
if (clientCount > 2000) throw new Error('--clients must be at most 2000 (each holds a relay and two sockets in this process)');
const outDir = values.out ?? `/tmp/roomcast-soak-${seed}`;
mkdirSync(outDir, { recursive: true });

/** The soak's output: progress and the report, on stdout. */
function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

const rng = seededRandom(seed);
const t0 = performance.now();
const now = (): number => performance.now() - t0;
const rooms = Array.from({ length: roomCount }, (_, i) => `soak-r${i}`);
const counts = new Map<string, number>();
const count = (what: string, n = 1): void => void counts.set(what, (counts.get(what) ?? 0) + n);

const deployment = engine === 'memory' ? 'one `roomcast start` on the memory engine' : workerCount > 0 ? `\`roomcast start --workers ${workerCount}\` on Redis` : '2 gateways and a logic process on Redis';
say(`soak: seed ${seed}, ${seconds} s, ${clientCount} clients, ${roomCount} rooms, ${deployment}, auth ${auth}, logs in ${outDir}`);

// processes
const [redisPort, gw0Port, gw1Port, logicPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
const redis = engine === 'redis' ? redisProcess(redisPort, (run) => `${outDir}/redis.${run}.log`) : undefined;
const brokerArgs = redis === undefined ? [] : ['--broker', `redis://127.0.0.1:${redisPort}`];
const jwtSecret = 'soak-secret-soak-secret-soak-secret';
const authArgs = auth === 'optional' ? ['--auth', 'optional', '--jwt-secret', jwtSecret] : [];
const gatewayArgs = [...brokerArgs, '--allow-client-join', '--send-buffer-limit', '131072', ...authArgs];
const logicArgs = [...brokerArgs, '--max-val-size', '16384'];
const logPath = (name: string) => (run: number) => `${outDir}/${name}.${run}.log`;
/** The gateways the soak kills and restarts, each on its own port: only in the deployment of separate processes. */
const gateways: SoakProcess[] = [];
/** The roomcast processes (not Redis) the soak ends with SIGTERM and whose logs it reads. */
const roomcasts: SoakProcess[] = [];
/** The `roomcast start` process, whose workers are the gateways with --workers. */
let primary: SoakProcess | undefined;
if (engine === 'redis' && workerCount === 0) {
  gateways.push(...[gw0Port, gw1Port].map((port, i) => roomcastProcess(`gateway${i}`, 'gateway', port, gatewayArgs, logPath(`gateway${i}`))));
  roomcasts.push(...gateways, roomcastProcess('logic', 'logic', logicPort, logicArgs, logPath('logic')));
} else {
  const workerArgs = workerCount > 0 ? ['--workers', String(workerCount)] : [];
  primary = roomcastStart('start', gw0Port, logicPort, [...gatewayArgs, '--max-val-size', '16384', ...workerArgs], logPath('start'));
  roomcasts.push(primary);
}
const all: SoakProcess[] = [...(redis === undefined ? [] : [redis]), ...roomcasts];
await redis?.start();
await Promise.all(roomcasts.map((p) => p.start()));
const logicUrl = `http://127.0.0.1:${logicPort}`;

// clients: with --auth optional, every other one connects as one of a few users
const users = ['ann', 'bob', 'cid', 'dee', 'eve'];
async function userOf(clientId: number): Promise<{ sub: string; token: string } | undefined> {
  if (auth === 'off' || clientId % 2 === 1) return undefined;
  const sub = users[(clientId / 2) % users.length];
  return { sub, token: await signClientToken({ secret: jwtSecret, sub, rooms: undefined, ttlSeconds: 0, audience: undefined, issuer: undefined }) };
}
const pickGateway = (clientId: number) => (connection: number) => {
  if (gateways.length === 0) return gw0Port;
  const first = gateways[(clientId + connection) % 2];
  return first.up ? first.port : gateways[(clientId + connection + 1) % 2].port;
};
const startClient = async (id: number): Promise<SoakClient> => SoakClient.start(id, pickGateway(id), now, await userOf(id));
let nextClientId = 0;
const clients: SoakClient[] = [];
for (let i = 0; i < clientCount; i++) clients.push(await startClient(nextClientId++));
const retired: SoakClient[] = [];
await waitFor(() => clients.every((c) => c.connected), 60_000, 'every client to connect');
say(`soak: ${clientCount} clients connected at ${Math.round(now())} ms`);

// pushes
const pushes = new Map<string, Push>();
const byStream = new Map<string, Push[]>();
let pushesInFlight = 0;
let pushNumber = 0;

async function api(path: string, body: Record<string, unknown>): Promise<{ status: number; data?: Record<string, unknown> }> {
  try {
    const res = await fetch(`${logicUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const json = (await res.json()) as { data?: Record<string, unknown> };
    return { status: res.status, data: json.data };
  } catch {
    return { status: 0 };
  }
}

/** Pushes to one connection answered 404 while its client still held the wsId (not closed for good): on the memory engine nothing ends such a session. */
const connPushesGone = new Map<string, { client: number; first: number; pushes: number }>();

async function push(stream: string, size: number, holder?: SoakClient): Promise<void> {
  const wsId = holder?.client.wsId;
  const data = `${stream === 'conn' ? 'c' : stream.startsWith('user:') ? 'u' : 'p'}${pushNumber++}.`.padEnd(Math.max(8, size), 'x');
  const record: Push = { data, stream, sent: now() };
  pushes.set(data, record);
  if (!byStream.has(stream)) byStream.set(stream, []);
  byStream.get(stream)!.push(record);
  pushesInFlight++;
  const answer =
    stream === '*'
      ? await api('/push/all', { val: data, tag: 7 })
      : stream === 'conn'
        ? await api('/push/conn', { val: data, tag: 7, wsId })
        : stream.startsWith('user:')
          ? await api('/push/user', { val: data, tag: 7, uid: stream.slice('user:'.length) })
          : await api('/push/room', { val: data, tag: 7, id: stream });
  pushesInFlight--;
  record.answered = now();
  if (answer.status >= 200 && answer.status < 300) {
    record.seq = answer.data?.seq as number | undefined;
    count(`push ${stream === '*' || stream === 'conn' ? stream : stream.startsWith('user:') ? 'user' : 'room'} 2xx`);
  } else if (answer.status >= 400 && answer.status < 500) {
    record.refused = true;
    count(`push ${answer.status}`);
    if (answer.status === 404 && holder !== undefined && holder.closedAt === undefined && holder.client.wsId === wsId) {
      count('push conn 404 to a wsId its client holds');
      const gone = connPushesGone.get(wsId!) ?? { client: holder.id, first: now(), pushes: 0 };
      connPushesGone.set(wsId!, { ...gone, pushes: gone.pushes + 1 });
    }
  } else count(`push ${answer.status === 0 ? 'no answer' : answer.status}`);
}

// membership ops, one at a time per client
async function membershipOp(client: SoakClient, kind: 'join' | 'leave', room: string, by: 'api' | 'client'): Promise<void> {
  const wsId = client.client.wsId ?? client.connects.at(-1)?.wsId;
  if (client.opInFlight || client.closedAt !== undefined || wsId === undefined) return void count('op skipped');
  client.opInFlight = true;
  const op: (typeof client.ops)[number] = { kind, room, by, sent: now() };
  client.ops.push(op);
  if (by === 'api') {
    const answer = await api(kind === 'join' ? '/room/join' : '/room/leave', { id: room, wsId });
    if (answer.status >= 200 && answer.status < 300) op.ok = now();
    else if (answer.status >= 400 && answer.status < 500) op.refused = true;
    else op.unknown = true;
    // a wsId the client no longer holds (its session was not taken back) changed some other session, or none
    if (client.connects.at(-1)?.wsId !== wsId) op.unknown = true;
    count(`${by} ${kind} ${answer.status}`);
  } else {
    try {
      await (kind === 'join' ? client.client.join(room) : client.client.leave(room));
      op.ok = now();
      count(`${by} ${kind} ok`);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'forbidden' || code === 'bad_request') op.refused = true;
      else op.unknown = true;
      count(`${by} ${kind} ${code}`);
    }
  }
  client.opInFlight = false;
}

// disruptions, one at a time
let disrupting = false;
const restarts = { gateway: 0, worker: 0, redis: 0, clientKill: 0 };
const disruptions: { t: number; what: string }[] = [];

async function disrupt(what: 'gateway' | 'redis' | 'clientKill', a: number, b: number): Promise<void> {
  if (disrupting) return void count(`${what} skipped`);
  disrupting = true;
  try {
    if (what === 'gateway' && primary !== undefined) {
      // --workers: SIGKILL one worker; the primary forks another (src/cluster.ts)
      const pids = primary.pid === undefined ? [] : childPids(primary.pid);
      if (pids.length === 0) return void count('worker kill skipped: no worker');
      const pid = pids[Math.floor(a * pids.length)];
      disruptions.push({ t: now(), what: `SIGKILL worker ${pid}` });
      process.kill(pid, 'SIGKILL');
      restarts.worker++;
      // until it is replaced (1 s, doubling for a worker that dies young), and a little after
      await waitFor(() => primary!.pid !== undefined && childPids(primary!.pid).filter((p) => p !== pid).length >= workerCount, 60_000, 'a worker to replace the one killed');
      disruptions.push({ t: now(), what: 'worker replaced' });
      await sleep(b * 3000);
    } else if (what === 'gateway') {
      const gateway = gateways[a < 0.5 ? 0 : 1];
      disruptions.push({ t: now(), what: `SIGKILL ${gateway.name}` });
      await gateway.stop('SIGKILL');
      await sleep(500 + b * 3000);
      await gateway.start();
      disruptions.push({ t: now(), what: `${gateway.name} up` });
      restarts.gateway++;
    } else if (what === 'redis') {
      disruptions.push({ t: now(), what: 'SIGKILL redis' });
      await redis!.stop('SIGKILL');
      await sleep(500 + b * 2500);
      await redis!.start();
      disruptions.push({ t: now(), what: 'redis up' });
      restarts.redis++;
      // give the processes time to find Redis again before the next disruption
      await sleep(3000);
    } else {
      disruptions.push({ t: now(), what: 'CLIENT KILL TYPE pubsub' });
      const answer = await redisCommand(redisPort, 'CLIENT KILL TYPE pubsub');
      restarts.clientKill++;
      count(`client kill: ${answer}`);
    }
  } catch (err) {
    say(`soak: ${what} failed: ${(err as Error).message}`);
    count(`${what} failed`);
  } finally {
    disrupting = false;
  }
}

// memory
const rssSamples: { t: number; name: string; rss: number }[] = [];
const sampler = setInterval(() => {
  for (const p of roomcasts) {
    const rss = p.rss();
    if (rss !== undefined) rssSamples.push({ t: now(), name: `${p.name}#${p.logFiles().length}`, rss });
  }
  if (workerCount > 0 && primary?.pid !== undefined) {
    for (const pid of childPids(primary.pid)) {
      const rss = rssOf(pid);
      if (rss !== undefined) rssSamples.push({ t: now(), name: `worker ${pid}`, rss });
    }
  }
}, 2000);

// the schedule: every tick draws five numbers, whatever it then finds to do
const actionWeights: [string, number][] = [
  ['push room', 40],
  ['push all', 4],
  ['push conn', 4],
  ['push user', auth === 'optional' ? 4 : 0],
  ['api join', 10],
  ['api leave', 7],
  ['client join', 10],
  ['client leave', 7],
  ['destroy', 2.5],
  ['pause', 1.5],
  ['close for good', 0.4],
  ['kill gateway', processKills ? 0.08 : 0],
  ['restart redis', processKills ? 0.03 : 0],
  ['client kill', engine === 'redis' ? 0.06 : 0],
];
const totalWeight = actionWeights.reduce((s, [, w]) => s + w, 0);
function pick(r: number): string {
  let x = r * totalWeight;
  for (const [name, w] of actionWeights) if ((x -= w) < 0) return name;
  return actionWeights[0][0];
}

const scheduleHash = { h: 0 };
let actions = 0;
const deadline = seconds * 1000;
const pending = new Set<Promise<void>>();
const track = (p: Promise<void>): void => {
  pending.add(p);
  void p.finally(() => pending.delete(p));
};
while (now() < deadline && actions < maxActions) {
  await sleep(20);
  const [r, a, b, c, d] = [rng(), rng(), rng(), rng(), rng()];
  const action = pick(r);
  actions++;
  // the first 1000 only: the run is bounded in time, so how many actions it draws varies
  if (actions <= 1000) scheduleHash.h = (Math.imul(scheduleHash.h, 31) + Math.floor(a * 1e6) + action.length) | 0;
  count(`action ${action}`);
  const client = clients[Math.floor(b * clients.length)];
  const room = rooms[Math.floor(c * rooms.length)];
  switch (action) {
    case 'push room':
    case 'push all':
      if (pushesInFlight >= 16) count('push skipped');
      else track(push(action === 'push all' ? '*' : room, Math.floor(a * 1500)));
      break;
    case 'push user':
      if (pushesInFlight >= 16) count('push skipped');
      else track(push(`user:${users[Math.floor(d * users.length)]}`, Math.floor(a * 1500)));
      break;
    case 'push conn':
      if (pushesInFlight < 16 && client.client.wsId !== undefined) track(push('conn', Math.floor(a * 1500), client));
      break;
    case 'api join':
    case 'api leave':
    case 'client join':
    case 'client leave': {
      const [by, kind] = action.split(' ') as ['api' | 'client', 'join' | 'leave'];
      track(membershipOp(client, kind, room, by));
      break;
    }
    case 'destroy':
      client.destroy();
      break;
    case 'pause':
      client.pause(1000 + a * 7000);
      // a burst to the connection alone, which cannot leave the send buffer while it does not read: closes it with 4000
      if (d < 0.5 && client.client.wsId !== undefined) for (let i = 0; i < 40; i++) track(push('conn', 16000, client));
      break;
    case 'close for good': {
      const index = clients.indexOf(client);
      if (client.opInFlight || client.closedAt !== undefined) break;
      retired.push(client);
      track(client.closeForGood());
      track(startClient(nextClientId++).then((fresh) => void (clients[index] = fresh)));
      break;
    }
    case 'kill gateway':
      track(disrupt('gateway', a, d));
      break;
    case 'restart redis':
      track(disrupt('redis', a, d));
      break;
    case 'client kill':
      track(disrupt('clientKill', a, d));
      break;
  }
}
const actionsEnd = now();
say(`soak: ${actions} actions (hash of the first 1000: ${scheduleHash.h >>> 0}) in ${Math.round(actionsEnd / 1000)} s; settling`);

// settle: every process up, every reader reading, every client connected, nothing in flight
await Promise.allSettled([...pending]);
for (const p of all) if (!p.up) await p.start();
const live = (): SoakClient[] => clients.filter((c) => c.closedAt === undefined);
for (const c of live()) c.resumeReading();
const violations: string[] = [];
// with Redis a session can be lost under the client (a Redis restart that lost its record, its gateway killed): counted only
if (engine === 'memory') {
  for (const [wsId, gone] of connPushesGone) {
    violations.push(`client ${gone.client}: ${gone.pushes} pushes to its wsId ${wsId} answered 404, the first at ${Math.round(gone.first)} ms, while it held the wsId`);
  }
}
await waitFor(() => live().every((c) => c.connected) && pushesInFlight === 0 && pending.size === 0, 90_000, 'every client to reconnect').catch((err: Error) =>
  violations.push(`${err.message}: ${live().filter((c) => !c.connected).length} clients not connected 90 s after the last action`),
);
await sleep(5000);
const end = now();
clearInterval(sampler);

// invariants
let required = 0;
let delivered = 0;
for (const client of live()) {
  const verdict = checkClient(client, pushes, byStream, end);
  required += verdict.required;
  delivered += verdict.delivered;
  violations.push(...verdict.violations);
  if (verdict.violations.length > 0) writeFileSync(`${outDir}/client-${client.id}.json`, JSON.stringify(timeline(client), null, 1));
}

// the server's counts against what the clients hold
const stats = await getJson(`${logicUrl}/stats`);
const connected = live().filter((c) => c.connected);
if (stats?.connections !== connected.length) violations.push(`/stats says ${String(stats?.connections)} connections, the clients hold ${connected.length}`);
for (const room of rooms) {
  const answer = await getJson(`${logicUrl}/rooms/${room}?limit=1000`);
  const server = new Set((answer?.wsIds as string[] | undefined) ?? []);
  const held = new Set(connected.filter((c) => c.client.rooms.has(room)).map((c) => c.client.wsId!));
  const onlyServer = [...server].filter((w) => !held.has(w));
  const onlyClients = [...held].filter((w) => !server.has(w));
  if (onlyServer.length + onlyClients.length > 0) {
    violations.push(`GET /rooms/${room}: ${onlyServer.length} members no client holds (${onlyServer.slice(0, 3).join(', ')}), ${onlyClients.length} clients in it it does not list (${onlyClients.slice(0, 3).join(', ')})`);
  }
}
const roomsHeld = new Set(connected.flatMap((c) => [...c.client.rooms]));
if (stats?.rooms !== roomsHeld.size) violations.push(`/stats says ${String(stats?.rooms)} rooms, the clients are in ${roomsHeld.size}`);

// exits and logs
for (const c of [...live(), ...retired]) c.client.close();
await sleep(1500);
for (const c of [...live(), ...retired]) c.destroy();
for (const p of roomcasts) await p.stop('SIGTERM');
await redis?.stop('SIGKILL');
for (const p of all) {
  for (const e of p.endings) {
    const fine = e.expected || (p !== redis && e.code === 0);
    if (!fine) violations.push(`${e.name} exited with code ${e.code} signal ${e.signal}, not killed by the soak`);
  }
}
const logFindings = new Map<string, number>();
for (const p of roomcasts) {
  for (const file of p.logFiles()) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (/uncaught|unhandled/i.test(line)) violations.push(`${file}: ${line.slice(0, 300)}`);
      const level = /"level":(\d+)/.exec(line)?.[1];
      if (level !== undefined && Number(level) >= 50) {
        const msg = /"msg":"([^"]{0,120})/.exec(line)?.[1] ?? line.slice(0, 120);
        logFindings.set(`${p.name} level ${level}: ${msg}`, (logFindings.get(`${p.name} level ${level}: ${msg}`) ?? 0) + 1);
      } else if (level === undefined && line.trim() !== '') logFindings.set(`${p.name} not JSON: ${line.slice(0, 120)}`, (logFindings.get(`${p.name} not JSON: ${line.slice(0, 120)}`) ?? 0) + 1);
    }
  }
}

// memory: within each gateway run, the last third against the first third (after the first 20 s)
const memory: string[] = [];
for (const name of new Set(rssSamples.map((s) => s.name))) {
  const samples = rssSamples.filter((s) => s.name === name);
  const mb = (n: number): string => `${Math.round(n / 1048576)} MB`;
  const max = Math.max(...samples.map((s) => s.rss));
  memory.push(`${name}: ${samples.length} samples, first ${mb(samples[0].rss)}, last ${mb(samples.at(-1)!.rss)}, max ${mb(max)}`);
  const steady = samples.filter((s) => s.t - samples[0].t > 20_000);
  if (steady.length >= 30) {
    const third = Math.floor(steady.length / 3);
    const avg = (xs: typeof steady): number => xs.reduce((s, x) => s + x.rss, 0) / xs.length;
    const early = avg(steady.slice(0, third));
    const late = avg(steady.slice(-third));
    if (late > early * 1.5 + 64 * 1048576) violations.push(`${name}: RSS grew from ${mb(early)} to ${mb(late)} (averages of the first and last thirds)`);
  }
}

// report
const frames = [...live(), ...retired].reduce((s, c) => s + c.received.length, 0);
const closeCodes = new Map<number, number>();
for (const c of [...live(), ...retired]) for (const [code, n] of c.closeCodes) closeCodes.set(code, (closeCodes.get(code) ?? 0) + n);
const resets = live().reduce((s, c) => s + c.connects.filter((x) => x.reset).length - 1, 0);
const reconnects = [...live(), ...retired].reduce((s, c) => s + c.connects.length - 1, 0);
say(`\n=== soak report (seed ${seed}) ===`);
const pushKinds = (kind: (s: string) => boolean): number => [...byStream].filter(([s]) => kind(s)).reduce((n, [, l]) => n + l.length, 0);
say(`actions ${actions}; pushes ${pushes.size} (rooms ${pushKinds((s) => s !== '*' && s !== 'conn' && !s.startsWith('user:'))}, all ${pushKinds((s) => s === '*')}, conn ${pushKinds((s) => s === 'conn')}, user ${pushKinds((s) => s.startsWith('user:'))}); frames received ${frames}; room/all deliveries checked ${delivered}; required deliveries ${required}`);
say(`restarts: gateway ${restarts.gateway}, worker ${restarts.worker}, redis ${restarts.redis}, CLIENT KILL pubsub ${restarts.clientKill}; client reconnects ${reconnects}, of which not recovered ${resets}; clients closed for good ${retired.length}`);
say(`close codes seen by clients: ${[...closeCodes].sort((x, y) => x[0] - y[0]).map(([k, v]) => `${k}×${v}`).join(' ')}`);
say(`counts: ${[...counts].sort().map(([k, v]) => `${k}=${v}`).join(', ')}`);
say(`server stats at the end: connections ${String(stats?.connections)}, rooms ${String(stats?.rooms)}, slowConsumerCloses ${String(stats?.slowConsumerCloses)}, missedMessageCloses ${String(stats?.missedMessageCloses)}, resumes ${String(stats?.resumes)}`);
say(`memory:\n  ${memory.join('\n  ')}`);
say(`log lines at error level or not JSON:\n  ${[...logFindings].map(([k, v]) => `${v}× ${k}`).join('\n  ') || 'none'}`);
say(violations.length === 0 ? 'invariants: all held' : `invariants: ${violations.length} violations\n  ${violations.slice(0, 60).join('\n  ')}`);
process.exit(violations.length === 0 ? 0 : 1);

async function waitFor(condition: () => boolean, ms: number, what: string): Promise<void> {
  const until = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function getJson(url: string): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    return ((await res.json()) as { data?: Record<string, unknown> }).data;
  } catch {
    return undefined;
  }
}

/** What a client saw and did, in time order, for a violation's post-mortem (vals cut to their push id). */
function timeline(client: SoakClient): unknown[] {
  const events: { t: number; [k: string]: unknown }[] = [
    ...client.connects.map((c) => ({ ...c, event: 'connected' })),
    ...client.ops.map((o) => ({ ...o, t: o.sent, event: 'op' })),
    ...client.serverLefts.map((l) => ({ ...l, event: 'left' })),
    ...client.serverJoins.map((j) => ({ ...j, event: 'joined' })),
    ...client.received.map((r) => ({ ...r, data: r.data.slice(0, r.data.indexOf('.') + 1), event: 'message' })),
    ...client.drops.map((d) => ({ ...d, event: 'drop' })),
    ...client.actions.map((a) => ({ ...a, event: 'soak' })),
    ...disruptions.map((d) => ({ ...d, event: 'disruption' })),
  ];
  return events.sort((a, b) => a.t - b.t);
}
