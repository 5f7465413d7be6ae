/** Helpers for driving the SDK (client/) against real servers. */
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ClientEvents } from '../../client/types.js';
import { runNode } from './process.js';

interface Listenable {
  on<K extends keyof ClientEvents>(event: K, listener: (value: ClientEvents[K]) => void): () => void;
}

/** Resolves with the next event that passes `test`, or rejects after `timeoutMs`. */
export function nextEvent<K extends keyof ClientEvents>(
  client: Listenable,
  event: K,
  test: (value: ClientEvents[K]) => boolean = () => true,
  timeoutMs = 5000,
): Promise<ClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching ${String(event)} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = client.on(event, (value) => {
      if (!test(value)) return;
      clearTimeout(timer);
      off();
      resolve(value);
    });
  });
}

/** Records every event of one kind. */
export function record<K extends keyof ClientEvents>(client: Listenable, event: K): ClientEvents[K][] {
  const seen: ClientEvents[K][] = [];
  client.on(event, (value) => seen.push(value));
  return seen;
}

export interface ScriptOptions {
  /** The welcome's `heartbeat` (default 10000). */
  heartbeatMs?: number;
  /** Port to listen on (default: any free one). */
  port?: number;
  /** Fields added to the welcome of the `index`-th connection (e.g. `resume`, `epoch`, `seq`); false: send no welcome. */
  welcome?: ((index: number) => Record<string, unknown>) | false;
}

/**
 * A plain `ws` server standing in for a gateway that misbehaves on purpose:
 * it sends a welcome frame (unless told not to), then does what `onConnection` says.
 */
export class ScriptedGateway {
  readonly sockets: WebSocket[] = [];
  readonly received: string[] = [];
  /** The request URL of each connection (path and query: the token the client sent). */
  readonly urls: string[] = [];
  private constructor(private readonly wss: WebSocketServer) {}

  static async start(onConnection: (ws: WebSocket, index: number) => void, options: ScriptOptions = {}): Promise<ScriptedGateway> {
    const { heartbeatMs = 10_000, port = 0, welcome = () => ({}) } = options;
    const wss = new WebSocketServer({ host: '127.0.0.1', port });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const gateway = new ScriptedGateway(wss);
    wss.on('connection', (ws, request) => {
      const index = gateway.sockets.push(ws) - 1;
      gateway.urls.push(request.url ?? '');
      ws.on('message', (data: Buffer) => gateway.received.push(data.toString()));
      if (welcome !== false) ws.send(JSON.stringify({ type: 0, op: 'welcome', data: `ws-${index}`, wsId: `ws-${index}`, heartbeat: heartbeatMs, ...welcome(index) }));
      onConnection(ws, index);
    });
    return gateway;
  }

  get port(): number {
    return (this.wss.address() as AddressInfo).port;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/connect`;
  }

  get connections(): number {
    return this.sockets.length;
  }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

export interface ScriptRun {
  /** What the script printed, one entry a line. */
  lines: string[];
  /** How long the process lived, in ms. */
  ms: number;
  /** False when the process was still running after `limitMs` and was killed. */
  exited: boolean;
  stderr: string;
}

/**
 * Runs `body` in a Node process of its own, after `import { RoomcastClient } from 'roomcast/client'`
 * (this package's build), and tells how long the process lived: a client that leaves a timer
 * or a socket behind keeps its process from exiting by itself. Killed after `limitMs`.
 */
export async function runClientScript(body: string, limitMs: number): Promise<ScriptRun> {
  const script = `import { RoomcastClient } from 'roomcast/client';\n${body}`;
  const run = await runNode(['--input-type=module', '-e', script], { limitMs, cwd: new URL('../../..', import.meta.url) });
  return { lines: run.stdout.split('\n').filter((l) => l !== ''), ms: run.ms, exited: !run.killed, stderr: run.stderr };
}
