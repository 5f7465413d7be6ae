/**
 * A TCP relay in front of a real Redis that can hold back what one of its
 * clients sends: from a chosen command on, that connection's commands wait in
 * the relay (Redis and every other connection go on) until released. It stands
 * for a network or a Redis that is slow for one process at one chosen moment,
 * so a race between processes can be run in a fixed order.
 */
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

/** A held connection: `held` resolves once the command arrived and is held; `release` lets it and what followed through. */
export interface Hold {
  held: Promise<void>;
  release(): void;
}

interface Link {
  client: Socket;
  upstream: Socket;
  /** The client's connection name, once its handshake named it. */
  name: string;
  /** Set while held: what the client sent since. */
  waiting: Buffer[] | undefined;
}

interface Rule {
  /** Whether to hold this chunk, given the client's name (CLIENT SETNAME) and the chunk as text. */
  matches(name: string, text: string): boolean;
  /** The connection it holds, once one matched. */
  link?: Link;
  onHeld(): void;
}

const CLIENT_NAME = /roomcast:(?:commands|subscriber):[0-9a-f-]{36}/;

export class RedisRelay {
  private readonly links = new Set<Link>();
  private readonly rules: Rule[] = [];

  private constructor(private readonly server: Server) {}

  static async start(redisPort: number): Promise<RedisRelay> {
    const server = createServer();
    const relay = new RedisRelay(server);
    server.on('connection', (client) => relay.accept(client, redisPort));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return relay;
  }

  get url(): string {
    return `redis://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  /**
   * Holds the first chunk, on any connection, for which `matches(name, text)`
   * is true, and every later chunk of that connection, until `release()`;
   * `held` fails when none arrived within `timeoutMs`.
   */
  hold(matches: (name: string, text: string) => boolean, timeoutMs = 10_000): Hold {
    let onHeld!: () => void;
    let timer: NodeJS.Timeout | undefined;
    const held = new Promise<void>((resolve, reject) => {
      onHeld = resolve;
      timer = setTimeout(() => reject(new Error(`no command to hold arrived within ${timeoutMs} ms`)), timeoutMs);
    }).finally(() => clearTimeout(timer));
    held.catch(() => undefined);
    const rule: Rule = { matches, onHeld: () => onHeld() };
    this.rules.push(rule);
    return {
      held,
      release: () => {
        const index = this.rules.indexOf(rule);
        if (index !== -1) this.rules.splice(index, 1);
        if (rule.link !== undefined) this.letThrough(rule.link);
      },
    };
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.links) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise((resolve) => this.server.close(resolve));
  }

  private accept(client: Socket, redisPort: number): void {
    const upstream = connect(redisPort, '127.0.0.1');
    const link: Link = { client, upstream, name: '', waiting: undefined };
    this.links.add(link);
    for (const socket of [client, upstream]) socket.on('error', () => undefined);
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => this.carry(link, chunk));
    client.on('close', () => {
      this.links.delete(link);
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
  }

  private carry(link: Link, chunk: Buffer): void {
    if (link.waiting !== undefined) {
      link.waiting.push(chunk);
      return;
    }
    const text = chunk.toString('latin1');
    link.name ||= text.match(CLIENT_NAME)?.[0] ?? '';
    const rule = this.rules.find((r) => r.matches(link.name, text));
    if (rule === undefined) {
      link.upstream.write(chunk);
      return;
    }
    this.rules.splice(this.rules.indexOf(rule), 1);
    link.waiting = [chunk];
    rule.link = link;
    rule.onHeld();
  }

  private letThrough(link: Link): void {
    const waiting = link.waiting ?? [];
    link.waiting = undefined;
    for (const chunk of waiting) link.upstream.write(chunk);
  }
}
