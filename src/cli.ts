#!/usr/bin/env node
/** The `roomcast` command. */
import { Command } from 'commander';
import type { Logger } from 'pino';
import { addServerOptions, readServerConfig } from './config.js';
import { createLogger } from './log.js';
import { startStandalone } from './standalone.js';
import { VERSION } from './version.js';

/** Hard ceiling for a graceful shutdown (PROTOCOL: exit within 5 s). */
const SHUTDOWN_DEADLINE_MS = 4500;

function exitOnSignals(log: Logger, close: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(1);
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
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function guardProcess(log: Logger): void {
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
}

const program = new Command('roomcast')
  .description('Real-time message push server: WebSocket gateway + HTTP logic API')
  .version(VERSION);

const start = addServerOptions(
  new Command('start').description('run the gateway and the logic API in one process (embedded memory broker)'),
).action(async (_opts, cmd: Command) => {
  const config = readServerConfig(cmd);
  const log = createLogger(config.logLevel);
  guardProcess(log);
  try {
    const server = await startStandalone(config, log);
    exitOnSignals(log, () => server.close());
    log.info({ gateway: server.gatewayUrl, logic: server.logicUrl, engine: server.broker.engine, version: VERSION }, `roomcast listening: gateway ${server.gatewayUrl}, logic ${server.logicUrl}`);
  } catch (err) {
    log.fatal({ err }, 'could not start');
    process.exit(1);
  }
});

program.addCommand(start);
program.addHelpText('after', `\nOptions of "roomcast start" (each also read from ROOMCAST_<FLAG_IN_UPPER_SNAKE>):\n${start.helpInformation().split('Options:\n')[1]}`);

await program.parseAsync();
