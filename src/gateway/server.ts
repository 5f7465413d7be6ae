/**
 * The gateway's network side: an HTTP server that upgrades `/connect` to
 * WebSocket, a heartbeat sweep, and a draining shutdown.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer, type Server as WsServer } from 'ws';
import type { Broker } from '../broker/broker.js';
import { CloseCode } from '../protocol/close-codes.js';
import { Connection, type ConnectionShared } from './connection.js';
import { handleInbound, type InboundContext } from './inbound.js';
import { GatewayNode } from './node.js';
import { Outbox } from './outbox.js';
import { ResumeTokens } from './resume-token.js';

export interface GatewayOptions {
  host: string;
  port: number;
  path: string;
  heartbeatTimeoutMs: number;
  maxPayload: number;
  sendBufferLimit: number;
  allowClientJoin: boolean;
  /** How long a closing client may take to answer the close handshake. */
  closeGraceMs?: number;
  nodeId?: string;
  /** Signs resume tokens; by default the broker's shared secret. */
  resumeSecret?: string;
}

const DEFAULT_CLOSE_GRACE_MS = 3000;
const SHUTDOWN_TIMEOUT_MS = 3000;

function answerRaw(socket: Duplex, status: number, reason: string, message: string): void {
  const body = JSON.stringify({ code: status, msg: message });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** No status code in the close frame (RFC 6455 §7.1.5): what a browser's close() without a code sends. */
const NO_STATUS = 1005;

/** A session ends when the client closed it (1000, or no code) or was kicked; after any other close it can be resumed. */
function isResumable(code: number): boolean {
  return code !== CloseCode.normal && code !== NO_STATUS && code !== CloseCode.kicked;
}

function destroySocket(this: Duplex): void {
  this.destroy();
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** ws's WebSocket with a link to its connection, so one set of listeners serves every connection. */
class GatewaySocket extends WebSocket {
  connection: Connection | undefined;
}

type SocketListener<A extends unknown[] = []> = (this: WebSocket, ...args: A) => void;

function connectionOf(ws: WebSocket): Connection {
  return (ws as GatewaySocket).connection!;
}

interface SocketListeners {
  message: SocketListener<[Buffer]>;
  alive: SocketListener;
  error: SocketListener<[Error]>;
  close: SocketListener<[number]>;
}

/**
 * The listeners of every client socket, made once per gateway: a closure per
 * connection and event would cost memory on every idle connection.
 */
function socketListeners(inbound: InboundContext, log: Logger): SocketListeners {
  return {
    message(data) {
      const conn = connectionOf(this);
      const now = Date.now();
      conn.lastSeen = now;
      handleInbound(inbound, conn, data, now);
    },
    alive() {
      connectionOf(this).lastSeen = Date.now();
    },
    error(err) {
      log.debug({ err, wsId: connectionOf(this).wsId }, 'client protocol error');
    },
    close(code: number) {
      const conn = connectionOf(this);
      conn.closed();
      inbound.node.removeConnection(conn, isResumable(conn.closeCode ?? code));
    },
  };
}

export class GatewayServer {
  readonly node: GatewayNode;
  private readonly http: Server;
  private readonly wss: WsServer<typeof GatewaySocket>;
  private readonly shared: ConnectionShared;
  private readonly listeners: SocketListeners;
  private sweepTimer: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(
    private readonly options: GatewayOptions,
    private readonly broker: Broker,
    log: Logger,
  ) {
    this.node = new GatewayNode(options.nodeId ?? randomUUID(), broker, options.heartbeatTimeoutMs, log);
    const node = this.node;
    this.shared = {
      outbox: new Outbox(),
      limits: { sendBufferLimit: options.sendBufferLimit, closeGraceMs: options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS },
      onSlowConsumer(slow) {
        node.counters.slowConsumerCloses++;
        log.debug({ wsId: slow.wsId }, 'closing slow consumer');
      },
    };
    this.listeners = socketListeners({ node, allowClientJoin: options.allowClientJoin, log }, log);
    this.wss = new WebSocketServer({
      WebSocket: GatewaySocket,
      noServer: true,
      maxPayload: options.maxPayload,
      perMessageDeflate: false,
      clientTracking: false,
    });
    this.wss.on('wsClientError', (err: Error, socket: Duplex) => {
      const [status, reason] = err.message === 'Invalid HTTP method' ? [405, 'Method Not Allowed'] : [400, 'Bad Request'];
      answerRaw(socket, status, reason, `bad WebSocket handshake: ${err.message}`);
    });
    this.http = createServer((req, res) => this.answerPlainHttp(req, res));
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    this.http.on('clientError', (_err, socket: Duplex) => {
      if (socket.writable) answerRaw(socket, 400, 'Bad Request', 'malformed HTTP request');
      else socket.destroy();
    });
  }

  async listen(): Promise<AddressInfo> {
    await this.broker.attachGateway(this.node);
    await this.node.start(new ResumeTokens(this.options.resumeSecret ?? (await this.broker.resumeSecret())));
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen({ host: this.options.host, port: this.options.port, backlog: 4096 }, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    if (this.options.heartbeatTimeoutMs > 0) {
      const every = Math.max(50, Math.min(1000, Math.floor(this.options.heartbeatTimeoutMs / 4)));
      this.sweepTimer = setInterval(() => this.sweep(), every);
    }
    return this.http.address() as AddressInfo;
  }

  get address(): AddressInfo {
    return this.http.address() as AddressInfo;
  }

  /** Stops accepting, closes every client with 1001, and resolves once they are gone (or after a timeout). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    const serverClosed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    for (const conn of this.node.hub.conns.values()) conn.close('goingAway');
    const deadline = setTimeout(() => {
      for (const conn of this.node.hub.conns.values()) conn.terminate();
      this.http.closeAllConnections();
    }, SHUTDOWN_TIMEOUT_MS);
    await serverClosed;
    clearTimeout(deadline);
    this.node.stop();
    await this.broker.detachGateway(this.node);
  }

  private answerPlainHttp(req: IncomingMessage, res: ServerResponse): void {
    const path = pathOf(req.url);
    const [status, body] =
      path === '/healthz'
        ? [200, { code: 0, msg: 'ok', data: { status: 'ok', connections: this.node.hub.conns.size } }]
        : path === this.options.path
          ? [426, { code: 426, msg: `${this.options.path} is a WebSocket endpoint: connect with a WebSocket client` }]
          : [404, { code: 404, msg: `no such path ${path.slice(0, 200)}: the WebSocket endpoint is ${this.options.path}` }];
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // A shared listener, not a closure: a closure here would share this call's
    // scope and keep `req` (about 1.5 KB with its headers) alive as long as the socket.
    socket.on('error', destroySocket);
    if (this.closing) return answerRaw(socket, 503, 'Service Unavailable', 'server is shutting down');
    const path = pathOf(req.url);
    if (path !== this.options.path) {
      return answerRaw(socket, 404, 'Not Found', `no WebSocket endpoint at ${path.slice(0, 200)}: use ${this.options.path}`);
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, socket));
  }

  private accept(ws: GatewaySocket, socket: Duplex): void {
    const conn = new Connection(randomUUID(), ws, socket, this.shared);
    ws.connection = conn;
    ws.on('message', this.listeners.message);
    ws.on('ping', this.listeners.alive);
    ws.on('pong', this.listeners.alive);
    ws.on('error', this.listeners.error);
    ws.on('close', this.listeners.close);
    this.node.addConnection(conn);
  }

  private sweep(): void {
    const deadline = Date.now() - this.options.heartbeatTimeoutMs;
    for (const conn of this.node.hub.conns.values()) {
      if (conn.lastSeen < deadline && conn.closeCode === undefined) {
        this.node.counters.heartbeatTimeouts++;
        conn.close('heartbeatTimeout');
      }
    }
  }
}
