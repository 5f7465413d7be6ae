/**
 * Composes the servers of each command: a gateway, a logic API, or both in one
 * process, each on the broker the config names.
 */
import type { Logger } from 'pino';
import type { Broker } from './broker/broker.js';
import { createBroker } from './broker/create.js';
import { gatewayPart, logicPart, type GatewayConfig, type LogicConfig, type ServerConfig } from './config.js';
import { GatewayServer } from './gateway/server.js';
import { listenOn } from './listen-error.js';
import { LogicServer } from './logic/server.js';
import { WatchedTlsFiles } from './tls-reload.js';
import { VERSION } from './version.js';

export interface RunningServer {
  gateway: GatewayServer;
  logic: LogicServer;
  broker: Broker;
  gatewayUrl: string;
  logicUrl: string;
  /** The TLS files both servers serve (and watch for a renewal), with --tls-cert. */
  tlsFiles: WatchedTlsFiles | undefined;
  close(): Promise<void>;
}

export function urlHost(host: string): string {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return shown.includes(':') ? `[${shown}]` : shown;
}

/** Settings both servers share (from the common config). */
interface SharedSettings {
  tlsCert?: string;
  tlsKey?: string;
  tlsWatchInterval?: number;
  trustProxy?: string;
}

export function gatewayUrl(config: GatewayConfig & SharedSettings, port: number): string {
  return `${config.tlsCert === undefined ? 'ws' : 'wss'}://${urlHost(config.host)}:${port}${config.wsPath}`;
}

export function logicUrl(config: LogicConfig & SharedSettings, port: number): string {
  return `${config.tlsCert === undefined ? 'http' : 'https'}://${urlHost(config.host)}:${port}`;
}

/** The certificate and key named by --tls-cert / --tls-key, read for the servers of this process, which watch them for a renewal. */
function readTls(config: SharedSettings, log: Logger): WatchedTlsFiles | undefined {
  if (config.tlsCert === undefined || config.tlsKey === undefined) return undefined;
  return new WatchedTlsFiles({ cert: config.tlsCert, key: config.tlsKey }, config.tlsWatchInterval ?? 0, log);
}

export function createGateway(config: GatewayConfig & SharedSettings, broker: Broker, log: Logger, tls = readTls(config, log)): GatewayServer {
  return new GatewayServer({ ...config, tls }, broker, log);
}

export function createLogic(
  config: LogicConfig & SharedSettings,
  broker: Broker,
  log: Logger,
  notReadyReason?: () => string | undefined,
  gateway?: () => { port: number; path: string } | undefined,
  tls = readTls(config, log),
): LogicServer {
  return new LogicServer(
    {
      host: config.host,
      port: config.port,
      apiKey: config.apiKey,
      bodyLimit: config.bodyLimit,
      trustProxy: config.trustProxy,
      publicMetrics: config.publicMetrics,
      maxValSize: config.maxValSize,
      idempotencyWindowMs: config.idempotencyWindow,
      tls,
      version: VERSION,
      gateway,
    },
    broker,
    log,
    notReadyReason,
  );
}

/** `roomcast start`: gateway + logic in this process, on the broker the config names. */
export async function startStandalone(config: ServerConfig, log: Logger): Promise<RunningServer> {
  // one read and one watch of the files for both servers, before the broker: a bad file leaves nothing to close
  const tlsFiles = readTls(config, log);
  const broker = await createBroker(config, log, 'gateway+logic');
  const gatewayConfig = gatewayPart(config);
  const logicConfig = logicPart(config);
  const gateway = createGateway(gatewayConfig, broker, log, tlsFiles);
  let gatewayListening = false;
  const logic = createLogic(
    logicConfig,
    broker,
    log,
    () => (gatewayListening ? undefined : 'the gateway is not listening'),
    () => (gatewayListening ? { port: gateway.address.port, path: gatewayConfig.wsPath } : undefined),
    tlsFiles,
  );
  let gatewayPort: number;
  let logicPort: number;
  try {
    gatewayPort = (await listenOn(() => gateway.listen(), config.gatewayPort, '--gateway-port')).port;
    gatewayListening = true;
    logicPort = (await listenOn(() => logic.listen(), config.logicPort, '--logic-port')).port;
  } catch (err) {
    await Promise.allSettled([gateway.close(), logic.close()]);
    await broker.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    gateway,
    logic,
    broker,
    gatewayUrl: gatewayUrl(gatewayConfig, gatewayPort),
    logicUrl: logicUrl(logicConfig, logicPort),
    tlsFiles,
    close() {
      closing ??= (async () => {
        gatewayListening = false;
        await Promise.all([gateway.close(), logic.close()]);
        await broker.close();
      })();
      return closing;
    },
  };
}
