/** Starts a real roomcast (gateway + logic on real sockets) inside the test process. */
import { after, before } from 'node:test';
import { pino, type Logger } from 'pino';
import { DEFAULTS, type ServerConfig } from '../../src/config.js';
import { startStandalone, type RunningServer } from '../../src/standalone.js';
import type { LogLine } from './process.js';

export type TestServer = RunningServer;

export function testConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  return {
    ...DEFAULTS,
    host: '127.0.0.1',
    gatewayPort: 0,
    logicPort: 0,
    logLevel: 'silent',
    ...overrides,
  };
}

/** `log` replaces the logger at --log-level (see capturedLog). */
export async function startServer(overrides: Partial<ServerConfig> = {}, log?: Logger): Promise<TestServer> {
  const config = testConfig(overrides);
  return startStandalone(config, log ?? pino({ level: config.logLevel }));
}

/** A logger at `level` that keeps each line it writes, parsed, in `lines`: a test waits for what the server said. */
export function capturedLog(level: string): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return { log: pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) }), lines };
}

/** Runs `body` with a server of its own, and closes the server when `body` ends, however it ends. */
export async function withServer<T>(overrides: Partial<ServerConfig>, body: (server: TestServer) => Promise<T>, log?: Logger): Promise<T> {
  const server = await startServer(overrides, log);
  try {
    return await body(server);
  } finally {
    await server.close();
  }
}

/** A server started before the tests of the calling suite and closed after them: read its fields inside the tests. */
export function serverPerSuite(overrides: Partial<ServerConfig> = {}): TestServer {
  const server = {} as TestServer;
  before(async () => {
    Object.assign(server, await startServer(overrides));
  });
  after(() => server.close?.());
  return server;
}
