/**
 * What the relays of the tests share: a listener on a free loopback port that
 * joins each connection to a new one of its own to a target port, and tracks
 * the pairs. The relays built on it add what they do to those pairs (cut them,
 * refuse new ones, hold back what a client sends or what the target answers).
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** The two sockets the relay joins: a client's connection to it, and its own on to the target. */
export interface Link {
  client: Socket;
  upstream: Socket;
}

export interface TcpRelayOptions {
  /** Whether to join a new client at all; one refused is destroyed at once, without a connection to the target. */
  admits?: () => boolean;
  /** Makes, for each new pair, what takes what its client sends, instead of piping it on to the target as it comes. */
  carrier?: (link: Link) => (chunk: Buffer) => void;
  /** The same for what the target answers: what takes it, instead of piping it back to the client as it comes. */
  answerCarrier?: (link: Link) => (chunk: Buffer) => void;
}

export class TcpRelay {
  /** The joined pairs; one taken out is no longer ended with its other side (a cut that keeps one side open). */
  readonly links = new Set<Link>();

  private constructor(private readonly server: Server) {}

  /** Listens; each new client is joined to 127.0.0.1 at `targetPort()`, asked then. */
  static async start(targetPort: () => number, options: TcpRelayOptions = {}): Promise<TcpRelay> {
    const server = createServer();
    const relay = new TcpRelay(server);
    server.on('connection', (client) => relay.accept(client, targetPort(), options));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return relay;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Destroys both sides of every pair. */
  destroyLinks(): void {
    for (const { client, upstream } of this.links) {
      client.destroy();
      upstream.destroy();
    }
  }

  /** Destroys every pair, and stops listening. */
  async close(): Promise<void> {
    this.destroyLinks();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private accept(client: Socket, port: number, { admits, carrier, answerCarrier }: TcpRelayOptions): void {
    if (admits?.() === false) {
      client.destroy();
      return;
    }
    const upstream = connect(port, '127.0.0.1');
    const link = { client, upstream };
    this.links.add(link);
    for (const socket of [client, upstream]) socket.on('error', () => undefined);
    if (answerCarrier === undefined) upstream.pipe(client);
    else upstream.on('data', answerCarrier(link));
    if (carrier === undefined) client.pipe(upstream);
    else client.on('data', carrier(link));
    client.on('close', () => {
      if (this.links.delete(link)) upstream.destroy();
    });
    upstream.on('close', () => {
      if (this.links.delete(link)) client.destroy();
    });
  }
}
