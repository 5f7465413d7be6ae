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
import { errorMessage } from './error-message.js';
import { listenOn } from './listen-error.js';

interface ListeningMessage {
  type: 'roomcast:listening';
  port: number;
}

/** A worker that could not start says why, for the primary to log: the one line a failed start logs. */
interface FailedMessage {
  type: 'roomcast:failed';
  reason: string;
}

/** Whether a worker's message is the one of type `type`. */
function isMessage<M extends ListeningMessage | FailedMessage>(message: unknown, type: M['type']): message is M {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;
}

export interface ClusterHandle {
  /** Where it listens, for the start line; undefined in a worker. */
  started?: { gateway: string; logic: string; workers: number };
  close(): Promise<void>;
}

/** The wait before replacing a dead worker; it doubles with each worker that dies young, up to the max. */
const RESPAWN_DELAY_MS = 1000;
const MAX_RESPAWN_DELAY_MS = 30_000;
/** A worker that lived this long before dying resets the doubling: it was not a crash loop. */
const STABLE_WORKER_MS = 30_000;
/** On shutdown, how long workers have to close their clients before they are killed (the process exits by 5 s). */
const WORKER_STOP_MS = 4000;

/** Runs one gateway in a worker process; reports its port to the primary, or why it could not start and exits 1. */
async function runWorker(config: ServerConfig, log: Logger): Promise<ClusterHandle> {
  try {
    const broker = await createBroker(config, log, 'gateway');
    const gateway = createGateway(gatewayPart(config), broker, log);
    const { port } = await listenOn(() => gateway.listen(), config.gatewayPort, '--gateway-port');
    process.send?.({ type: 'roomcast:listening', port } satisfies ListeningMessage);
    return {
      async close() {
        await gateway.close();
        await broker.close();
      },
    };
  } catch (err) {
    const reason = errorMessage(err);
    // sent before exiting, so the primary has it when it sees the exit
    await new Promise<void>((resolve) => process.send?.({ type: 'roomcast:failed', reason } satisfies FailedMessage, undefined, {}, () => resolve()) ?? resolve());
    process.exit(1);
  }
}

/**
 * SIGTERM each worker (straight to the process: cluster's worker.kill() waits
 * for a disconnect a hung worker never answers), then SIGKILL any still running
 * after WORKER_STOP_MS, so that no worker outlives the primary.
 */
async function stopWorkers(workers: Set<Worker>, log: Logger): Promise<void> {
  const running = [...workers].filter((worker) => !worker.isDead());
  const exited = running.map((worker) => new Promise<void>((resolve) => worker.process.once('exit', () => resolve())));
  for (const worker of running) worker.process.kill('SIGTERM');
  const stragglers = setTimeout(() => {
    for (const worker of running.filter((w) => !w.isDead())) {
      log.warn({ pid: worker.process.pid }, `gateway worker did not stop within ${WORKER_STOP_MS} ms; killing it`);
      worker.process.kill('SIGKILL');
    }
  }, WORKER_STOP_MS);
  await Promise.all(exited);
  clearTimeout(stragglers);
}

async function runPrimary(config: ServerConfig, log: Logger): Promise<ClusterHandle> {
  const broker = await createBroker(config, log, 'logic');
  const workers = new Set<Worker>();
  /** The workers that listen: one still starting (a replacement waiting for Redis, say) serves no one yet. */
  const listeningWorkers = new Set<Worker>();
  // whatever ends the primary (the shutdown deadline, a fatal error), its workers end with it
  process.on('exit', () => {
    for (const worker of workers) if (!worker.isDead()) worker.process.kill('SIGKILL');
  });
  let stopping = false;
  let gatewayPort: number | undefined;

  let youngDeaths = 0;

  const respawnAfter = (lifetimeMs: number): number => {
    youngDeaths = lifetimeMs < STABLE_WORKER_MS ? youngDeaths + 1 : 0;
    return Math.min(MAX_RESPAWN_DELAY_MS, RESPAWN_DELAY_MS * 2 ** Math.max(0, youngDeaths - 1));
  };

  /** Forks a worker; resolves with its port once it listens. One of the first that dies before listening rejects, failing the start; any other worker's death is logged and it is replaced. */
  const fork = (first: boolean): Promise<number> => {
    const worker = cluster.fork();
    const forkedAt = Date.now();
    let listening = false;
    let failure: string | undefined;
    workers.add(worker);
    worker.on('exit', (code, signal) => {
      workers.delete(worker);
      listeningWorkers.delete(worker);
      if (stopping || (first && !listening)) return;
      const delayMs = respawnAfter(Date.now() - forkedAt);
      const how = { pid: worker.process.pid, code, signal, reason: failure, delayMs };
      // exit 0: the worker stopped on a signal sent to it (by an operator, or to the whole group just before the primary's own)
      if (code === 0) log.warn(how, `gateway worker stopped on its own (exit code 0, as after a signal sent to it); starting another in ${delayMs} ms`);
      else log.error(how, `gateway worker died; starting another in ${delayMs} ms`);
      setTimeout(() => {
        // its death, should it die, is logged above, reason and all (or not at all, on a shutdown that stopped it)
        if (!stopping) fork(false).catch(() => undefined);
      }, delayMs).unref();
    });
    return new Promise((resolve, reject) => {
      worker.on('message', (message: unknown) => {
        if (isMessage<FailedMessage>(message, 'roomcast:failed')) failure = message.reason;
        if (!isMessage<ListeningMessage>(message, 'roomcast:listening')) return;
        listening = true;
        listeningWorkers.add(worker);
        resolve(message.port);
      });
      worker.once('exit', (code, signal) => reject(new Error(failure ?? `gateway worker exited (${signal ?? `code ${code}`}) before listening`)));
    });
  };

  const logic = createLogic(logicPart(config), broker, log, () => (listeningWorkers.size > 0 ? undefined : 'no gateway worker is listening'));
  const logicPort = (await listenOn(() => logic.listen(), config.logicPort, '--logic-port')).port;
  try {
    const ports = await Promise.all(Array.from({ length: config.workers }, () => fork(true)));
    gatewayPort = ports[0];
  } catch (err) {
    stopping = true;
    await stopWorkers(workers, log);
    await logic.close();
    await broker.close();
    throw err;
  }

  return {
    started: { gateway: gatewayUrl(gatewayPart(config), gatewayPort), logic: logicUrl(logicPart(config), logicPort), workers: config.workers },
    async close() {
      stopping = true;
      await Promise.all([logic.close(), stopWorkers(workers, log)]);
      await broker.close();
    },
  };
}

export function runCluster(config: ServerConfig, log: Logger): Promise<ClusterHandle> {
  return cluster.isPrimary ? runPrimary(config, log) : runWorker(config, log.child({ worker: cluster.worker?.id }));
}
