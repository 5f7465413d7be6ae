/**
 * `roomcast start`: a gateway and the logic API in one process, joined by a
 * broker (the embedded memory engine unless another is given).
 */
import type { Logger } from 'pino';
import type { Broker } from './broker/broker.js';
import { MemoryBroker } from './broker/memory.js';
import type { ServerConfig } from './config.js';
import { GatewayServer } from './gateway/server.js';
import { LogicServer } from './logic/server.js';
import { VERSION } from './version.js';

export interface RunningServer {
  gateway: GatewayServer;
  logic: LogicServer;
  broker: Broker;
  gatewayUrl: string;
  logicUrl: string;
  close(): Promise<void>;
}

function urlHost(host: string): string {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return shown.includes(':') ? `[${shown}]` : shown;
}

export async function startStandalone(config: ServerConfig, log: Logger, broker: Broker = new MemoryBroker()): Promise<RunningServer> {
  const gateway = new GatewayServer(
    {
      host: config.host,
      port: config.gatewayPort,
      path: config.wsPath,
      heartbeatTimeoutMs: config.heartbeatTimeout,
      maxPayload: config.maxPayload,
      sendBufferLimit: config.sendBufferLimit,
      allowClientJoin: config.allowClientJoin,
    },
    broker,
    log,
  );
  let gatewayListening = false;
  const logic = new LogicServer(
    { host: config.host, port: config.logicPort, apiKey: config.apiKey, bodyLimit: config.bodyLimit, trustProxy: config.trustProxy, version: VERSION },
    broker,
    log,
    () => (gatewayListening ? undefined : 'the gateway is not listening'),
  );
  const gatewayAddress = await gateway.listen();
  gatewayListening = true;
  let logicAddress;
  try {
    logicAddress = await logic.listen();
  } catch (err) {
    await gateway.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    gateway,
    logic,
    broker,
    gatewayUrl: `ws://${urlHost(config.host)}:${gatewayAddress.port}${config.wsPath}`,
    logicUrl: `http://${urlHost(config.host)}:${logicAddress.port}`,
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
