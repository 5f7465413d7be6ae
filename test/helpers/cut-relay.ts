/**
 * A TCP relay in front of a real Redis that can be cut: every connection
 * through it is dropped and new ones are refused until it is mended. One
 * process connected through it loses Redis, as a network partition would,
 * while the others, connected straight to Redis, keep it.
 */
import { TcpRelay } from './tcp-relay.js';

export class CutRelay {
  private cut = false;
  private tcp!: TcpRelay;

  static async start(redisPort: number): Promise<CutRelay> {
    const relay = new CutRelay();
    relay.tcp = await TcpRelay.start(() => redisPort, { admits: () => !relay.cut });
    return relay;
  }

  /** The URL to give a process that reaches Redis through the relay. */
  get url(): string {
    return `redis://127.0.0.1:${this.tcp.port}`;
  }

  /** Drops every connection through the relay; new ones are refused until `mend()`. */
  sever(): void {
    this.cut = true;
    this.tcp.destroyLinks();
  }

  mend(): void {
    this.cut = false;
  }

  async close(): Promise<void> {
    this.cut = true;
    await this.tcp.close();
  }
}
