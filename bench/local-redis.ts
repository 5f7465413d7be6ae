/** A redis-server on this machine, as the bench (--broker auto) and the tests run it: is it installed, its flags, a free port, PING. */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';

export function redisServerInstalled(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** No persistence: every start is empty, and nothing is written to disk. */
export function redisServerArgs(host: string, port: number): string[] {
  return ['--bind', host, '--port', String(port), '--save', '', '--appendonly', 'no', '--loglevel', 'warning'];
}

/** A port nothing listens on at `host` right now. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** True when a Redis server answers PING at host:port within `timeoutMs` (half a second unless told). */
export function redisAnswersPing(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(timeoutMs);
    socket.once('data', (d) => {
      socket.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('error', () => resolve(false));
    // closed without an answer (after an answer, the promise is settled already)
    socket.once('close', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}
