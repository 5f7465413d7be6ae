/**
 * A TCP relay in front of a real Redis that can hold back what one of its
 * clients sends: from a chosen command on, that connection's commands wait in
 * the relay (Redis and every other connection go on) until released. It stands
 * for a network or a Redis that is slow for one process at one chosen moment,
 * so a race between processes can be run in a fixed order.
 */
import type { Socket } from 'node:net';
import { TcpRelay } from './tcp-relay.js';

/** A held connection: `held` resolves once the command arrived and is held; `release` lets it and what followed through. */
export interface Hold {
  held: Promise<void>;
  release(): void;
}

/** One client's connection through the relay, as the holds see it. */
interface Client {
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
  client?: Client;
  onHeld(): void;
}

const CLIENT_NAME = /roomcast:(?:commands|subscriber):[0-9a-f-]{36}/;

export class RedisRelay {
  private tcp!: TcpRelay;
  private readonly rules: Rule[] = [];

  static async start(redisPort: number): Promise<RedisRelay> {
    const relay = new RedisRelay();
    relay.tcp = await TcpRelay.start(() => redisPort, {
      carrier: ({ upstream }) => {
        const client: Client = { upstream, name: '', waiting: undefined };
        return (chunk) => relay.carry(client, chunk);
      },
    });
    return relay;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.tcp.port}`;
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
        if (rule.client !== undefined) this.letThrough(rule.client);
      },
    };
  }

  async close(): Promise<void> {
    await this.tcp.close();
  }

  private carry(client: Client, chunk: Buffer): void {
    if (client.waiting !== undefined) {
      client.waiting.push(chunk);
      return;
    }
    const text = chunk.toString('latin1');
    client.name ||= text.match(CLIENT_NAME)?.[0] ?? '';
    const rule = this.rules.find((r) => r.matches(client.name, text));
    if (rule === undefined) {
      client.upstream.write(chunk);
      return;
    }
    this.rules.splice(this.rules.indexOf(rule), 1);
    client.waiting = [chunk];
    rule.client = client;
    rule.onHeld();
  }

  private letThrough(client: Client): void {
    const waiting = client.waiting ?? [];
    client.waiting = undefined;
    for (const chunk of waiting) client.upstream.write(chunk);
  }
}
