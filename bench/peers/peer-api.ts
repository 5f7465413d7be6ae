/**
 * The part of roomcast's logic API that the bench calls (`/push/all`,
 * `/push/room`, `/room/join`, JSON or form bodies, the same answers), for the
 * peer servers, and how a peer process starts and stops: the same flags and
 * the same "listening" log line as `roomcast start`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

export interface PeerBackend {
  pushAll(tag: number, val: string): number;
  pushRoom(room: string, tag: number, val: string): number;
  /** True when the connection was not in the room yet; undefined when no connection has that id. */
  join(room: string, wsId: string): boolean | undefined;
}

type Fields = Record<string, unknown>;

function answer(res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

function parseBody(req: IncomingMessage, text: string): Fields {
  if ((req.headers['content-type'] ?? '').startsWith('application/json')) return JSON.parse(text) as Fields;
  return Object.fromEntries(new URLSearchParams(text));
}

function route(backend: PeerBackend, path: string, f: Fields): [number, object] {
  const tag = Number(f.tag);
  const val = f.val;
  const room = f.id === undefined ? undefined : String(f.id);
  if (path === '/room/join') {
    if (room === undefined || typeof f.wsId !== 'string') return [400, { code: 400, msg: 'id and wsId are required' }];
    const changed = backend.join(room, f.wsId);
    if (changed === undefined) return [404, { code: 404, msg: `wsId "${f.wsId}" is not connected` }];
    return [200, { code: 0, msg: 'ok', data: { room, wsId: f.wsId, changed } }];
  }
  if (typeof val !== 'string' || val === '' || !Number.isInteger(tag) || tag < 2) return [400, { code: 400, msg: 'val and tag are required' }];
  if (path === '/push/all') return [200, { code: 0, msg: 'ok', data: { seq: backend.pushAll(tag, val) } }];
  if (room === undefined) return [400, { code: 400, msg: 'id is required' }];
  return [200, { code: 0, msg: 'ok', data: { room, seq: backend.pushRoom(room, tag, val) } }];
}

export function createApiServer(backend: PeerBackend): Server {
  return createServer((req, res) => {
    const path = req.url ?? '';
    if (path !== '/push/all' && path !== '/push/room' && path !== '/room/join') return answer(res, 404, { code: 404, msg: `no route ${path}` });
    if (req.method !== 'POST') return answer(res, 405, { code: 405, msg: `use POST on ${path}` });
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let fields: Fields;
      try {
        fields = parseBody(req, Buffer.concat(chunks).toString());
      } catch {
        return answer(res, 400, { code: 400, msg: 'body is not valid JSON' });
      }
      const [status, body] = route(backend, path, fields);
      answer(res, status, body);
    });
  });
}

/** Counts `seq` per stream, as roomcast does. */
export class Sequences {
  private readonly seqs = new Map<string, number>();

  next(stream: string): number {
    const seq = (this.seqs.get(stream) ?? 0) + 1;
    this.seqs.set(stream, seq);
    return seq;
  }
}

export interface PeerFlags {
  host: string;
  gatewayPort: number;
  logicPort: number;
}

export function readPeerFlags(argv: string[]): PeerFlags {
  const { values } = parseArgs({
    args: argv,
    options: { host: { type: 'string', default: '127.0.0.1' }, 'gateway-port': { type: 'string', default: '0' }, 'logic-port': { type: 'string', default: '0' } },
  });
  const port = (name: string, value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n > 65535) throw new Error(`--${name} must be a port from 0 to 65535, got ${JSON.stringify(value)}`);
    return n;
  };
  return { host: values.host, gatewayPort: port('gateway-port', values['gateway-port']), logicPort: port('logic-port', values['logic-port']) };
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog: 4096 }, () => resolve((server.address() as AddressInfo).port));
  });
}

/** Listens, prints roomcast's "listening" line (JSON with `gateway` and `logic`), and exits on SIGTERM/SIGINT. */
export async function servePeer(name: string, flags: PeerFlags, gateway: Server, api: Server, wsPath: string, stop: () => void): Promise<void> {
  const gatewayPort = await listen(gateway, flags.host, flags.gatewayPort);
  const logicPort = await listen(api, flags.host, flags.logicPort);
  const line = { level: 30, msg: `${name} listening`, gateway: `ws://${flags.host}:${gatewayPort}${wsPath}`, logic: `http://${flags.host}:${logicPort}` };
  process.stdout.write(`${JSON.stringify(line)}\n`);
  const exit = (): void => {
    stop();
    api.closeAllConnections();
    gateway.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
}
