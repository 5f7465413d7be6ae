/**
 * A TCP relay standing in for the network between clients and a gateway. It
 * can be pointed at another gateway, and can cut its clients off while the
 * gateway keeps their connections open: a phone losing its network, whose old
 * connection the server sees as live until its heartbeat runs out.
 */
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

export class Relay {
  private readonly live = new Set<{ client: Socket; upstream: Socket }>();
  private readonly cutOff: Socket[] = [];
  /** What gateways sent on the connections that were cut off, after the cut. */
  private readonly sentAfterCut: Buffer[] = [];

  private constructor(
    private readonly server: Server,
    private targetPort: number,
  ) {}

  static async start(targetPort: number): Promise<Relay> {
    const server = createServer();
    const relay = new Relay(server, targetPort);
    server.on('connection', (client) => relay.accept(client));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return relay;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as { port: number }).port}/connect`;
  }

  /** New connections go to this port from now on. */
  moveTo(port: number): void {
    this.targetPort = port;
  }

  /** Drops every client's side at once; the gateway's side stays open and silent. */
  cut(): void {
    for (const { client, upstream } of this.live) {
      upstream.unpipe(client);
      client.unpipe(upstream);
      upstream.on('data', (data: Buffer) => this.sentAfterCut.push(data)).resume();
      client.destroy();
      this.cutOff.push(upstream);
    }
    this.live.clear();
  }

  /** The close codes in the WebSocket close frames gateways sent on cut-off connections. */
  closeCodesAfterCut(): number[] {
    const bytes = Buffer.concat(this.sentAfterCut);
    const codes: number[] = [];
    // server frames are unmasked: 0x88 (FIN + close), a 7-bit length, then the code
    for (let i = 0; i + 3 < bytes.length; i++) if (bytes[i] === 0x88 && bytes[i + 1] >= 2 && bytes[i + 1] <= 125) codes.push(bytes.readUInt16BE(i + 2));
    return codes;
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.live) {
      client.destroy();
      upstream.destroy();
    }
    for (const upstream of this.cutOff) upstream.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private accept(client: Socket): void {
    const upstream = connect(this.targetPort, '127.0.0.1');
    const pair = { client, upstream };
    this.live.add(pair);
    for (const socket of [client, upstream]) socket.on('error', () => undefined);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => {
      if (this.live.delete(pair)) upstream.destroy();
    });
    upstream.on('close', () => {
      if (this.live.delete(pair)) client.destroy();
    });
  }
}
