/** Running the bench's parts against servers made to misbehave: a preload module in roomcast, or a raw WebSocket server. */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runSettings } from '../../bench/main.js';
import { parseBenchFlags } from '../../bench/options.js';
import { runTarget, type TargetResult } from '../../bench/run-target.js';
import { buildScenario } from '../../bench/scenarios.js';
import { targetRuns } from '../../bench/variants.js';

export { alive } from './process.js';

/**
 * Runs the first scenario and target of `flags` (bench flags) with `preload`,
 * a module's source, imported first into every server process (a cluster's
 * workers too); how long the run took, in seconds, beside its result.
 */
export async function runTargetWithPreload(preload: string, flags: string[]): Promise<{ result: TargetResult; seconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'roomcast-bench-preload-'));
  const file = join(dir, 'preload.mjs');
  writeFileSync(file, preload);
  try {
    const options = parseBenchFlags([...flags, '--no-progress']);
    const [run] = targetRuns(options.targets, options.workers, options.history, options.broker);
    const settings = { ...runSettings(options), serverNodeArgs: ['--import', pathToFileURL(file).href] };
    const started = performance.now();
    const result = await runTarget(run, buildScenario(options.scenarios[0], options.sizes, options.seed), settings, () => undefined);
    return { result, seconds: (performance.now() - started) / 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function handshakeAnswer(head: string): string {
  const key = /^sec-websocket-key: *(\S+)/im.exec(head)?.[1] ?? '';
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`;
}

/**
 * A WebSocket server on a raw TCP socket, to send what no real server would:
 * `opened` is called once a client's handshake is answered, with its socket
 * and request head; `received` with each chunk the client sends after it.
 */
export async function rawWebSocketServer(
  opened: (socket: Socket, head: string) => void,
  received: (socket: Socket, chunk: Buffer) => void = () => undefined,
): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      if (head.endsWith('\r\n\r\n')) return received(socket, chunk);
      head += chunk.toString('latin1');
      if (!head.endsWith('\r\n\r\n')) return;
      socket.write(handshakeAnswer(head));
      opened(socket, head);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
