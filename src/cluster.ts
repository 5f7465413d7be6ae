/**
 * `roomcast start --workers N --broker redis://...`: the primary process runs
 * the logic API and forks N gateway workers that share the WebSocket port
 * (node:cluster hands each new connection to one worker). Workers reach each
 * other, and logic, only through Redis.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { createBroker } from './broker/create.js';
import { gatewayPart, logicPart, type ServerConfig } from './config.js';
import { createGateway, createLogic, gatewayUrl, logicUrl } from './standalone.js';

interface ListeningMessage {
  type: 'roomcast:listening';
  port: number;
}

function isListening(message: unknown): message is ListeningMessage {
  return typeof message === 'object' && message !== null && (message as ListeningMessage).type === 'roomcast:listening';
}

export interface ClusterHandle {
  /** Where it listens, for the start line; undefined in a worker. */
  started?: { gateway: string; logic: string; workers: number };
  close(): Promise<void>;
}

const RESPAWN_DELAY_MS = 1000;

/** Runs one gateway in a worker process; reports its port to the primary. */
async function runWorker(config: ServerConfig, log: Logger): Promise<ClusterHandle> {
  const broker = await createBroker(config, log);
  const gateway = createGateway(gatewayPart(config), broker, log);
  const { port } = await gateway.listen();
  process.send?.({ type: 'roomcast:listening', port } satisfies ListeningMessage);
  return {
    async close() {
      await gateway.close();
      await broker.close();
    },
  };
}

async function runPrimary(config: ServerConfig, log: Logger): Promise<ClusterHandle> {
  const broker = await createBroker(config, log);
  const workers = new Set<Worker>();
  let stopping = false;
  let gatewayPort: number | undefined;

  const fork = (): Promise<number> => {
    const worker = cluster.fork();
    workers.add(worker);
    worker.on('exit', (code, signal) => {
      workers.delete(worker);
      if (stopping) return;
      log.error({ pid: worker.process.pid, code, signal }, 'gateway worker died; starting another');
      setTimeout(() => {
        if (!stopping) fork().catch((err: unknown) => log.error({ err }, 'could not restart a gateway worker'));
      }, RESPAWN_DELAY_MS);
    });
    return new Promise((resolve, reject) => {
      worker.on('message', (message: unknown) => {
        if (isListening(message)) resolve(message.port);
      });
      worker.once('exit', (code) => reject(new Error(`gateway worker exited with code ${code} before listening`)));
    });
  };

  const logic = createLogic(logicPart(config), broker, log, () => (workers.size > 0 ? undefined : 'no gateway worker is running'));
  const logicPort = (await logic.listen()).port;
  try {
    const ports = await Promise.all(Array.from({ length: config.workers }, fork));
    gatewayPort = ports[0];
  } catch (err) {
    stopping = true;
    for (const worker of workers) worker.kill('SIGTERM');
    await logic.close();
    await broker.close();
    throw err;
  }

  return {
    started: { gateway: gatewayUrl(gatewayPart(config), gatewayPort), logic: logicUrl(logicPart(config), logicPort), workers: config.workers },
    async close() {
      stopping = true;
      const exited = [...workers].map((worker) => new Promise<void>((resolve) => (worker.isDead() ? resolve() : worker.once('exit', () => resolve()))));
      for (const worker of workers) worker.kill('SIGTERM');
      await Promise.all([logic.close(), ...exited]);
      await broker.close();
    },
  };
}

export function runCluster(config: ServerConfig, log: Logger): Promise<ClusterHandle> {
  return cluster.isPrimary ? runPrimary(config, log) : runWorker(config, log.child({ worker: cluster.worker?.id }));
}
