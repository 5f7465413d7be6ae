/**
 * Property-based fuzzing (fast-check) of a running server process: 10,000
 * generated frames and 10,000 generated HTTP requests. Afterwards it must
 * still answer PING and deliver a push, with no crash, no unhandled rejection,
 * no 500, and its memory not grown without bound.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { WebSocket } from 'ws';
import { TestClient, isPush } from './helpers/client.js';
import { post } from './helpers/http.js';
import { spawnServer, stopProcess, type ServerProcess } from './helpers/process.js';
import { until, within } from './helpers/until.js';

const RUNS = 10_000;
const POOL = 20;

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

const roomLike = fc.oneof(fc.constantFrom('lobby', 'chat:1', '1', '*', '', 'a b'), fc.string({ maxLength: 140 }), fc.integer(), fc.double(), fc.constant(null));
const idLike = fc.oneof(fc.integer(), fc.string({ maxLength: 80 }), fc.constant(null), fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue()));
const opFrame = fc
  .record(
    {
      op: fc.oneof(fc.constantFrom('join', 'leave', 'resume', 'auth', 'refresh', 'ping', 'PING'), fc.string({ maxLength: 20 }), fc.integer()),
      room: roomLike,
      id: idLike,
      token: fc.oneof(fc.string({ maxLength: 200 }), fc.constant('a.b.c'), fc.integer()),
      since: fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue()), fc.dictionary(fc.string({ maxLength: 10 }), fc.record({ seq: fc.integer(), epoch: fc.string({ maxLength: 10 }) }))),
      type: fc.oneof(fc.constant(1), fc.integer()),
      data: fc.jsonValue(),
    },
    { requiredKeys: [] },
  )
  .map((f) => JSON.stringify(f));
const frameArbitrary = fc.oneof(
  opFrame,
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 300, unit: 'binary' }),
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
);

const paths = ['/push/all', '/push/room', '/push/conn', '/push/user', '/room/join', '/room/leave', '/conn/kick', '/rooms', '/rooms/x', '/rooms/x/history', '/conns/x', '/users/x', '/stats', '/healthz', '/readyz', '/openapi.json', '/metrics', '/admin', '/'];
const requestArbitrary = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
  path: fc.oneof(
    fc.constantFrom(...paths),
    fc.tuple(fc.constantFrom(...paths), fc.string({ maxLength: 40 })).map(([p, extra]) => `${p}/${encodeURIComponent(extra)}`),
    fc.tuple(fc.constantFrom(...paths), fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 20 }))).map(([p, q]) => `${p}?${new URLSearchParams(q)}`),
  ),
  contentType: fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain', 'application/octet-stream', undefined),
  body: fc.oneof(
    fc.constant(undefined),
    fc.record({ val: fc.jsonValue(), tag: fc.jsonValue(), id: fc.jsonValue(), wsId: fc.jsonValue(), uid: fc.jsonValue() }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
    fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 30 })).map((d) => new URLSearchParams(d).toString()),
    fc.string({ maxLength: 200 }),
  ),
});

/** The id of the frame sent last on each socket, answered with an unknown_op error. */
const LAST_FRAME = 'fuzz-last-frame-';
const ERROR_CODES = new Set(['forbidden', 'bad_frame', 'unknown_op', 'bad_request', 'bad_resume']);

/** PROTOCOL.md §1: a PONG, a push, or a type-0 frame with an op; errors with a known code and a message. */
function wellFormedServerFrame(frame: { type?: unknown; op?: unknown; code?: unknown; message?: unknown; data?: unknown }): boolean {
  if (typeof frame !== 'object' || frame === null || typeof frame.type !== 'number') return false;
  if (frame.type === 1) return frame.data === 'PONG';
  if (frame.type !== 0) return true; // a push (none are sent here)
  if (typeof frame.op !== 'string') return false;
  if (frame.op === 'error') return typeof frame.code === 'string' && ERROR_CODES.has(frame.code) && typeof frame.message === 'string' && frame.message !== '';
  return true;
}

describe('fuzzing a running server', { timeout: 600_000 }, () => {
  let server: ServerProcess;
  before(async () => {
    // no frame-rate limit, so every generated frame reaches the parser instead of a 4029 close
    server = await spawnServer(['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0', '--allow-client-join', '--connect-rate-per-ip', '0', '--max-frames-per-second', '0']);
  });
  after(() => stopProcess(server));

  it(`answers ${RUNS} generated frames with well-formed frames only, and ${RUNS} generated HTTP requests with JSON only, then still works`, async () => {
    const rssBefore = rssMiB(server.proc.pid!);
    const badFrames: string[] = [];
    /** Frames that answer one of ours: PONG, reply, error. */
    let answers = 0;
    /** Ids of our last frames whose answers arrived. */
    const lastAnswered = new Set<string>();
    const open = (): WebSocket => {
      const ws = new WebSocket(server.gatewayUrl);
      ws.on('message', (data: Buffer) => {
        const text = data.toString();
        let frame: { type?: unknown; op?: unknown; code?: unknown; message?: unknown; data?: unknown; id?: unknown };
        try {
          frame = JSON.parse(text) as typeof frame;
        } catch {
          badFrames.push(text);
          return;
        }
        if (!wellFormedServerFrame(frame)) badFrames.push(text);
        if (typeof frame.id === 'string' && frame.id.startsWith(LAST_FRAME)) lastAnswered.add(frame.id);
        else if (frame.type === 1 || frame.op === 'reply' || frame.op === 'error') answers++;
      });
      ws.on('error', () => undefined);
      return ws;
    };
    const pool = Array.from({ length: POOL }, open);
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(frameArbitrary, fc.nat(POOL - 1), async (frame, slot) => {
        let ws = pool[slot];
        if (ws.readyState === WebSocket.CLOSING || ws.readyState === WebSocket.CLOSED) ws = pool[slot] = open();
        if (ws.readyState === WebSocket.CONNECTING) await within(new Promise((resolve) => ws.once('open', resolve).once('close', resolve)), 20_000, 'a pool connection to open or close');
        if (ws.readyState !== WebSocket.OPEN) return;
        ws.send(frame, { binary: Buffer.isBuffer(frame) });
        sent++;
        if (sent % 200 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }),
      { numRuns: RUNS },
    );
    // every answer is in before the sockets go: each open one gets a last frame of ours, answered after the frames before it
    // (a PONG would not do: it cannot be told from the answer to a generated PING still on its way)
    const last = pool.flatMap((ws, slot) => (ws.readyState === WebSocket.OPEN ? [{ ws, id: `${LAST_FRAME}${slot}` }] : []));
    for (const { ws, id } of last) ws.send(JSON.stringify({ type: 0, op: 'last-frame', id }));
    const unanswered = (): string[] => last.filter(({ ws, id }) => !lastAnswered.has(id) && ws.readyState === WebSocket.OPEN).map(({ id }) => id);
    await until(() => `answers to the last frames (missing: ${unanswered().join(', ')})`, () => (unanswered().length === 0 ? true : undefined), 10_000);
    for (const ws of pool) ws.terminate();
    assert.deepEqual(badFrames.slice(0, 5), [], 'every frame from the server is well-formed');
    assert.ok(sent > RUNS * 0.9, `only ${sent} frames went out`);
    // frames that get no answer: pushes-like frames with no op (ignored, as the seed did), and those a 4004 close cut off
    assert.ok(answers > sent * 0.5, `the server answered ${answers} of ${sent} frames`);

    const problems: string[] = [];
    await fc.assert(
      fc.asyncProperty(requestArbitrary, async ({ method, path, contentType, body }) => {
        const hasBody = body !== undefined && method !== 'GET' && method !== 'HEAD';
        const res = await fetch(server.logicUrl + path, {
          method,
          headers: contentType === undefined ? {} : { 'content-type': contentType },
          body: hasBody ? body : undefined,
        });
        const pathname = path.split('?')[0];
        // an event stream never ends: its status is all there is to read
        const text = pathname === '/stats/stream' && res.ok ? ((await res.body?.cancel()), '') : await res.text();
        if (res.status >= 500 && res.status !== 503) problems.push(`${method} ${path}: ${res.status} ${text.slice(0, 100)}`);
        // the only answers that are not JSON: Prometheus text, the admin pages, the event stream
        if (method === 'HEAD' || pathname === '/metrics' || pathname.startsWith('/admin') || pathname === '/stats/stream') return;
        let parsed: { code?: unknown; msg?: unknown };
        try {
          parsed = JSON.parse(text) as { code?: unknown; msg?: unknown };
        } catch {
          problems.push(`${method} ${path}: not JSON: ${text.slice(0, 100)}`);
          return;
        }
        if (path.startsWith('/openapi.json') && res.status === 200) return;
        const wellFormed = typeof parsed.msg === 'string' && (res.status === 200 ? parsed.code === 0 : parsed.code === res.status);
        if (!wellFormed) problems.push(`${method} ${path}: ${res.status} ${text.slice(0, 100)}`);
      }),
      { numRuns: RUNS },
    );
    assert.deepEqual(problems.slice(0, 5), []);

    const client = await TestClient.connect(server.gatewayUrl);
    assert.deepEqual(await client.ping(), { type: 1, data: 'PONG' });
    const answer = await post(server.logicUrl, '/push/all', { val: 'after the storm', tag: 2 });
    assert.equal(answer.status, 200);
    assert.equal((await client.next(isPush)).data, 'after the storm');
    await client.closeAndWait();

    const crashes = server.lines.filter((l) => l.level >= 50);
    assert.deepEqual(crashes, [], 'no error-level log line (unhandled rejection, uncaught exception, failed request)');
    assert.equal(server.proc.exitCode, null, 'the server is still running');
    // the server writes nothing to stderr (its log goes to stdout): anything there is a warning, an error or a stack
    assert.equal(server.stderr(), '', 'nothing on stderr');
    const growth = rssMiB(server.proc.pid!) - rssBefore;
    assert.ok(growth < 100, `the server grew by ${growth.toFixed(0)} MiB`);
  });
});
