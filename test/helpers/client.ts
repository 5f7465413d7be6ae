/** A WebSocket test client (the `ws` library) that records every frame it receives. */
import { WebSocket } from 'ws';
import { within } from './until.js';

export interface Frame {
  type: number;
  data?: unknown;
  op?: string;
  room?: string;
  seq?: number;
  id?: number | string;
  code?: string;
  message?: string;
  wsId?: string;
  changed?: boolean;
  heartbeat?: number;
  [key: string]: unknown;
}

export interface Closed {
  code: number;
  reason: string;
}

export interface ClientOptions {
  headers?: Record<string, string>;
  /** Certificate to trust, for wss:// with a self-signed certificate. */
  ca?: Buffer;
  /** Source address (127.0.0.x), to look like another client. */
  localAddress?: string;
}

export class TestClient {
  readonly frames: Frame[] = [];
  wsId = '';
  private waiters: { test: (f: Frame) => boolean; resolve: (f: Frame) => void; reject: (e: Error) => void }[] = [];
  readonly closed: Promise<Closed>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as Frame;
      this.frames.push(frame);
      this.waiters = this.waiters.filter((w) => {
        if (!w.test(frame)) return true;
        w.resolve(frame);
        return false;
      });
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        for (const w of this.waiters.splice(0)) w.reject(new Error(`connection closed with ${code} before a matching frame arrived`));
      }),
    );
    ws.on('error', () => undefined);
  }

  welcome: Frame | undefined;

  /**
   * Connects and waits for the welcome frame. Like a real client, it then sends
   * its first frame at once (a PING, whose PONG it consumes), so the server
   * knows it is not resuming; `quiet` skips that.
   */
  static async connect(url: string, options: ClientOptions & { quiet?: boolean } = {}): Promise<TestClient> {
    const client = await TestClient.open(url, options);
    const welcome = client.next((f) => f.op === 'welcome');
    client.welcome = await welcome;
    client.wsId = client.welcome.wsId as string;
    if (options.quiet !== true) await client.ping();
    return client;
  }

  /** Opens the socket without waiting for a welcome (which may never come: auth required). */
  static async open(url: string, options: ClientOptions = {}): Promise<TestClient> {
    const ws = new WebSocket(url, { headers: options.headers, ca: options.ca, localAddress: options.localAddress });
    const client = new TestClient(ws);
    const opened = new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake answered ${res.statusCode}`)));
    });
    await within(opened, 20_000, `the WebSocket handshake with ${url}`).catch((err: unknown) => {
      ws.terminate();
      throw err;
    });
    return client;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Resolves with the first frame (already received or to come) that passes `test`. */
  next(test: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const seen = this.frames.find(test);
    if (seen !== undefined) {
      this.frames.splice(this.frames.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`)), timeoutMs);
      this.waiters.push({
        test,
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
        resolve: (f) => {
          clearTimeout(timer);
          this.frames.splice(this.frames.indexOf(f), 1);
          resolve(f);
        },
      });
    });
  }

  /** Waits until `count` frames passing `test` have arrived, and returns them in order. */
  async collect(test: (f: Frame) => boolean, count: number, timeoutMs = 10_000): Promise<Frame[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.filter(test).length < count) {
      if (Date.now() > deadline) throw new Error(`got ${this.frames.filter(test).length} of ${count} frames within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.frames.filter(test).slice(0, count);
  }

  async ping(data: unknown = 'PING'): Promise<Frame> {
    const pong = this.next((f) => f.type === 1);
    this.send({ type: 1, data });
    return pong;
  }

  /** The code the server closed the connection with, or 'still open' after `timeoutMs`. */
  closeCode(timeoutMs = 10_000): Promise<number | 'still open'> {
    let timer: NodeJS.Timeout | undefined;
    const open = new Promise<'still open'>((resolve) => (timer = setTimeout(() => resolve('still open'), timeoutMs)));
    return Promise.race([this.closed.then(({ code }) => code), open]).finally(() => clearTimeout(timer));
  }

  /** How the server closed the connection; fails with `what` when it is still open after `timeoutMs`. */
  closedWithin(what = `the server to close connection ${this.wsId}`, timeoutMs = 20_000): Promise<Closed> {
    return within(this.closed, timeoutMs, what);
  }

  async closeAndWait(): Promise<Closed> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    return this.closed;
  }
}

export function isPush(f: Frame): boolean {
  return f.type >= 2;
}
