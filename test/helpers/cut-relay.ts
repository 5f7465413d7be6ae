/**
 * A TCP relay in front of a real Redis that can be cut: every connection
 * through it is dropped and new ones are refused until it is mended. One
 * process connected through it loses Redis, as a network partition would,
 * while the others, connected straight to Redis, keep it.
 */
import { connect, createServer, type Socket } from 'node:net';

export class CutRelay {
  private readonly links = new Set<Socket>();
  private cut = false;
  private readonly server = createServer((client) => this.accept(client));
  private port = 0;

  private constructor(private readonly redisPort: number) {}

  static async start(redisPort: number): Promise<CutRelay> {
    const relay = new CutRelay(redisPort);
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    relay.port = (relay.server.address() as { port: number }).port;
    return relay;
  }

  /** The URL to give a process that reaches Redis through the relay. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Drops every connection through the relay; new ones are refused until `mend()`. */
  sever(): void {
    this.cut = true;
    for (const socket of this.links) socket.destroy();
  }

  mend(): void {
    this.cut = false;
  }

  async close(): Promise<void> {
    this.sever();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private accept(client: Socket): void {
    if (this.cut) {
      client.destroy();
      return;
    }
    const upstream = connect(this.redisPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      this.links.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.links.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
