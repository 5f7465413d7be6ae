/** Starts a real roomcast (gateway + logic on real sockets) inside the test process. */
import { pino } from 'pino';
import { DEFAULTS, type ServerConfig } from '../../src/config.js';
import { startStandalone, type RunningServer } from '../../src/standalone.js';

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

export async function startServer(overrides: Partial<ServerConfig> = {}): Promise<TestServer> {
  const config = testConfig(overrides);
  return startStandalone(config, pino({ level: config.logLevel }));
}
