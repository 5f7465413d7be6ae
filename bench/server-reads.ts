/** What the bench reads from a server's HTTP API besides pushing: joins, GET /stats, GET /metrics. */
import { Agent } from 'node:http';
import { nowUs } from './messages.js';
import { post, requestTimeoutMs, runConcurrently } from './pusher.js';

export interface Membership {
  wsId: string;
  /** The room it joins; undefined: none. */
  room: string | undefined;
}

/**
 * Joins each connection to its room through POST /room/join; `joined(wsId,
 * atUs)` is told when each join was answered (monotonic µs). Failures go to
 * `errors`: the first one's answer, and how many.
 */
export async function joinRooms(
  logicUrl: string,
  members: Membership[],
  concurrency: number,
  deadline: number,
  errors: string[],
  joined: (wsId: string, atUs: number) => void = () => undefined,
): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const url = new URL('/room/join', logicUrl);
  let failed = 0;
  try {
    await runConcurrently(members.length, concurrency, deadline, async (i) => {
      const { wsId, room } = members[i];
      if (room === undefined) return;
      const res = await post(agent, url, JSON.stringify({ id: room, wsId }), requestTimeoutMs(deadline)).catch((err: Error) => ({ status: 0, body: err.message }));
      if (res.status === 200) joined(wsId, nowUs());
      else if (failed++ === 0) errors.push(`join ${wsId} to ${room}: ${res.status} ${res.body.slice(0, 200)}`);
    });
  } finally {
    agent.destroy();
  }
  if (failed > 1) errors.push(`${failed} joins failed`);
}

/** A GET's status and body; a request that fails throws an error naming the path. */
async function get(logicUrl: string, path: string, deadline: number): Promise<{ status: number; text: string }> {
  try {
    const res = await fetch(new URL(path, logicUrl), { signal: AbortSignal.timeout(requestTimeoutMs(deadline)) });
    return { status: res.status, text: await res.text() };
  } catch (err) {
    throw new Error(`GET ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** The counts of GET /stats (over every gateway node). */
export interface ServerCounts {
  connections: number;
  rooms: number;
}

/** `data.connections` and `data.rooms` of a GET /stats body; undefined when the body is not JSON or lacks them. */
function countsIn(text: string): ServerCounts | undefined {
  try {
    const data = (JSON.parse(text) as { data?: { connections?: unknown; rooms?: unknown } }).data;
    return typeof data?.connections === 'number' && typeof data.rooms === 'number' ? { connections: data.connections, rooms: data.rooms } : undefined;
  } catch {
    return undefined;
  }
}

/** Open connections and rooms, as GET /stats counts them; throws when the server does not answer them. */
export async function serverCounts(logicUrl: string, deadline: number): Promise<ServerCounts> {
  const { status, text } = await get(logicUrl, '/stats', deadline);
  const counts = status === 200 ? countsIn(text) : undefined;
  if (counts === undefined) throw new Error(`GET /stats answered ${status} ${text.slice(0, 200)}`);
  return counts;
}

/** The sum of `nodejs_heap_size_used_bytes` over the samples of GET /metrics; undefined when it has none. */
export async function heapUsedBytes(logicUrl: string, deadline: number): Promise<number | undefined> {
  const { status, text } = await get(logicUrl, '/metrics', deadline);
  if (status !== 200) return undefined;
  const samples = [...text.matchAll(/^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\d+(?:\.\d+)?(?:e\+?\d+)?)$/gm)].map((m) => Number(m[1]));
  return samples.length === 0 ? undefined : samples.reduce((a, b) => a + b, 0);
}
