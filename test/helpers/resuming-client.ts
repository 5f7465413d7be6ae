/**
 * A client that does what PROTOCOL.md §4 asks of one: it remembers the last
 * seq and the epoch of every stream it is in, and when its connection drops it
 * reconnects (to the next gateway in its list) and resumes.
 */
import { WebSocket } from 'ws';
import type { Frame } from './client.js';
import type { Position } from './resume.js';
import { within } from './until.js';

export class ResumingClient {
  /** Every push received, across connections, in arrival order. */
  readonly pushes: Frame[] = [];
  readonly resumes: Frame[] = [];
  readonly errors: Frame[] = [];
  readonly since = new Map<string, Position>();
  wsId = '';
  private token = '';
  private ws: WebSocket | undefined;
  private stopped = false;
  private reconnect: NodeJS.Timeout | undefined;
  private attempt = 0;
  private ready: Promise<void> = Promise.resolve();
  private markReady: () => void = () => undefined;

  private constructor(private readonly urls: string[]) {}

  /** Connects to the first URL and waits for the welcome. */
  static async connect(urls: string[]): Promise<ResumingClient> {
    const client = new ResumingClient(urls);
    client.ready = new Promise((resolve) => (client.markReady = resolve));
    await within(client.open(false), 20_000, `a welcome from ${urls[0]}`);
    return client;
  }

  /** Resolves once the client is connected (and, after a drop, resumed). */
  whenSettled(): Promise<void> {
    return this.ready;
  }

  /** Closes the connection and ends reconnecting, also a reconnect already waiting. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.reconnect);
    this.ws?.close();
  }

  private open(resuming: boolean): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const url = this.urls[this.attempt++ % this.urls.length];
    const ws = new WebSocket(url);
    this.ws = ws;
    return new Promise((resolve, reject) => {
      void this.ready.then(resolve);
      ws.on('message', (data: Buffer) => this.onFrame(JSON.parse(data.toString()) as Frame, ws, resuming));
      ws.on('error', () => undefined);
      ws.on('close', () => {
        if (this.ws !== ws || this.stopped) return;
        this.ready = new Promise((r) => (this.markReady = r));
        // reconnect after a short pause; a refused attempt tries the next gateway
        this.reconnect = setTimeout(() => this.open(true).catch(() => undefined), 20);
      });
      ws.once('unexpected-response', () => reject(new Error(`handshake to ${url} refused`)));
    });
  }

  private onFrame(f: Frame, ws: WebSocket, resuming: boolean): void {
    switch (f.op) {
      case 'welcome':
        if (resuming && this.token !== '') {
          ws.send(JSON.stringify({ op: 'resume', token: this.token, since: Object.fromEntries(this.since) }));
          return;
        }
        this.wsId = f.wsId as string;
        this.token = f.resume as string;
        this.since.set('*', { seq: f.seq as number, epoch: f.epoch as string });
        ws.send('{"type":1,"data":"PING"}');
        this.markReady();
        return;
      case 'resumed':
        this.resumes.push(f);
        this.wsId = f.wsId as string;
        this.token = f.resume as string;
        for (const [stream, position] of Object.entries(f.streams as Record<string, Position>)) this.since.set(stream, position);
        this.markReady();
        return;
      case 'joined':
        this.since.set(f.room as string, { seq: f.seq as number, epoch: f.epoch as string });
        return;
      case 'left':
        this.since.delete(f.room as string);
        return;
      case 'error':
        this.errors.push(f);
        if (f.code === 'bad_resume') {
          this.since.clear();
          this.markReady();
        }
        return;
    }
    if (f.type >= 2) {
      this.pushes.push(f);
      const stream = (f.room as string | undefined) ?? '*';
      const known = this.since.get(stream);
      if (known !== undefined) known.seq = f.seq as number;
    }
  }
}
