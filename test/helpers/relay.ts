/**
 * A TCP relay standing in for the network between clients and a gateway. It
 * can be pointed at another gateway, and can cut its clients off while the
 * gateway keeps their connections open: a phone losing its network, whose old
 * connection the server sees as live until its heartbeat runs out.
 */
import type { Socket } from 'node:net';
import { TcpRelay } from './tcp-relay.js';

export class Relay {
  private tcp!: TcpRelay;
  private readonly cutOff: Socket[] = [];
  /** What gateways sent on the connections that were cut off, after the cut. */
  private readonly sentAfterCut: Buffer[] = [];

  private constructor(private targetPort: number) {}

  static async start(targetPort: number): Promise<Relay> {
    const relay = new Relay(targetPort);
    relay.tcp = await TcpRelay.start(() => relay.targetPort);
    return relay;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.tcp.port}/connect`;
  }

  /** New connections go to this port from now on. */
  moveTo(port: number): void {
    this.targetPort = port;
  }

  /** Drops every client's side at once; the gateway's side stays open and silent. */
  cut(): void {
    for (const { client, upstream } of this.tcp.links) {
      upstream.unpipe(client);
      client.unpipe(upstream);
      upstream.on('data', (data: Buffer) => this.sentAfterCut.push(data)).resume();
      client.destroy();
      this.cutOff.push(upstream);
    }
    this.tcp.links.clear();
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
    for (const upstream of this.cutOff) upstream.destroy();
    await this.tcp.close();
  }
}
