#!/usr/bin/env node
/** The `roomcast` command: start | gateway | logic | token | bench. */
import cluster from 'node:cluster';
import { Command } from 'commander';
import type { Logger } from 'pino';
import { createBroker } from './broker/create.js';
import type { Broker, ProcessRole } from './broker/broker.js';
import {
  addGatewayOptions,
  addLogicOptions,
  addServerOptions,
  addTokenOptions,
  readGatewayConfig,
  readLogicConfig,
  readServerConfig,
  readTokenConfig,
  type CommonConfig,
} from './config.js';
import { runCluster } from './cluster.js';
import { createLogger } from './log.js';
import { gatewayWarnings, logicWarnings, serverWarnings } from './flag-rules.js';
import { createGateway, createLogic, gatewayUrl, logicUrl, startStandalone } from './standalone.js';
import { weakSecretWarning } from './gateway/auth.js';
import { signClientToken } from './token.js';
import { VERSION } from './version.js';
import { errorMessage } from './error-message.js';
import { listenOn } from './listen-error.js';

/** Hard ceiling for a graceful shutdown (PROTOCOL: exit within 5 s). */
const SHUTDOWN_DEADLINE_MS = 4500;

interface Serving {
  /** Fields of the start line, e.g. `{ gateway: 'ws://...' }`; undefined for a cluster worker, which logs nothing. */
  where?: Record<string, unknown>;
  close(): Promise<void>;
}

function exitOnSignals(log: Logger, close: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    setTimeout(() => {
      log.warn('shutdown deadline passed, exiting');
      process.exit(0);
    }, SHUTDOWN_DEADLINE_MS).unref();
    close().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  // SIGHUP too: left to Node's default it ends the process outright, so its clients see 1006 and a
  // --workers primary leaves a hung worker running
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, stop);
}

function guardProcess(log: Logger): void {
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
}

/** Logs each warning of the flags' rules, starts what `begin` starts, logs one line saying where it listens, and stops it on SIGTERM/SIGINT/SIGHUP. */
async function serve(logLevel: string, warnings: string[], begin: (log: Logger) => Promise<Serving>): Promise<void> {
  const log = createLogger(logLevel);
  guardProcess(log);
  for (const warning of warnings) log.warn(warning);
  try {
    const serving = await begin(log);
    exitOnSignals(log, () => serving.close());
    if (serving.where !== undefined) {
      const places = Object.entries(serving.where)
        .filter(([, v]) => typeof v === 'string' && v.includes('://'))
        .map(([k, v]) => `${k} ${String(v)}`);
      log.info({ ...serving.where, version: VERSION }, `roomcast listening: ${places.join(', ')}`);
    }
  } catch (err) {
    log.fatal({ err }, `could not start: ${errorMessage(err)}`);
    // with logs off, the exit code alone would not say why
    if (!log.isLevelEnabled('fatal')) process.stderr.write(`error: could not start: ${errorMessage(err)}\n`);
    process.exit(1);
  }
}

/** Reads a command's config; a setting that does not fit ends the command with commander's error line. */
function readConfig<T>(cmd: Command, read: (cmd: Command) => T): T {
  try {
    return read(cmd);
  } catch (err) {
    return cmd.error(`error: ${errorMessage(err)}`);
  }
}

const program = new Command('roomcast').description('Real-time message push server: WebSocket gateway + HTTP logic API').version(VERSION);

const start = addServerOptions(
  new Command('start').description('run the gateway and the logic API in one process (embedded memory broker unless --broker redis://...)'),
).action(async (_opts, cmd: Command) => {
  const config = readConfig(cmd, readServerConfig);
  // a worker reads the same flags: the primary alone warns of them
  await serve(config.logLevel, cluster.isPrimary ? serverWarnings(config) : [], async (log) => {
    if (config.workers > 0) {
      const handle = await runCluster(config, log);
      return { where: handle.started && { ...handle.started, engine: 'redis' }, close: () => handle.close() };
    }
    const server = await startStandalone(config, log);
    return { where: { gateway: server.gatewayUrl, logic: server.logicUrl, engine: server.broker.engine }, close: () => server.close() };
  });
});

interface ServerOnBroker {
  listen(): Promise<{ port: number }>;
  close(): Promise<void>;
}

/** Runs one server on its own broker connection; `where` names it in the start line once it listens. */
async function serveOnBroker<S extends ServerOnBroker>(
  config: CommonConfig & { port: number },
  role: ProcessRole,
  make: (broker: Broker, log: Logger) => S,
  where: (port: number, server: S) => Record<string, unknown>,
  warnings: string[],
): Promise<void> {
  await serve(config.logLevel, warnings, async (log) => {
    const broker = await createBroker(config, log, role);
    const server = make(broker, log);
    const { port } = await listenOn(() => server.listen(), config.port, '--port');
    return {
      where: { ...where(port, server), engine: broker.engine },
      async close() {
        await server.close();
        await broker.close();
      },
    };
  });
}

const gateway = addGatewayOptions(new Command('gateway').description('run a WebSocket gateway node (use --broker redis://... to join other nodes)')).action(
  async (_opts, cmd: Command) => {
    const config = readConfig(cmd, readGatewayConfig);
    await serveOnBroker(
      config,
      'gateway',
      (broker, log) => createGateway(config, broker, log),
      (port, server) => ({ gateway: gatewayUrl(config, port), node: server.node.nodeId }),
      gatewayWarnings(config),
    );
  },
);

const logic = addLogicOptions(new Command('logic').description('run the logic HTTP API (use --broker redis://... to reach gateway nodes)')).action(
  async (_opts, cmd: Command) => {
    const config = readConfig(cmd, readLogicConfig);
    await serveOnBroker(config, 'logic', (broker, log) => createLogic(config, broker, log), (port) => ({ logic: logicUrl(config, port) }), logicWarnings(config));
  },
);

const token = addTokenOptions(
  new Command('token').description("print a client token (HS256 JWT) signed with the gateway's --jwt-secret, for trying --auth by hand"),
).action(async (_opts, cmd: Command) => {
  const request = readConfig(cmd, readTokenConfig);
  const warning = weakSecretWarning(request.secret);
  if (warning !== undefined) process.stderr.write(`warning: ${warning}\n`);
  process.stdout.write(`${await signClientToken(request)}\n`);
});

program.addCommand(start).addCommand(gateway).addCommand(logic).addCommand(token);
program
  .command('bench')
  .description('measure fan-out side by side with Socket.IO and a bare ws loop (roomcast bench --help)')
  .argument('[flags...]')
  .helpOption(false)
  .allowUnknownOption()
  .action(async (flags: string[]) => {
    const { runBench } = await import('../bench/main.js');
    process.exitCode = await runBench(flags);
  });
if (cluster.isPrimary) {
  program.addHelpText(
    'after',
    `\nOptions of "roomcast start" (each also read from ROOMCAST_<FLAG_IN_UPPER_SNAKE>):\n${start.helpInformation().split('Options:\n')[1]}` +
      '\nSee "roomcast gateway --help" and "roomcast logic --help" for the flags of separate processes.\n',
  );
}

await program.parseAsync();
