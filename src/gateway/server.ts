/**
 * The gateway's network side: an HTTP(S) server that upgrades `/connect` to
 * WebSocket after checking who may connect (origin, connection limits, client
 * token), a sweep for heartbeats and token expiry, and a draining shutdown.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import proxyAddr from '@fastify/proxy-addr';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer, type Server as WsServer, type ServerOptions } from 'ws';
import type { Broker, NodeCounters } from '../broker/broker.js';
import type { GatewayConfig } from '../config.js';
import { CloseCode, keepsSession } from '../protocol/close-codes.js';
import { Admission, type Refusal } from './admission.js';
import { TokenError, TokenVerifier, type ClientIdentity } from './auth.js';
import { Connection, fitReason, type ConnectionShared } from './connection.js';
import { handleInbound, type InboundContext } from './inbound.js';
import { GatewayNode } from './node.js';
import { Outbox } from './outbox.js';
import { answerClientError, answerRaw } from '../raw-answer.js';
import { resumeFrameLimit } from './resume.js';
import { ResumeTokens } from './resume-token.js';
import type { WatchedTlsFiles } from '../tls-reload.js';

export interface GatewayOptions extends GatewayConfig {
  /** Proxies whose X-Forwarded-For names the real client. */
  trustProxy?: string;
  /** Signs resume tokens; by default the broker's shared secret. */
  resumeSecret?: string;
  /** Certificate and key (PEM): serve wss:// instead of ws://. */
  /** With it, wss://: its certificate, renewed as its files are. */
  tls?: WatchedTlsFiles;
  /** How long a closing client may take to answer the close handshake. */
  closeGraceMs?: number;
  nodeId?: string;
}

const DEFAULT_CLOSE_GRACE_MS = 3000;
const SHUTDOWN_TIMEOUT_MS = 3000;
/** How long a client has to send its whole handshake request (and, with TLS, to finish the TLS handshake). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** The WebSocket versions ws accepts in a handshake. */
const SUPPORTED_WS_VERSIONS = '13, 8';
/** How often the HTTP server looks for handshakes past the timeout. */
const HANDSHAKE_CHECK_MS = 1000;
function splitUrl(url: string | undefined): { path: string; token: string | undefined } {
  if (url === undefined) return { path: '', token: undefined };
  const q = url.indexOf('?');
  if (q === -1) return { path: url, token: undefined };
  return { path: url.slice(0, q), token: new URLSearchParams(url.slice(q + 1)).get('token') ?? undefined };
}

/** Which counter each admission limit adds to. */
const REFUSAL_COUNTERS = {
  maxConnections: 'refusedMaxConnections',
  maxConnectionsPerIp: 'refusedMaxConnectionsPerIp',
  connectRatePerIp: 'refusedConnectRate',
  maxConnectionsPerUser: 'refusedMaxConnectionsPerUser',
} as const satisfies Record<Refusal['limit'], keyof NodeCounters>;

/** What the handshake learned about the client's token. */
type Credentials = { identity: ClientIdentity } | { failure: string } | undefined;

function destroySocket(this: Duplex): void {
  this.destroy();
}

/** ws's server options with closeTimeout, which ws 8.23 (package.json's floor) has and @types/ws 8.18 does not know. */
type WsServerOptions = ServerOptions<typeof GatewaySocket> & { closeTimeout: number };

/** ws's WebSocket with a link to its connection, so one set of listeners serves every connection. */
class GatewaySocket extends WebSocket {
  connection: Connection | undefined;
}

/**
 * An upgraded socket counted by admission, with the address and the user (once
 * it has a token) to release when it closes. Released with the socket, not the
 * connection: a socket refused or dropped before or during the WebSocket
 * handshake has no connection, and every slot is let go exactly once.
 */
type AdmittedSocket = Duplex & { admittedFrom?: string; countedUser?: string };

/**
 * An accepted TCP socket counted as a handshake in progress until it is
 * admitted or closes: the address it counts under, and whether it got its
 * connect-rate token.
 */
type HandshakingSocket = Socket & { handshakeFrom?: string; rated?: boolean };

/** The TCP socket under a handshake's socket: itself, or the one a TLS socket wraps (node:tls keeps it as `_parent`). */
function tcpSocketOf(socket: Duplex): HandshakingSocket {
  return ((socket as { _parent?: Socket | null })._parent ?? socket) as HandshakingSocket;
}

function connectionOf(ws: WebSocket): Connection {
  return (ws as GatewaySocket).connection!;
}

type SocketListener<A extends unknown[] = []> = (this: WebSocket, ...args: A) => void;

export class GatewayServer {
  readonly node: GatewayNode;
  private readonly http: Server;
  /** Stops applying renewed TLS files to this server. */
  private stopTlsReload: (() => void) | undefined;
  private readonly wss: WsServer<typeof GatewaySocket>;
  private readonly shared: ConnectionShared;
  private readonly admission: Admission;
  private verifier: TokenVerifier | undefined;
  /** Connections that have not sent their token yet (auth required). */
  private readonly unauthenticated = new Set<Connection>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private closing = false;
  /**
   * The listeners of every client socket, made once per gateway: a closure per
   * connection and event would cost memory on every idle connection.
   */
  private readonly onMessage: SocketListener<[Buffer]>;
  private readonly onControlFrame: SocketListener;
  private readonly onSocketError: SocketListener<[Error]>;
  private readonly onClose: SocketListener<[number]>;
  private readonly releaseAdmission: (this: AdmittedSocket) => void;
  private readonly endHandshake: (this: HandshakingSocket) => void;
  /**
   * With TLS: TCP sockets whose TLS handshake has not ended. The HTTP server
   * knows a socket only after it, so the shutdown's closeAllConnections does not reach them.
   */
  private readonly tlsHandshakes = new Set<Socket>();
  private readonly endTlsHandshake: (this: Socket) => void;
  /** The client's address: the socket's, or with --trust-proxy the one its proxies name. */
  private readonly clientAddress: (req: IncomingMessage) => string;
  /** With --trust-proxy: whether an address is one of those proxies. */
  private readonly isTrustedProxy: ((address: string) => boolean) | undefined;

  constructor(
    private readonly options: GatewayOptions,
    private readonly broker: Broker,
    private readonly log: Logger,
  ) {
    const node = new GatewayNode(options.nodeId ?? randomUUID(), broker, options.heartbeatTimeout, log, options.maxRoomsPerConnection, {
      perNode: options.maxConnections,
      perAddress: options.maxConnectionsPerIp,
    });
    this.node = node;
    this.shared = {
      outbox: new Outbox(),
      limits: { sendBufferLimit: options.sendBufferLimit, closeGraceMs: options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS },
      onSlowConsumer(slow) {
        node.counters.slowConsumerCloses++;
        log.debug({ wsId: slow.wsId }, 'closing slow consumer');
      },
    };
    const admission = new Admission(options);
    this.admission = admission;
    const inbound: InboundContext = {
      node,
      allowClientJoin: options.allowClientJoin,
      maxPayload: options.maxPayload,
      log,
      auth: options.auth,
      authenticate: (conn, token) => this.authenticate(conn, token),
    };
    const maxFps = options.maxFramesPerSecond;
    const unauthenticated = this.unauthenticated;
    /** Marks the connection alive and takes a frame from its rate budget; false (and closed with 4029) once that is spent. */
    const admitFrame = (conn: Connection, now: number): boolean => {
      conn.lastSeen = now;
      if (maxFps === 0 || conn.takeFrameToken(now, maxFps)) return true;
      if (conn.closeCode === undefined) {
        node.counters.frameRateCloses++;
        conn.close('rateLimited');
      }
      return false;
    };
    this.onMessage = function (data) {
      const conn = connectionOf(this);
      const now = Date.now();
      if (admitFrame(conn, now)) handleInbound(inbound, conn, data, now);
    };
    // ws answers each ping by itself: a ping costs a write, so pings (and pongs) count against the budget too
    this.onControlFrame = function () {
      admitFrame(connectionOf(this), Date.now());
    };
    this.onSocketError = function (err) {
      // a socket refused in accept() (bad token) has no connection, and may still send a bad frame while it closes
      const conn = (this as GatewaySocket).connection;
      // a message over the socket's limit (resumeFrameLimit): ws closes with 1009, as inbound does for one over --max-payload
      if (conn !== undefined && conn.closeCode === undefined && (err as NodeJS.ErrnoException).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') node.counters.tooLargeCloses++;
      conn?.failed();
      log.debug({ err, wsId: conn?.wsId }, 'client protocol error');
    };
    this.onClose = function (code) {
      const conn = connectionOf(this);
      conn.closed();
      unauthenticated.delete(conn);
      node.removeConnection(conn, keepsSession(conn.closeCode ?? code));
    };
    this.releaseAdmission = function () {
      if (this.admittedFrom !== undefined) admission.release(this.admittedFrom);
      if (this.countedUser !== undefined) admission.releaseUser(this.countedUser);
      this.admittedFrom = undefined;
      this.countedUser = undefined;
    };
    this.endHandshake = function () {
      if (this.handshakeFrom !== undefined) admission.closeHandshake(this.handshakeFrom);
      this.handshakeFrom = undefined;
    };
    const tlsHandshakes = this.tlsHandshakes;
    // a plain listener, taken off once the handshake ends: a once() wrapper would stay on every secure connection
    this.endTlsHandshake = function endTlsHandshake() {
      tlsHandshakes.delete(this);
      this.off('close', endTlsHandshake);
    };
    const trusted = options.trustProxy === undefined ? undefined : proxyAddr.compile(options.trustProxy.split(',').map((p) => p.trim()));
    this.clientAddress = trusted === undefined ? (req) => req.socket.remoteAddress ?? '' : (req) => proxyAddr(req, trusted);
    this.isTrustedProxy = trusted === undefined ? undefined : (address) => trusted(address, 0);
    const wsOptions: WsServerOptions = {
      WebSocket: GatewaySocket,
      noServer: true,
      // a resume may be larger than --max-payload; handleInbound holds every other frame to it
      maxPayload: resumeFrameLimit(options.maxRoomsPerConnection, options.maxPayload),
      perMessageDeflate: false,
      // roomcast speaks no subprotocol: ws would otherwise agree to the first one a client offers
      handleProtocols: () => false,
      clientTracking: false,
      // once it has answered a client's own close frame, ws waits this long for the client's end (30 s by default)
      closeTimeout: this.shared.limits.closeGraceMs,
    };
    this.wss = new WebSocketServer(wsOptions);
    this.wss.on('wsClientError', (err: Error, socket: Duplex) => {
      // RFC 6455 §4.2.2: a version the server does not speak is answered with the versions it does
      const headers = err.message.includes('Sec-WebSocket-Version') ? { 'Sec-WebSocket-Version': SUPPORTED_WS_VERSIONS } : undefined;
      answerRaw(socket, err.message === 'Invalid HTTP method' ? 405 : 400, `bad WebSocket handshake: ${err.message}`, headers);
    });
    this.http = this.createHttpServer();
  }

  async listen(): Promise<AddressInfo> {
    this.verifier = await this.makeVerifier();
    await this.broker.attachGateway(this.node);
    const ownSecret = this.options.resumeSecret;
    await this.node.start(new ResumeTokens(ownSecret ?? (await this.broker.resumeSecret())), ownSecret === undefined);
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen({ host: this.options.host, port: this.options.port, backlog: 4096 }, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    const every = this.options.heartbeatTimeout > 0 ? Math.max(50, Math.min(1000, Math.floor(this.options.heartbeatTimeout / 4))) : 1000;
    // judged in a setImmediate, after the sockets were read: after a stall of this process the PINGs
    // that came in meanwhile count, and a client is not closed for silence it did not keep
    this.sweepTimer = setInterval(() => setImmediate(() => this.sweep()), every);
    return this.http.address() as AddressInfo;
  }

  get address(): AddressInfo {
    return this.http.address() as AddressInfo;
  }

  /** Stops accepting, closes every client with 1001, and resolves once they are gone (or after a timeout). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.stopTlsReload?.();
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    const serverClosed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    for (const conn of [...this.node.hub.conns.values(), ...this.unauthenticated]) conn.close('goingAway');
    const deadline = setTimeout(() => {
      for (const conn of [...this.node.hub.conns.values(), ...this.unauthenticated]) conn.terminate();
      this.http.closeAllConnections();
      for (const socket of this.tlsHandshakes) socket.destroy();
    }, SHUTDOWN_TIMEOUT_MS);
    // a resume cut short mid-claim leaves its session away once its claim answers, on a broker still
    // open: waited for while the connections close, not after, so the two waits do not add up
    await Promise.all([serverClosed, this.node.claimsSettled()]);
    clearTimeout(deadline);
    // a claim begun after that wait found none left, while the last connections closed
    await this.node.claimsSettled();
    this.node.stop();
    await this.broker.detachGateway(this.node);
  }

  private createHttpServer(): Server {
    const answer = (req: IncomingMessage, res: ServerResponse): void => this.answerPlainHttp(req, res);
    // Node's defaults (60 s for the headers, checked every 30 s) let a client hold sockets open by sending nothing
    const timeouts = { headersTimeout: HANDSHAKE_TIMEOUT_MS, requestTimeout: HANDSHAKE_TIMEOUT_MS, connectionsCheckingInterval: HANDSHAKE_CHECK_MS };
    // an https server is an http server with TLS underneath: the upgrade and request events are the same
    const tls = this.options.tls;
    let server: Server;
    if (tls === undefined) {
      server = createServer(timeouts, answer);
    } else {
      const tlsServer = createTlsServer({ ...tls.current, ...timeouts, handshakeTimeout: HANDSHAKE_TIMEOUT_MS }, answer);
      this.stopTlsReload = tls.serve(tlsServer);
      tlsServer.on('connection', (socket: Socket) => {
        this.tlsHandshakes.add(socket);
        socket.on('close', this.endTlsHandshake);
      });
      tlsServer.on('secureConnection', (secure: Duplex) => this.endTlsHandshake.call(tcpSocketOf(secure)));
      server = tlsServer as unknown as Server;
    }
    if (this.admission.countsHandshakes) server.on('connection', (socket: Socket) => this.accepted(socket));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket, 'the handshake request', HANDSHAKE_TIMEOUT_MS));
    return server;
  }

  /**
   * A TCP connection was accepted: it counts against its address's limits from
   * now on, so one address cannot hold more than --max-connections-per-ip
   * sockets that never finish a handshake. Those from a trusted proxy are not
   * counted here: the limits apply to the clients it names, at the upgrade.
   */
  private accepted(socket: HandshakingSocket): void {
    const address = socket.remoteAddress ?? '';
    if (this.isTrustedProxy?.(address) === true) return;
    const accepted = this.admission.openHandshake(address);
    if ('limit' in accepted) {
      this.node.counters[REFUSAL_COUNTERS[accepted.limit]]++;
      socket.destroy();
      return;
    }
    socket.handshakeFrom = address;
    socket.rated = accepted.rated;
    socket.once('close', this.endHandshake);
  }

  private async makeVerifier(): Promise<TokenVerifier | undefined> {
    const { auth, jwtSecret, jwtPublicKey, jwtAudience, jwtIssuer, jwtClockTolerance } = this.options;
    if (auth === 'off') return undefined;
    const rules = {
      ...(jwtAudience === undefined ? {} : { audience: jwtAudience }),
      ...(jwtIssuer === undefined ? {} : { issuer: jwtIssuer }),
      clockTolerance: jwtClockTolerance,
    };
    if (jwtSecret !== undefined) return TokenVerifier.fromSecret(jwtSecret, this.log, rules);
    if (jwtPublicKey !== undefined) return TokenVerifier.fromPublicKeyFile(jwtPublicKey, rules);
    throw new Error(`--auth ${auth} needs --jwt-secret or --jwt-public-key`);
  }

  private answerPlainHttp(req: IncomingMessage, res: ServerResponse): void {
    const { path } = splitUrl(req.url);
    const wsPath = this.options.wsPath;
    const [status, body] =
      path === '/healthz'
        ? [200, { code: 0, msg: 'ok', data: { status: 'ok', connections: this.node.hub.conns.size } }]
        : path === wsPath
          ? [426, { code: 426, msg: `${wsPath} is a WebSocket endpoint: connect with a WebSocket client` }]
          : [404, { code: 404, msg: `no such path ${path.slice(0, 200)}: the WebSocket endpoint is ${wsPath}` }];
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
  }

  private upgrade(req: IncomingMessage, socket: AdmittedSocket, head: Buffer): void {
    // Shared listeners, not closures: a closure here would share this call's
    // scope and keep `req` (about 1.5 KB with its headers) alive as long as the socket.
    socket.on('error', destroySocket);
    if (this.closing) return answerRaw(socket, 503, 'server is shutting down');
    const { path, token } = splitUrl(req.url);
    if (path !== this.options.wsPath) return answerRaw(socket, 404, `no WebSocket endpoint at ${path.slice(0, 200)}: use ${this.options.wsPath}`);
    // RFC 6455 §4.1: the opening handshake is an HTTP/1.1 request (Node takes an upgrade of HTTP/1.0 as well)
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return answerRaw(socket, 400, 'bad WebSocket handshake: it must be an HTTP/1.1 request (RFC 6455), not HTTP/1.0');
    const origin = req.headers.origin;
    const allowed = this.options.allowedOrigins;
    if (origin !== undefined && allowed !== undefined && !allowed.includes('*') && !allowed.includes(origin)) {
      this.node.counters.refusedOrigin++;
      return answerRaw(socket, 403, `origin ${origin.slice(0, 200)} is not allowed to connect (--allowed-origins)`);
    }
    const address = this.clientAddress(req);
    const tcp = tcpSocketOf(socket);
    const refusal = this.admission.admit(address, Date.now(), tcp.handshakeFrom === undefined ? undefined : tcp.rated);
    if (refusal !== undefined) {
      this.node.counters[REFUSAL_COUNTERS[refusal.limit]]++;
      return answerRaw(socket, refusal.status, refusal.reason);
    }
    // from a handshake in progress to a connection: counted once, as a connection
    this.endHandshake.call(tcp);
    socket.admittedFrom = address;
    socket.once('close', this.releaseAdmission);
    if (token === undefined || this.verifier === undefined) return this.handshake(req, socket, head, undefined);
    this.verifier.verify(token).then(
      (identity) => this.handshake(req, socket, head, { identity }),
      (err: unknown) => this.handshake(req, socket, head, { failure: err instanceof TokenError ? err.message : 'the token cannot be verified' }),
    );
  }

  private handshake(req: IncomingMessage, socket: AdmittedSocket, head: Buffer, credentials: Credentials): void {
    if (socket.destroyed) return;
    // the shutdown began while the token was verified: its close of every connection has passed this one by
    if (this.closing) return answerRaw(socket, 503, 'server is shutting down');
    if (credentials !== undefined && 'identity' in credentials) {
      const refusal = this.countUser(socket, credentials.identity.uid);
      if (refusal !== undefined) return answerRaw(socket, refusal.status, refusal.reason);
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, socket, credentials));
  }

  private accept(ws: GatewaySocket, socket: AdmittedSocket, credentials: Credentials): void {
    // first of all: without an 'error' listener, a bad frame from the client throws out of the process
    ws.on('error', this.onSocketError);
    if (credentials !== undefined && 'failure' in credentials) {
      // the client learns why in the close frame: a browser cannot read a refused handshake's status
      this.node.counters.authFailures++;
      ws.close(CloseCode.badToken, fitReason(credentials.failure));
      // ws would wait 30 s for the client's close frame: a refused client gets the grace any close gets
      const grace = setTimeout(() => ws.terminate(), this.shared.limits.closeGraceMs);
      ws.once('close', () => clearTimeout(grace));
      return;
    }
    const conn = new Connection(randomUUID(), ws, socket, this.shared);
    conn.identity = credentials?.identity;
    // without a trusted proxy the address is the socket's, read when asked for
    if (this.options.trustProxy !== undefined) conn.forwardedFor = socket.admittedFrom;
    ws.connection = conn;
    ws.on('message', this.onMessage);
    ws.on('ping', this.onControlFrame);
    ws.on('pong', this.onControlFrame);
    ws.on('close', this.onClose);
    if (this.options.auth === 'required' && conn.identity === undefined) {
      // no welcome until the client says who it is, in its first frames
      this.unauthenticated.add(conn);
      return;
    }
    this.node.addConnection(conn);
  }

  /** An `auth` or `refresh` op: verifies the token and applies it. Resolves with an error message, or undefined. */
  private async authenticate(conn: Connection, token: string): Promise<string | undefined> {
    if (this.verifier === undefined) return 'client authentication is off on this server (--auth off)';
    let identity: ClientIdentity;
    try {
      identity = await this.verifier.verify(token);
    } catch (err) {
      this.node.counters.authFailures++;
      return err instanceof TokenError ? err.message : 'the token cannot be verified';
    }
    if (conn.identity !== undefined && conn.identity.uid !== identity.uid) {
      this.node.counters.authFailures++;
      return `the token is for user ${identity.uid}, this connection is user ${conn.identity.uid}`;
    }
    const wasAnonymous = conn.identity === undefined;
    // a connection that became a user's (it is not counted once it is closing: its socket may be gone)
    if (wasAnonymous && conn.isOpen) {
      const refusal = this.countUser(conn.socket, identity.uid);
      if (refusal !== undefined) {
        conn.close('rateLimited', refusal.reason);
        return refusal.reason;
      }
    }
    conn.identity = identity;
    if (this.unauthenticated.delete(conn)) {
      if (conn.isOpen) this.node.addConnection(conn);
    } else if (wasAnonymous) {
      this.node.identify(conn, identity.uid);
    }
    return undefined;
  }

  /**
   * Counts the socket as one of the user's connections on this node until it
   * closes (releaseAdmission), or says why the user may not have one more.
   * The socket must not have closed yet.
   */
  private countUser(socket: AdmittedSocket, uid: string): Refusal | undefined {
    const refusal = this.admission.admitUser(uid);
    if (refusal !== undefined) {
      this.node.counters[REFUSAL_COUNTERS[refusal.limit]]++;
      return refusal;
    }
    socket.countedUser = uid;
    return undefined;
  }

  private sweep(): void {
    if (this.closing) return;
    const now = Date.now();
    const heartbeat = this.options.heartbeatTimeout;
    for (const conn of this.node.hub.conns.values()) {
      // closing already: by us (closeCode), or by ws for a protocol error
      if (!conn.isOpen) continue;
      if (heartbeat > 0 && conn.lastSeen < now - heartbeat) {
        this.node.counters.heartbeatTimeouts++;
        conn.close('heartbeatTimeout');
      } else if (conn.identity?.closesAt !== undefined && conn.identity.closesAt <= now) {
        this.node.counters.tokenExpiries++;
        conn.close('badToken');
      }
    }
    for (const conn of this.unauthenticated) {
      if (conn.isOpen && conn.connectedAt < now - this.options.authTimeout) {
        this.node.counters.authFailures++;
        conn.close('policy', `no {"op":"auth"} frame within ${this.options.authTimeout} ms`);
      }
    }
    this.admission.sweep(now);
    this.node.sweep(now);
  }
}

