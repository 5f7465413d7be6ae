/**
 * Command-line flags of the server commands, each also read from the
 * environment as ROOMCAST_<FLAG_IN_UPPER_SNAKE>, validated once into a typed
 * config. The flag table here is the one place a new setting is added.
 */
import { Command, InvalidArgumentError, Option } from 'commander';

export interface ServerConfig {
  host: string;
  gatewayPort: number;
  logicPort: number;
  wsPath: string;
  heartbeatTimeout: number;
  apiKey: string | undefined;
  maxPayload: number;
  sendBufferLimit: number;
  bodyLimit: number;
  allowClientJoin: boolean;
  trustProxy: string | undefined;
  logLevel: string;
}

export const DEFAULTS = {
  host: '0.0.0.0',
  gatewayPort: 8888,
  logicPort: 9999,
  wsPath: '/connect',
  heartbeatTimeout: 10_000,
  maxPayload: 64 * 1024,
  sendBufferLimit: 1024 * 1024,
  bodyLimit: 1024 * 1024,
  logLevel: 'info',
} as const;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function envName(longFlag: string): string {
  return `ROOMCAST_${longFlag.replace(/^--/, '').replace(/-/g, '_').toUpperCase()}`;
}

function integer(min: number, max: number, what: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`${what} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${what} must be an integer from ${min} to ${max}, got ${value}`);
    return n;
  };
}

function port(value: string): number {
  return integer(0, 65535, 'a port')(value);
}

function wsPath(value: string): string {
  if (!/^\/[A-Za-z0-9_.~/-]*$/.test(value)) throw new InvalidArgumentError(`the path must start with / and hold only A-Z a-z 0-9 _ . ~ / -, got ${JSON.stringify(value)}`);
  return value;
}

function logLevel(value: string): string {
  if (!LOG_LEVELS.includes(value)) throw new InvalidArgumentError(`the log level must be one of ${LOG_LEVELS.join(', ')}`);
  return value;
}

function option(flags: string, description: string, parse?: (value: string) => unknown, defaultValue?: unknown): Option {
  const long = flags.split(/[ ,]+/).find((f) => f.startsWith('--')) ?? flags;
  const opt = new Option(flags, description).env(envName(long));
  if (parse !== undefined) opt.argParser(parse);
  if (defaultValue !== undefined) opt.default(defaultValue);
  return opt;
}

const BOOLEAN_WORDS: Record<string, boolean> = { '1': true, true: true, yes: true, on: true, '0': false, false: false, no: false, off: false, '': false };

/** Commander treats a boolean flag's env var as "set" whatever its value; read the value ourselves. */
function booleanFromEnv(cmd: Command, attribute: string, long: string): boolean {
  const value = cmd.getOptionValue(attribute) === true;
  if (cmd.getOptionValueSource(attribute) !== 'env') return value;
  const raw = (process.env[envName(long)] ?? '').trim().toLowerCase();
  const parsed = BOOLEAN_WORDS[raw];
  if (parsed === undefined) throw new InvalidArgumentError(`${envName(long)} must be true or false, got ${JSON.stringify(raw)}`);
  return parsed;
}

export function addServerOptions(cmd: Command): Command {
  return cmd
    .addOption(option('--host <host>', 'address to listen on', undefined, DEFAULTS.host))
    .addOption(option('--gateway-port <port>', 'WebSocket gateway port (0 picks a free one)', port, DEFAULTS.gatewayPort))
    .addOption(option('--logic-port <port>', 'logic HTTP API port (0 picks a free one)', port, DEFAULTS.logicPort))
    .addOption(option('--ws-path <path>', 'WebSocket endpoint path', wsPath, DEFAULTS.wsPath))
    .addOption(option('--heartbeat-timeout <ms>', 'close a client silent this long with 4002 (0 disables)', integer(0, 86_400_000, 'the heartbeat timeout'), DEFAULTS.heartbeatTimeout))
    .addOption(option('--api-key <key>', 'require Authorization: Bearer <key> on the logic API (without it, only loopback callers are answered)'))
    .addOption(option('--max-payload <bytes>', 'largest inbound WebSocket message; larger closes with 1009', integer(64, 100 * 1024 * 1024, 'the max payload'), DEFAULTS.maxPayload))
    .addOption(option('--send-buffer-limit <bytes>', "bytes waiting to reach one client above which it is closed with 4000", integer(1024, 1024 * 1024 * 1024, 'the send buffer limit'), DEFAULTS.sendBufferLimit))
    .addOption(option('--body-limit <bytes>', 'largest logic API request body; larger answers 413', integer(64, 100 * 1024 * 1024, 'the body limit'), DEFAULTS.bodyLimit))
    .addOption(option('--allow-client-join', 'let clients join and leave rooms themselves with {"op":"join"} / {"op":"leave"}'))
    .addOption(option('--trust-proxy <proxies>', 'take the caller address from X-Forwarded-For when the request comes from these proxies: comma-separated addresses or CIDRs, or loopback'))
    .addOption(option('--log-level <level>', `log level: ${LOG_LEVELS.join(', ')}`, logLevel, DEFAULTS.logLevel));
}

export function readServerConfig(cmd: Command): ServerConfig {
  const o = cmd.opts<Record<string, unknown>>();
  const apiKey = typeof o.apiKey === 'string' && o.apiKey !== '' ? o.apiKey : undefined;
  return {
    host: o.host as string,
    gatewayPort: o.gatewayPort as number,
    logicPort: o.logicPort as number,
    wsPath: o.wsPath as string,
    heartbeatTimeout: o.heartbeatTimeout as number,
    apiKey,
    maxPayload: o.maxPayload as number,
    sendBufferLimit: o.sendBufferLimit as number,
    bodyLimit: o.bodyLimit as number,
    allowClientJoin: booleanFromEnv(cmd, 'allowClientJoin', '--allow-client-join'),
    trustProxy: typeof o.trustProxy === 'string' && o.trustProxy !== '' ? o.trustProxy : undefined,
    logLevel: o.logLevel as string,
  };
}
