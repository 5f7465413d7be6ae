/**
 * One SDK client of the soak, behind a TCP relay of its own so the soak can cut
 * its connection without a close (destroy both sides) and stop reading what the
 * gateway sends (a slow consumer). Everything it sees is recorded, timestamped.
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { RoomcastClient } from '../client/node.js';

export interface Received {
  t: number;
  /** Room id, `*` for a push to all, `conn` for a push to this connection. */
  stream: string;
  seq: number | undefined;
  data: string;
}

/** A membership change the soak asked for: by the logic API (wsId) or by the client's own op. */
export interface MembershipOp {
  kind: 'join' | 'leave';
  room: string;
  by: 'api' | 'client';
  sent: number;
  /** When the 2xx (or the op's reply) came; undefined while in flight. */
  ok?: number;
  /** The op failed in a way that says nothing about its effect (timeout, disconnected, 5xx): membership is unknown from `sent` on. */
  unknown?: boolean;
  /** The op was refused (4xx, 404 for a wsId gone): no effect. */
  refused?: boolean;
}

/** A `connected` state: `reset` when it did not recover everything (the first connection too). */
export interface Connect {
  t: number;
  wsId: string;
  reset: boolean;
}

export class SoakClient {
  readonly received: Received[] = [];
  readonly ops: MembershipOp[] = [];
  readonly connects: Connect[] = [];
  /** Server `left` frames, and `joined` frames, with when they came. */
  readonly serverLefts: { t: number; room: string }[] = [];
  readonly serverJoins: { t: number; room: string; seq: number | undefined }[] = [];
  readonly closeCodes = new Map<number, number>();
  /** What the soak did to the connection (destroy, pause). */
  readonly actions: { t: number; action: string }[] = [];
  readonly drops: { t: number; code: number | undefined; reason: string | undefined }[] = [];
  readonly client: RoomcastClient;
  opInFlight = false;
  closedAt: number | undefined;
  pausedUntil = 0;
  private links = new Set<{ client: Socket; upstream: Socket }>();
  private connections = 0;

  private constructor(
    readonly id: number,
    private readonly server: Server,
    private readonly pickGatewayPort: (connection: number) => number,
    private readonly now: () => number,
    /** The user (the token's `sub`) it connects as, with `--auth optional`; undefined: no token. */
    readonly user: string | undefined,
    token: string | undefined,
  ) {
    server.on('connection', (socket) => this.accept(socket));
    this.client = new RoomcastClient(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/connect`, {
      reconnect: { initialDelayMs: 200, maxDelayMs: 3000, factor: 2 },
      token,
    });
    this.client.on('message', ({ room, seq, data }) => {
      this.received.push({ t: now(), stream: room ?? (seq === undefined ? 'conn' : '*'), seq, data });
    });
    this.client.on('state', ({ state, wsId, recovered, code, reason }) => {
      if (state === 'connected') this.connects.push({ t: now(), wsId: wsId!, reset: recovered !== true });
      if (state === 'reconnecting' && code !== undefined) this.closeCodes.set(code, (this.closeCodes.get(code) ?? 0) + 1);
      if (state === 'reconnecting') this.drops.push({ t: now(), code, reason });
    });
    this.client.on('left', ({ room }) => this.serverLefts.push({ t: now(), room }));
    this.client.on('joined', ({ room, seq }) => this.serverJoins.push({ t: now(), room, seq }));
    this.client.on('error', () => undefined);
  }

  static async start(id: number, pickGatewayPort: (connection: number) => number, now: () => number, user?: { sub: string; token: string }): Promise<SoakClient> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return new SoakClient(id, server, pickGatewayPort, now, user?.sub, user?.token);
  }

  get connected(): boolean {
    return this.client.state === 'connected';
  }

  /** Cuts the connection without a close frame, both ways: the server sees it drop, the client sees 1006. */
  destroy(): void {
    this.actions.push({ t: this.now(), action: 'destroy' });
    for (const { client, upstream } of this.links) {
      client.destroy();
      upstream.destroy();
    }
  }

  /** Stops reading what the gateway sends for `ms` (the client's pings still go out). */
  pause(ms: number): void {
    this.pausedUntil = this.now() + ms;
    this.actions.push({ t: this.now(), action: `pause ${Math.round(ms)} ms` });
    for (const { upstream } of this.links) upstream.pause();
    setTimeout(() => this.resumeReading(), ms).unref();
  }

  resumeReading(): void {
    this.pausedUntil = 0;
    for (const { upstream } of this.links) upstream.resume();
  }

  async closeForGood(): Promise<void> {
    this.closedAt = this.now();
    this.resumeReading();
    this.client.close();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    this.destroy();
    this.server.close();
  }

  private accept(socket: Socket): void {
    const upstream = connect(this.pickGatewayPort(this.connections++), '127.0.0.1');
    const link = { client: socket, upstream };
    this.links.add(link);
    socket.on('error', () => undefined);
    upstream.on('error', () => undefined);
    // no pipe(): its drain handling would resume an upstream the soak paused
    upstream.on('data', (chunk: Buffer) => socket.write(chunk));
    socket.pipe(upstream);
    if (this.pausedUntil > this.now()) upstream.pause();
    const end = (): void => {
      if (!this.links.delete(link)) return;
      socket.destroy();
      upstream.destroy();
    };
    socket.on('close', end);
    upstream.on('close', end);
  }
}
