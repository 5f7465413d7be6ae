/**
 * A TCP relay in front of a real Redis that can hold back what one of its
 * clients sends: from a chosen command on, that connection's commands wait in
 * the relay (Redis and every other connection go on) until released. It stands
 * for a network or a Redis that is slow for one process at one chosen moment,
 * so a race between processes can be run in a fixed order. It also tells
 * when Redis has answered a chosen command (`answered`), so a test waits for
 * that rather than for a time.
 */
import type { Socket } from 'node:net';
import { readCommands, readReply } from './resp.js';
import { TcpRelay, type Link } from './tcp-relay.js';

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
  /** What went on to Redis and is not yet a whole command. */
  sentPart: Buffer;
  /** What Redis answered and is not yet a whole reply. */
  answerPart: Buffer;
  /** The commands that went on to Redis and are not answered yet, in order: for each, the watches it answers. */
  unanswered: Watch[][];
}

interface Watch {
  /** Whether the answer to this command is awaited, given the client's name and the command's words. */
  matches(name: string, words: string[]): boolean;
  onAnswered(): void;
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
  private readonly watches: Watch[] = [];
  private readonly clients = new WeakMap<Link, Client>();

  static async start(redisPort: number): Promise<RedisRelay> {
    const relay = new RedisRelay();
    relay.tcp = await TcpRelay.start(() => redisPort, {
      carrier: (link) => (chunk) => relay.carry(relay.clientOf(link), chunk),
      answerCarrier: (link) => (chunk) => relay.answer(link, chunk),
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

  /**
   * Resolves once Redis has answered, with anything but an error, a command
   * for which `matches(name, words)` is true that went on to Redis after this
   * call (one held then counts once it is let through); fails when none was
   * answered within `timeoutMs`. Within MULTI, a command's answer is QUEUED;
   * on a RESP2 subscriber connection messages look like answers: match no
   * command there.
   */
  answered(matches: (name: string, words: string[]) => boolean, timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let watch!: Watch;
    return new Promise<void>((resolve, reject) => {
      watch = { matches, onAnswered: resolve };
      this.watches.push(watch);
      timer = setTimeout(() => reject(new Error(`no command awaited was answered within ${timeoutMs} ms`)), timeoutMs);
    }).finally(() => {
      clearTimeout(timer);
      const index = this.watches.indexOf(watch);
      if (index !== -1) this.watches.splice(index, 1);
    });
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
      this.send(client, chunk);
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
    for (const chunk of waiting) this.send(client, chunk);
  }

  private clientOf(link: Link): Client {
    let client = this.clients.get(link);
    if (client === undefined) {
      client = { upstream: link.upstream, name: '', waiting: undefined, sentPart: Buffer.alloc(0), answerPart: Buffer.alloc(0), unanswered: [] };
      this.clients.set(link, client);
    }
    return client;
  }

  /** Passes a chunk on to Redis, noting each command it completes with the watches it answers. */
  private send(client: Client, chunk: Buffer): void {
    client.upstream.write(chunk);
    const { commands, rest } = readCommands(Buffer.concat([client.sentPart, chunk]));
    for (const words of commands) client.unanswered.push(this.watches.filter((watch) => watch.matches(client.name, words)));
    client.sentPart = rest;
  }

  /** Passes a chunk of Redis's answers back to the client, resolving the watches of each command answered without an error. */
  private answer(link: Link, chunk: Buffer): void {
    link.client.write(chunk);
    const client = this.clientOf(link);
    const answers = Buffer.concat([client.answerPart, chunk]);
    let at = 0;
    for (let reply = readReply(answers, at); reply !== undefined; reply = readReply(answers, at)) {
      const watches = reply.kind === 'push' ? [] : (client.unanswered.shift() ?? []);
      if (reply.kind === 'answer') for (const watch of watches) watch.onAnswered();
      at = reply.end;
    }
    client.answerPart = answers.subarray(at);
  }
}
