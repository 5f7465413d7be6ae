/**
 * A real redis-server for the tests, on a free loopback port. Where Debian's
 * redis-server is not installed the Redis tests are skipped, each suite with a
 * short reason, and `npm test` says once how to install it (test/redis-hint.ts);
 * with ROOMCAST_REQUIRE_REDIS=1 (as CI sets) they fail.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { freePort, redisAnswersPing, redisServerArgs, redisServerInstalled } from '../../bench/local-redis.js';
import { within } from './until.js';

const installed = redisServerInstalled();
const required = process.env.ROOMCAST_REQUIRE_REDIS === '1';

/** The one line that says what happens to the Redis tests here and how to install redis-server; undefined where it is installed. */
export const redisInstallHint: string | undefined = installed
  ? undefined
  : required
    ? 'redis-server is not installed, and ROOMCAST_REQUIRE_REDIS=1 makes the Redis tests fail: run `apt-get install -y redis-server`'
    : 'redis-server is not installed, so the Redis tests are skipped: run `apt-get install -y redis-server` to run them';

/** A reason to skip the Redis tests, or false when they must run: short, as every Redis suite shows it (redisInstallHint says how to install). */
export const skipWithoutRedis: string | false = installed || required ? false : 'redis-server is not installed';

export class RedisServer {
  private proc: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisServer> {
    if (!installed) throw new Error('redis-server is not installed (apt-get install -y redis-server), and ROOMCAST_REQUIRE_REDIS=1 requires it');
    const server = new RedisServer(await freePort());
    await server.restart();
    return server;
  }

  /** Starts (again) on the same port, with no persistence: a restart loses every key, as a real crash without persistence would. */
  async restart(): Promise<void> {
    this.proc = spawn('redis-server', redisServerArgs('127.0.0.1', this.port), { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      if (await redisAnswersPing('127.0.0.1', this.port)) return;
      await sleep(50);
    }
    throw new Error(`redis-server did not answer on port ${this.port}`);
  }

  /** Kills the server outright (SIGKILL) and waits until it is gone. */
  async kill(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (proc === undefined || proc.exitCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    await within(exited, 10_000, `redis-server on port ${this.port} to exit after SIGKILL`);
  }

  stop(): Promise<void> {
    return this.kill();
  }

  /** Stops the server (SIGSTOP) as a paused VM would: its connections stay open and commands wait, unanswered, until `thaw`. */
  freeze(): void {
    this.proc?.kill('SIGSTOP');
  }

  thaw(): void {
    this.proc?.kill('SIGCONT');
  }

  /** Runs one command on its own short-lived connection. */
  async command(args: string[]): Promise<unknown> {
    const client = createClient({ url: this.url });
    await client.connect();
    try {
      return await client.sendCommand(args);
    } finally {
      client.destroy();
    }
  }

  /** Closes the connection of the client with this name (CLIENT SETNAME), as a network cut, or Redis dropping a slow subscriber, would. */
  async killClient(name: string): Promise<void> {
    const list = String(await this.command(['CLIENT', 'LIST']));
    const id = list.split('\n').find((line) => line.includes(` name=${name} `))?.match(/^id=(\d+)/)?.[1];
    if (id === undefined) throw new Error(`no client named ${name} is connected to Redis`);
    await this.command(['CLIENT', 'KILL', 'ID', id]);
  }
}
