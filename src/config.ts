/**
 * Command-line flags of the server commands, each also read from the
 * environment as ROOMCAST_<FLAG_IN_UPPER_SNAKE>, validated once into typed
 * configs. The flag table here is the one place a new setting is added.
 */
import proxyAddr from '@fastify/proxy-addr';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_RECOVERY_WINDOW_MS } from './broker/away.js';
import { DEFAULT_HISTORY } from './history/ring.js';
import { DEFAULT_HISTORY_MAX_MEMORY } from './history/budget.js';
import { checkBodyLimit } from './flag-rules.js';
import { MAX_TOKEN_TTL_S, tokenRequestProblem, type TokenRequest } from './token.js';

export type AuthMode = 'off' | 'optional' | 'required';

/** What a gateway does, wherever it listens. */
export interface GatewaySettings {
  wsPath: string;
  heartbeatTimeout: number;
  maxPayload: number;
  sendBufferLimit: number;
  allowClientJoin: boolean;
  /** Client authentication with JWTs. */
  auth: AuthMode;
  /** HMAC secret that signs client tokens. */
  jwtSecret: string | undefined;
  /** File with a PEM public key or a JWKS (JSON) that verifies client tokens. */
  jwtPublicKey: string | undefined;
  /** When set, a token's `aud` must name this audience, and its `iss` be this issuer. */
  jwtAudience: string | undefined;
  jwtIssuer: string | undefined;
  /** Seconds a token's `nbf` may be ahead and its `exp` behind the gateway's clock (issuers' clocks drift). */
  jwtClockTolerance: number;
  /** How long a connection may take to send its token in an auth frame. */
  authTimeout: number;
  /** 0 means no limit, for each of these. */
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** Per gateway node: connections of one user (a token's `sub`); anonymous ones are not counted. */
  maxConnectionsPerUser: number;
  connectRatePerIp: number;
  maxFramesPerSecond: number;
  maxRoomsPerConnection: number;
  /** Browser origins allowed to connect; undefined allows any. */
  allowedOrigins: string[] | undefined;
  /** Signs resume tokens; by default a random secret per process (memory) or one shared through Redis. */
  resumeSecret?: string;
}

/** What the logic API does, wherever it listens. */
export interface LogicSettings {
  apiKey: string | undefined;
  bodyLimit: number;
  /** Serve /metrics without the API key. */
  publicMetrics: boolean;
  /** Largest `val` of a push, in bytes (413 above). */
  maxValSize: number;
  /** How long a push's idempotency key keeps a repeat from being pushed again, in ms (0: keys are refused). */
  idempotencyWindow: number;
}

interface Listen {
  host: string;
  port: number;
}

export type GatewayConfig = Listen & GatewaySettings;
export type LogicConfig = Listen & LogicSettings;

export interface CommonConfig {
  /** `memory` or a redis:// URL. */
  broker: string;
  /** Publications kept per stream for recovery (0 turns history off). */
  historySize: number;
  /** How long a publication is kept, in ms (0 turns history off). */
  historyTtl: number;
  /** Bytes the memory engine's history may hold across every stream; the oldest entries go past it (0: no bound). */
  historyMaxMemory: number;
  /** How long a dropped connection's session can be resumed, in ms (0: never). */
  recoveryWindow: number;
  /** Proxies whose X-Forwarded-For names the real client (comma-separated addresses, CIDRs, or loopback). */
  trustProxy: string | undefined;
  /** PEM files: with both, the servers speak TLS (wss://, https://). */
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** How often the TLS files are checked for a renewal, in ms (0: never). */
  tlsWatchInterval: number;
  logLevel: string;
}

/** `roomcast start`: a gateway and the logic API in one process (or N gateway workers). */
export interface ServerConfig extends GatewaySettings, LogicSettings, CommonConfig {
  host: string;
  gatewayPort: number;
  logicPort: number;
  workers: number;
}

/** Every setting's default: what `roomcast start` runs with when given no flag. */
export const DEFAULTS: Readonly<ServerConfig> = {
  host: '0.0.0.0',
  gatewayPort: 8888,
  logicPort: 9999,
  wsPath: '/connect',
  heartbeatTimeout: 10_000,
  maxPayload: 64 * 1024,
  sendBufferLimit: 1024 * 1024,
  allowClientJoin: false,
  auth: 'off',
  jwtSecret: undefined,
  jwtPublicKey: undefined,
  jwtAudience: undefined,
  jwtIssuer: undefined,
  jwtClockTolerance: 5,
  authTimeout: 5000,
  maxConnections: 50_000,
  maxConnectionsPerIp: 1000,
  maxConnectionsPerUser: 100,
  connectRatePerIp: 100,
  maxFramesPerSecond: 100,
  maxRoomsPerConnection: 1000,
  allowedOrigins: undefined,
  apiKey: undefined,
  bodyLimit: 1024 * 1024,
  trustProxy: undefined,
  publicMetrics: false,
  maxValSize: 64 * 1024,
  idempotencyWindow: 300_000,
  broker: 'memory',
  // the engines' own defaults, for a broker made without these settings
  historySize: DEFAULT_HISTORY.size,
  historyTtl: DEFAULT_HISTORY.ttlMs,
  historyMaxMemory: DEFAULT_HISTORY_MAX_MEMORY,
  recoveryWindow: DEFAULT_RECOVERY_WINDOW_MS,
  resumeSecret: undefined,
  tlsCert: undefined,
  tlsKey: undefined,
  tlsWatchInterval: 10_000,
  logLevel: 'info',
  workers: 0,
};

/** A tolerance past an hour is a clock out of sync, not drift; and each second of it lengthens a stolen token's life. */
const MAX_JWT_CLOCK_TOLERANCE_S = 3600;

/** 1 TiB: more is a typo (a unit slipped), not a memory size. */
const MAX_HISTORY_MEMORY = 2 ** 40;

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

const port = integer(0, 65535, 'a port');

function wsPath(value: string): string {
  if (!/^\/[A-Za-z0-9_.~/-]*$/.test(value)) throw new InvalidArgumentError(`the path must start with / and hold only A-Z a-z 0-9 _ . ~ / -, got ${JSON.stringify(value)}`);
  return value;
}

function listenHost(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('the host must be an address or a name to listen on, like 0.0.0.0 or 127.0.0.1, got ""');
  return value;
}

function logLevel(value: string): string {
  if (!LOG_LEVELS.includes(value)) throw new InvalidArgumentError(`the log level must be one of ${LOG_LEVELS.join(', ')}`);
  return value;
}

function authMode(value: string): AuthMode {
  if (value !== 'off' && value !== 'optional' && value !== 'required') {
    throw new InvalidArgumentError(`auth must be off, optional or required, got ${JSON.stringify(value)}`);
  }
  return value;
}

function originList(value: string): string[] {
  const origins = commaList(value);
  // an empty list would refuse every browser, which no one asks for by leaving the value empty
  if (origins.length === 0) throw new InvalidArgumentError('name at least one origin (scheme://host[:port], or * for any), or leave the flag out to allow any');
  for (const origin of origins) {
    if (origin === '*') continue;
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new InvalidArgumentError(`each allowed origin must be * or scheme://host[:port], got ${JSON.stringify(origin)}`);
    }
    if (url.origin !== origin) throw new InvalidArgumentError(`each allowed origin must be scheme://host[:port] with no path, got ${JSON.stringify(origin)} (use ${url.origin})`);
  }
  return origins;
}

/** The proxies, checked one by one as the servers compile them, so a bad one is refused before anything starts. */
function proxyList(value: string): string {
  const proxies = commaList(value);
  for (const proxy of proxies) {
    try {
      proxyAddr.compile(proxy);
    } catch {
      throw new InvalidArgumentError(`each trusted proxy must be an IP address, a CIDR (10.0.0.0/8) or loopback, linklocal or uniquelocal, got ${JSON.stringify(proxy)}`);
    }
  }
  // empty when no proxy is named: taken as unset from the environment, refused from the command line
  return proxies.join(',');
}

/**
 * The URL with any password in it replaced by `***`, to show in an error:
 * everything from the user's colon to the last `@`, since a URL that did not
 * parse may hold a password with a raw `/` or `@` in it.
 */
function withoutPassword(url: string): string {
  return url.replace(/\/\/([^:/@]*):.*@/, '//$1:***@');
}

/**
 * Checked once parsed, not by commander's argument parser, whose refusal
 * repeats the value as given: a redis:// URL may carry a password.
 */
function brokerUrl(value: string): string {
  if (value === 'memory') return value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`--broker must be memory or a redis://HOST:PORT URL, got ${JSON.stringify(withoutPassword(value))}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new InvalidArgumentError(`--broker must be memory or a redis:// (or rediss://) URL, got protocol ${url.protocol}`);
  }
  if (!/^\/?(\d{1,5})?$/.test(url.pathname)) {
    throw new InvalidArgumentError(`--broker: the path of a redis:// URL is the database number (redis://HOST:PORT/2), got ${JSON.stringify(url.pathname)}`);
  }
  return value;
}

function option(flags: string, description: string, parse?: (value: string) => unknown, defaultValue?: unknown): Option {
  const long = flags.split(/[ ,]+/).find((f) => f.startsWith('--')) ?? flags;
  const opt = new Option(flags, description).env(envName(long));
  if (parse !== undefined) opt.argParser(parse);
  if (defaultValue !== undefined) opt.default(defaultValue);
  return opt;
}

const BOOLEAN_WORDS = new Map<string, boolean>([
  ['true', true],
  ['false', false],
  ['1', true],
  ['0', false],
  ['yes', true],
  ['no', false],
  ['on', true],
  ['off', false],
  ['', false],
]);
const BOOLEAN_WORDS_LIST = `${[...BOOLEAN_WORDS.keys()].filter((word) => word !== '').join(', ')} (or empty)`;

/** Commander treats a boolean flag's env var as "set" whatever its value; read the value ourselves. */
function booleanFromEnv(cmd: Command, attribute: string, long: string): boolean {
  const value = cmd.getOptionValue(attribute) === true;
  if (cmd.getOptionValueSource(attribute) !== 'env') return value;
  const raw = (process.env[envName(long)] ?? '').trim().toLowerCase();
  const parsed = BOOLEAN_WORDS.get(raw);
  if (parsed === undefined) throw new InvalidArgumentError(`${envName(long)} must be one of ${BOOLEAN_WORDS_LIST}, got ${JSON.stringify(raw)}`);
  return parsed;
}

/**
 * A secret, a required claim, a file or proxies given empty on the command line is refused: it is almost
 * always an unset shell variable (`--api-key "$ROOMCAST_API_KEY"`, `--tls-cert "$CERT"`), and running
 * without it (without the key, or TLS) is not what was asked. An empty environment variable counts as unset.
 */
function given(cmd: Command, attribute: string, long: string): string | undefined {
  const value: unknown = cmd.getOptionValue(attribute);
  if (value === '' && cmd.getOptionValueSource(attribute) === 'cli') {
    throw new InvalidArgumentError(`${long} is empty (an unset shell variable?): give the value, or leave the flag out`);
  }
  return typeof value === 'string' && value !== '' ? value : undefined;
}

const flags = {
  host: () => option('--host <host>', 'address to listen on', listenHost, DEFAULTS.host),
  gatewayPort: () => option('--gateway-port <port>', 'WebSocket gateway port (0 picks a free one)', port, DEFAULTS.gatewayPort),
  logicPort: () => option('--logic-port <port>', 'logic HTTP API port (0 picks a free one)', port, DEFAULTS.logicPort),
  port: (fallback: number, what: string) => option('--port <port>', `${what} port (0 picks a free one)`, port, fallback),
  wsPath: () => option('--ws-path <path>', 'WebSocket endpoint path', wsPath, DEFAULTS.wsPath),
  heartbeatTimeout: () =>
    option('--heartbeat-timeout <ms>', 'close a client silent this long with 4002 (0 disables)', integer(0, 86_400_000, 'the heartbeat timeout'), DEFAULTS.heartbeatTimeout),
  maxPayload: () =>
    option('--max-payload <bytes>', 'largest inbound WebSocket message; larger closes with 1009', integer(64, 100 * 1024 * 1024, 'the max payload'), DEFAULTS.maxPayload),
  sendBufferLimit: () =>
    option('--send-buffer-limit <bytes>', 'bytes waiting to reach one client above which it is closed with 4000', integer(1024, 1024 * 1024 * 1024, 'the send buffer limit'), DEFAULTS.sendBufferLimit),
  allowClientJoin: () => option('--allow-client-join', 'let clients join and leave rooms themselves with {"op":"join"} / {"op":"leave"} (default: off)'),
  apiKey: () => option('--api-key <key>', 'require Authorization: Bearer <key> on the logic API (default: none, and only loopback callers are answered)'),
  bodyLimit: () => option('--body-limit <bytes>', 'largest logic API request body; larger answers 413', integer(64, 100 * 1024 * 1024, 'the body limit'), DEFAULTS.bodyLimit),
  trustProxy: () =>
    option(
      '--trust-proxy <proxies>',
      'take the client address from X-Forwarded-For when the connection or request comes from these proxies: comma-separated addresses, CIDRs, or loopback, linklocal, uniquelocal (per-address limits and the API loopback rule then see the real client) (default: none: the address is the socket\'s)',
      proxyList,
    ),
  publicMetrics: () => option('--public-metrics', 'serve /metrics without the API key (it is public to loopback callers either way when no key is set) (default: off)'),
  maxValSize: () => option('--max-val-size <bytes>', 'largest val of a push; larger answers 413', integer(1, 100 * 1024 * 1024, 'the max val size'), DEFAULTS.maxValSize),
  idempotencyWindow: () =>
    option(
      '--idempotency-window <ms>',
      'how long a push with an idempotencyKey keeps a repeat of that key from being pushed again (it gets the first answer); 0 refuses keys',
      integer(0, 86_400_000, 'the idempotency window'),
      DEFAULTS.idempotencyWindow,
    ),
  auth: () => option('--auth <mode>', 'client authentication with JWTs: off, optional or required', authMode, DEFAULTS.auth),
  jwtSecret: () => option('--jwt-secret <secret>', 'HMAC secret (HS256/384/512) that signs client tokens (default: none)'),
  jwtPublicKey: () => option('--jwt-public-key <file>', 'PEM public key (RS*, PS*, ES*, EdDSA) or JWKS JSON file that verifies client tokens (default: none)'),
  jwtAudience: () => option('--jwt-audience <aud>', "a client token's aud claim must name this audience (default: aud is not checked)"),
  jwtIssuer: () => option('--jwt-issuer <iss>', "a client token's iss claim must be this issuer (default: iss is not checked)"),
  jwtClockTolerance: () =>
    option(
      '--jwt-clock-tolerance <seconds>',
      "seconds a client token's nbf may be ahead of this server's clock and its exp behind it; the connection is closed at exp plus this (0: none)",
      integer(0, MAX_JWT_CLOCK_TOLERANCE_S, 'the JWT clock tolerance in seconds'),
      DEFAULTS.jwtClockTolerance,
    ),
  authTimeout: () => option('--auth-timeout <ms>', 'how long a connection may take to send {"op":"auth"} when auth is required (then 1008)', integer(100, 600_000, 'the auth timeout'), DEFAULTS.authTimeout),
  maxConnections: () => option('--max-connections <n>', 'connections one gateway node holds; more are refused with 503 (0: no limit)', integer(0, 10_000_000, 'the max connections'), DEFAULTS.maxConnections),
  maxConnectionsPerIp: () =>
    option('--max-connections-per-ip <n>', 'connections from one address (an IPv6 /64); more are refused with 429 (0: no limit)', integer(0, 10_000_000, 'the max connections per IP'), DEFAULTS.maxConnectionsPerIp),
  maxConnectionsPerUser: () =>
    option(
      '--max-connections-per-user <n>',
      "connections of one user (a token's sub) on one gateway node; more are refused with 429, or closed with 4029 after an auth frame (0: no limit)",
      integer(0, 10_000_000, 'the max connections per user'),
      DEFAULTS.maxConnectionsPerUser,
    ),
  connectRatePerIp: () =>
    option('--connect-rate-per-ip <n>', 'new connections per second from one address, with bursts of 5 s worth; more are refused with 429 (0: no limit)', integer(0, 1_000_000, 'the connect rate per IP'), DEFAULTS.connectRatePerIp),
  maxFramesPerSecond: () =>
    option('--max-frames-per-second <n>', 'frames one connection may send per second, with bursts of twice that; past it, close 4029 (0: no limit)', integer(0, 1_000_000, 'the max frames per second'), DEFAULTS.maxFramesPerSecond),
  maxRoomsPerConnection: () =>
    option('--max-rooms-per-connection <n>', 'rooms one connection may be in (0: no limit)', integer(0, 10_000_000, 'the max rooms per connection'), DEFAULTS.maxRoomsPerConnection),
  allowedOrigins: () => option('--allowed-origins <origins>', 'comma-separated browser origins (https://app.example.com) allowed to connect; others get 403 (default: any)', originList),
  tlsCert: () => option('--tls-cert <file>', 'PEM certificate: serve wss:// and https:// (with --tls-key) (default: none: ws:// and http://)'),
  tlsKey: () => option('--tls-key <file>', 'PEM private key of --tls-cert (default: none)'),
  tlsWatchInterval: () =>
    option(
      '--tls-watch-interval <ms>',
      'how often --tls-cert and --tls-key are checked for a renewal, applied to new connections without a restart (0: never)',
      integer(0, 86_400_000, 'the TLS watch interval'),
      DEFAULTS.tlsWatchInterval,
    ),
  broker: () => option('--broker <url>', 'memory (one process) or redis://[[USER]:PASSWORD@]HOST:PORT[/DB] (rediss:// for TLS) to share rooms between processes', undefined, DEFAULTS.broker),
  workers: () =>
    option('--workers <n>', 'run N gateway worker processes sharing the WebSocket port (needs --broker redis://...; 0 = gateway in this process)', integer(0, 64, 'the number of workers'), DEFAULTS.workers),
  historySize: () =>
    option('--history-size <n>', 'publications kept per room (and for all) to replay on resume; 0 turns history off', integer(0, 1_000_000, 'the history size'), DEFAULTS.historySize),
  historyTtl: () =>
    option('--history-ttl <ms>', 'how long a publication is kept for replay; 0 turns history off', integer(0, 7 * 86_400_000, 'the history TTL'), DEFAULTS.historyTtl),
  historyMaxMemory: () =>
    option(
      '--history-max-memory <bytes>',
      "bytes the memory engine's history may hold across every room; past it the oldest publications are dropped, whatever their room (0: no bound; Redis bounds its own)",
      integer(0, MAX_HISTORY_MEMORY, 'the history max memory in bytes'),
      DEFAULTS.historyMaxMemory,
    ),
  recoveryWindow: () =>
    option('--recovery-window <ms>', "how long a dropped client's session (wsId, rooms) waits to be resumed; 0 ends it at once", integer(0, 86_400_000, 'the recovery window'), DEFAULTS.recoveryWindow),
  resumeSecret: () =>
    option('--resume-secret <secret>', 'secret that signs resume tokens (default: random per process on memory, shared through Redis on redis)'),
  logLevel: () => option('--log-level <level>', `log level: ${LOG_LEVELS.join(', ')}`, logLevel, DEFAULTS.logLevel),
};

function addGatewayFlags(cmd: Command): Command {
  for (const flag of [
    flags.wsPath,
    flags.heartbeatTimeout,
    flags.maxPayload,
    flags.sendBufferLimit,
    flags.allowClientJoin,
    flags.auth,
    flags.jwtSecret,
    flags.jwtPublicKey,
    flags.jwtAudience,
    flags.jwtIssuer,
    flags.jwtClockTolerance,
    flags.authTimeout,
    flags.maxConnections,
    flags.maxConnectionsPerIp,
    flags.maxConnectionsPerUser,
    flags.connectRatePerIp,
    flags.maxFramesPerSecond,
    flags.maxRoomsPerConnection,
    flags.allowedOrigins,
    flags.resumeSecret,
  ]) {
    cmd.addOption(flag());
  }
  return cmd;
}

function addLogicFlags(cmd: Command): Command {
  return cmd.addOption(flags.apiKey()).addOption(flags.bodyLimit()).addOption(flags.maxValSize()).addOption(flags.idempotencyWindow()).addOption(flags.publicMetrics());
}

/** Flags every server process takes: the broker and what it keeps, and logging. */
function addCommonFlags(cmd: Command): Command {
  return cmd
    .addOption(flags.broker())
    .addOption(flags.historySize())
    .addOption(flags.historyTtl())
    .addOption(flags.historyMaxMemory())
    .addOption(flags.recoveryWindow())
    .addOption(flags.trustProxy())
    .addOption(flags.tlsCert())
    .addOption(flags.tlsKey())
    .addOption(flags.tlsWatchInterval())
    .addOption(flags.logLevel());
}

export function addServerOptions(cmd: Command): Command {
  cmd.addOption(flags.host()).addOption(flags.gatewayPort()).addOption(flags.logicPort());
  addGatewayFlags(cmd);
  addLogicFlags(cmd);
  cmd.addOption(flags.workers());
  return addCommonFlags(cmd);
}

export function addGatewayOptions(cmd: Command): Command {
  cmd.addOption(flags.host()).addOption(flags.port(DEFAULTS.gatewayPort, 'WebSocket gateway'));
  addGatewayFlags(cmd);
  return addCommonFlags(cmd);
}

export function addLogicOptions(cmd: Command): Command {
  cmd.addOption(flags.host()).addOption(flags.port(DEFAULTS.logicPort, 'logic HTTP API'));
  addLogicFlags(cmd);
  return addCommonFlags(cmd);
}

function readCommon(cmd: Command, o: Record<string, unknown>): CommonConfig {
  const tlsCert = given(cmd, 'tlsCert', '--tls-cert');
  const tlsKey = given(cmd, 'tlsKey', '--tls-key');
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new InvalidArgumentError('--tls-cert and --tls-key go together: give both, or neither');
  return {
    broker: brokerUrl(o.broker as string),
    historySize: o.historySize as number,
    historyTtl: o.historyTtl as number,
    historyMaxMemory: o.historyMaxMemory as number,
    recoveryWindow: o.recoveryWindow as number,
    trustProxy: given(cmd, 'trustProxy', '--trust-proxy'),
    tlsCert,
    tlsKey,
    tlsWatchInterval: o.tlsWatchInterval as number,
    logLevel: o.logLevel as string,
  };
}

function readGatewayFields(cmd: Command, o: Record<string, unknown>): GatewaySettings {
  const settings: GatewaySettings = {
    wsPath: o.wsPath as string,
    heartbeatTimeout: o.heartbeatTimeout as number,
    maxPayload: o.maxPayload as number,
    sendBufferLimit: o.sendBufferLimit as number,
    allowClientJoin: booleanFromEnv(cmd, 'allowClientJoin', '--allow-client-join'),
    auth: o.auth as AuthMode,
    jwtSecret: given(cmd, 'jwtSecret', '--jwt-secret'),
    jwtPublicKey: given(cmd, 'jwtPublicKey', '--jwt-public-key'),
    jwtAudience: given(cmd, 'jwtAudience', '--jwt-audience'),
    jwtIssuer: given(cmd, 'jwtIssuer', '--jwt-issuer'),
    jwtClockTolerance: o.jwtClockTolerance as number,
    authTimeout: o.authTimeout as number,
    maxConnections: o.maxConnections as number,
    maxConnectionsPerIp: o.maxConnectionsPerIp as number,
    maxConnectionsPerUser: o.maxConnectionsPerUser as number,
    connectRatePerIp: o.connectRatePerIp as number,
    maxFramesPerSecond: o.maxFramesPerSecond as number,
    maxRoomsPerConnection: o.maxRoomsPerConnection as number,
    allowedOrigins: o.allowedOrigins as string[] | undefined,
    resumeSecret: given(cmd, 'resumeSecret', '--resume-secret'),
  };
  if (settings.auth !== 'off' && settings.jwtSecret === undefined && settings.jwtPublicKey === undefined) {
    throw new InvalidArgumentError(`--auth ${settings.auth} needs --jwt-secret <secret> or --jwt-public-key <file> to verify client tokens`);
  }
  if (settings.jwtSecret !== undefined && settings.jwtPublicKey !== undefined) {
    throw new InvalidArgumentError('give --jwt-secret or --jwt-public-key, not both');
  }
  return settings;
}

/**
 * The API key travels in a header: a character outside printable ASCII no client can send as the
 * server reads it (Node reads header bytes as Latin-1), and a space at either end is trimmed from
 * it, so such a key would refuse every call. The message names the position, never the key.
 */
function sendableApiKey(key: string | undefined): string | undefined {
  if (key === undefined) return undefined;
  const outside = /[^\x20-\x7e]/u.exec(key);
  if (outside !== null) {
    const code = outside[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    throw new InvalidArgumentError(`--api-key has U+${code} at index ${outside.index}: it must be printable ASCII (space to ~), as no HTTP client can send the key otherwise`);
  }
  if (key.trim() !== key) throw new InvalidArgumentError('--api-key starts or ends with a space, which HTTP trims from the Authorization header: no call could carry the key');
  return key;
}

function readLogicFields(cmd: Command, o: Record<string, unknown>): LogicSettings {
  return {
    apiKey: sendableApiKey(given(cmd, 'apiKey', '--api-key')),
    bodyLimit: o.bodyLimit as number,
    publicMetrics: booleanFromEnv(cmd, 'publicMetrics', '--public-metrics'),
    maxValSize: o.maxValSize as number,
    idempotencyWindow: o.idempotencyWindow as number,
  };
}

export function readServerConfig(cmd: Command): ServerConfig {
  const o = cmd.opts<Record<string, unknown>>();
  const config: ServerConfig = {
    host: o.host as string,
    gatewayPort: o.gatewayPort as number,
    logicPort: o.logicPort as number,
    ...readGatewayFields(cmd, o),
    ...readLogicFields(cmd, o),
    ...readCommon(cmd, o),
    workers: o.workers as number,
  };
  checkBodyLimit(config);
  if (config.workers > 0 && config.broker === 'memory') {
    throw new InvalidArgumentError(
      '--workers needs --broker redis://HOST:PORT: worker processes share rooms and connections through Redis (the memory broker lives in one process)',
    );
  }
  return config;
}

export function readGatewayConfig(cmd: Command): GatewayConfig & CommonConfig {
  const o = cmd.opts<Record<string, unknown>>();
  return { host: o.host as string, port: o.port as number, ...readGatewayFields(cmd, o), ...readCommon(cmd, o) };
}

export function readLogicConfig(cmd: Command): LogicConfig & CommonConfig {
  const o = cmd.opts<Record<string, unknown>>();
  const config = { host: o.host as string, port: o.port as number, ...readLogicFields(cmd, o), ...readCommon(cmd, o) };
  checkBodyLimit(config);
  return config;
}

/** `roomcast token`: the claims from its flags, the secret and the aud/iss rules from the gateway's own flags (and their env vars). */
export function addTokenOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--sub <uid>', "the user id: the token's sub claim").makeOptionMandatory())
    .addOption(new Option('--rooms <list>', 'comma-separated room ids or prefix:* patterns the client may join by itself (the rooms claim; default: none)').argParser(commaList))
    .addOption(new Option('--ttl <seconds>', 'seconds until the token expires (0: no exp, it never does)').argParser(integer(0, MAX_TOKEN_TTL_S, 'the ttl')).default(3600))
    .addOption(option('--jwt-secret <secret>', "the gateway's HMAC secret: signs the token"))
    .addOption(option('--jwt-audience <aud>', "the token's aud claim: set it when the gateway checks --jwt-audience (default: none)"))
    .addOption(option('--jwt-issuer <iss>', "the token's iss claim: set it when the gateway checks --jwt-issuer (default: none)"));
}

/** The non-empty items of a comma-separated flag value, trimmed. */
function commaList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

export function readTokenConfig(cmd: Command): TokenRequest {
  const o = cmd.opts<Record<string, unknown>>();
  const jwtSecret = given(cmd, 'jwtSecret', '--jwt-secret');
  if (jwtSecret === undefined) throw new InvalidArgumentError(`--jwt-secret <secret> (or ${envName('--jwt-secret')}) is needed: the secret the gateway verifies tokens with`);
  const request: TokenRequest = {
    secret: jwtSecret,
    sub: o.sub as string,
    rooms: o.rooms as string[] | undefined,
    ttlSeconds: o.ttl as number,
    audience: given(cmd, 'jwtAudience', '--jwt-audience'),
    issuer: given(cmd, 'jwtIssuer', '--jwt-issuer'),
  };
  const problem = tokenRequestProblem(request);
  if (problem !== undefined) throw new InvalidArgumentError(problem);
  return request;
}

/** The gateway half of a `start` config. */
export function gatewayPart(config: ServerConfig): GatewayConfig & CommonConfig {
  return { ...config, port: config.gatewayPort };
}

/** The logic half of a `start` config. */
export function logicPart(config: ServerConfig): LogicConfig & CommonConfig {
  return { ...config, port: config.logicPort };
}
