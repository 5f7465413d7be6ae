/**
 * What GET /stats and GET /rooms cost on Redis with many rooms (docs/REFERENCE.md §5):
 * starts a redis-server, two gateways and a logic process (this checkout's
 * build), puts ROOMS rooms on the gateways (half on each), then times 10 calls
 * of each, with the CPU time each process spent on them, while a probe asks
 * the logic process for /healthz every 5 ms (its slowest answer bounds how long
 * a call held the logic's event loop, on a machine busy with the rest).
 *
 *   npm run build:server && node dist/bench/room-totals-cost.js [ROOMS]   (default 100000)
 *
 * Bounded: every step has a deadline, and everything it started is stopped at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { freePort, redisAnswersPing, redisServerArgs } from './local-redis.js';
import { readProcSample } from './proc-stats.js';

const ROOMS = Number(process.argv[2] ?? 100_000);
const ROOMS_PER_CLIENT = 1000;
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const started: ChildProcess[] = [];
const roles = new Map<ChildProcess, string>();

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

function cpuByRole(): Record<string, number> {
  const by: Record<string, number> = {};
  for (const [child, role] of roles) by[role] = (by[role] ?? 0) + readProcSample(child.pid!).cpuSeconds;
  return by;
}

function stopAll(): void {
  for (const child of started) child.kill('SIGKILL');
}
process.on('exit', stopAll);
setTimeout(() => {
  process.stderr.write('room-totals-cost: still running after 5 minutes, stopping\n');
  process.exit(1);
}, 300_000).unref();

async function startRedis(): Promise<string> {
  const port = await freePort();
  const redis = spawn('redis-server', redisServerArgs('127.0.0.1', port), { stdio: 'ignore' });
  started.push(redis);
  roles.set(redis, 'redis');
  for (let i = 0; i < 100 && !(await redisAnswersPing('127.0.0.1', port)); i++) await sleep(50);
  return `redis://127.0.0.1:${port}`;
}

/** Starts `roomcast <command>` and resolves with the URL of its start line's `field`. */
async function startRoomcast(command: string, field: string, args: string[]): Promise<string> {
  const child = spawn(process.execPath, [CLI, command, '--host', '127.0.0.1', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(child);
  roles.set(child, command === 'gateway' ? 'gateways' : command);
  let text = '';
  for await (const chunk of child.stdout!) {
    text += String(chunk);
    const line = text.split('\n').find((l) => l.includes(`"${field}":`));
    if (line !== undefined) {
      child.stdout!.resume();
      return (JSON.parse(line) as Record<string, string>)[field];
    }
  }
  throw new Error(`roomcast ${command} ended before it listened: ${text}`);
}

/** One client that joins `rooms` by itself, and waits for every answer. */
async function joinRooms(gatewayUrl: string, rooms: string[]): Promise<WebSocket> {
  const ws = new WebSocket(gatewayUrl);
  await once(ws, 'open');
  let answered = 0;
  const done = new Promise<void>((resolve, reject) =>
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(String(data)) as { op?: string };
      if (frame.op === 'error') reject(new Error(`a join was refused: ${String(data)}`));
      if (frame.op === 'reply' && ++answered === rooms.length) resolve();
    }),
  );
  rooms.forEach((room, id) => ws.send(JSON.stringify({ op: 'join', room, id })));
  await done;
  return ws;
}

async function timeCalls(logicUrl: string, path: string, count: number): Promise<void> {
  let slowestProbe = 0;
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const t = performance.now();
      await fetch(`${logicUrl}/healthz`).then((r) => r.text());
      slowestProbe = Math.max(slowestProbe, performance.now() - t);
      await sleep(5);
    }
  })();
  const times: number[] = [];
  let bytes = 0;
  const cpuBefore = cpuByRole();
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    const body = await fetch(`${logicUrl}${path}`).then((r) => r.text());
    times.push(performance.now() - t);
    bytes = body.length;
    if (i === 0) say(`  ${path}: ${body.slice(0, 160)}...`);
  }
  const cpuAfter = cpuByRole();
  probing = false;
  await probe;
  const cpu = Object.keys(cpuAfter).map((role) => `${role} ${(((cpuAfter[role] - cpuBefore[role]) * 1000) / count).toFixed(0)} ms`);
  times.sort((a, b) => a - b);
  say(`  ${path}: ${count} calls, median ${times[count >> 1].toFixed(0)} ms, max ${times.at(-1)!.toFixed(0)} ms; answer ${bytes} bytes; slowest /healthz meanwhile ${slowestProbe.toFixed(0)} ms; CPU per call: ${cpu.join(', ')}`);
}

const broker = await startRedis();
const gateways = await Promise.all(
  [0, 1].map(() => startRoomcast('gateway', 'gateway', ['--broker', broker, '--heartbeat-timeout', '0', '--allow-client-join', '--max-frames-per-second', '0', '--max-connections-per-ip', '0', '--connect-rate-per-ip', '0'])),
);
const logicUrl = await startRoomcast('logic', 'logic', ['--broker', broker]);
say(`${ROOMS} rooms, half on each of 2 gateways (${ROOMS_PER_CLIENT} per client), redis ${broker}`);
const clients: WebSocket[] = [];
const joinStarted = performance.now();
for (let first = 0; first < ROOMS; first += ROOMS_PER_CLIENT) {
  const rooms = Array.from({ length: Math.min(ROOMS_PER_CLIENT, ROOMS - first) }, (_, i) => `room-${String(first + i).padStart(6, '0')}`);
  clients.push(await joinRooms(gateways[(first / ROOMS_PER_CLIENT) % 2], rooms));
}
say(`joined in ${((performance.now() - joinStarted) / 1000).toFixed(1)} s`);
await timeCalls(logicUrl, '/stats', 10);
await timeCalls(logicUrl, '/rooms?limit=100', 10);
await timeCalls(logicUrl, '/rooms?contains=9999', 10);
for (const ws of clients) ws.terminate();
stopAll();
process.exit(0);
