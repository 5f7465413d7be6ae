/**
 * The attached gateway node's channels on the subscriber connection: `all`,
 * its own and the nodes' request channels, and the channel of each room and
 * user it has members of; what arrives on them goes to the gateway, which is
 * also told when the subscriptions drop and when they are back.
 */
import { ALL_STREAM } from '../../protocol/room-id.js';
import type { GatewayHandler } from '../broker.js';
import { unavailable, withTimeout, type Client } from './calls.js';
import type { RedisNames } from './keys.js';
import { decodePublication, decodeUserPush } from './wire.js';

export class GatewaySubscriptions {
  /** Set from the moment the subscriber connection drops until it is back with every subscription. */
  private down = false;
  /**
   * The UNSUBSCRIBEs of closed rooms and users under way, and those lost with
   * the connection: the client resubscribes to every channel it had when it is
   * back, so a lost one is sent again then (unless the channel was opened again
   * since; each entry is that channel's latest close).
   */
  private readonly closing = new Map<string, { listener: (message: string, channel: string) => void; lost: boolean }>();

  constructor(
    private readonly subscriber: Client,
    private readonly names: RedisNames,
    private readonly requestTimeoutMs: number,
    private readonly gateway: () => GatewayHandler | undefined,
    /** Answers the requests sent to the node (src/broker/redis/node-requests.ts). */
    private readonly onNodeRequest: (message: string) => void,
  ) {}

  async attach(nodeId: string): Promise<void> {
    await Promise.all([
      this.subscriber.subscribe(this.names.allChannel, this.onAllMessage),
      this.subscriber.subscribe(this.names.nodeChannel(nodeId), this.onNodeRequest),
      this.subscriber.subscribe(this.names.nodesChannel, this.onNodeRequest),
    ]);
  }

  async detach(nodeId: string): Promise<void> {
    if (!this.subscriber.isReady) return;
    await Promise.allSettled([
      this.subscriber.unsubscribe(this.names.allChannel, this.onAllMessage),
      this.subscriber.unsubscribe(this.names.nodeChannel(nodeId), this.onNodeRequest),
      this.subscriber.unsubscribe(this.names.nodesChannel, this.onNodeRequest),
    ]);
  }

  async roomOpened(room: string): Promise<void> {
    await this.subscribe(this.names.roomChannel(room), this.onRoomMessage);
  }

  async roomClosed(room: string): Promise<void> {
    await this.unsubscribe(this.names.roomChannel(room), this.onRoomMessage);
  }

  async userOpened(uid: string): Promise<void> {
    await this.subscribe(this.names.userChannel(uid), this.onUserMessage);
  }

  async userClosed(uid: string): Promise<void> {
    await this.unsubscribe(this.names.userChannel(uid), this.onUserMessage);
  }

  /** Subscribes, or fails with 503 rather than wait for a Redis that is away. */
  private async subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<void> {
    this.closing.delete(channel);
    await withTimeout(this.subscriber.subscribe(channel, listener), this.requestTimeoutMs, `subscribing to ${channel}`).catch((err: unknown) => {
      throw unavailable(err);
    });
  }

  private async unsubscribe(channel: string, listener: (message: string, channel: string) => void): Promise<void> {
    const close = { listener, lost: false };
    this.closing.set(channel, close);
    try {
      await this.subscriber.unsubscribe(channel, listener);
      if (this.closing.get(channel) === close) this.closing.delete(channel);
    } catch (err) {
      close.lost = true;
      throw err;
    }
  }

  /** Sends again the UNSUBSCRIBEs lost with the connection, now that the client has resubscribed to their channels. */
  private unsubscribeLost(): void {
    for (const [channel, close] of [...this.closing]) if (close.lost) this.unsubscribe(channel, close.listener).catch(() => undefined);
  }

  private readonly onRoomMessage = (message: string, channel: string): void => {
    const pub = decodePublication(this.names.roomOfChannel(channel), message);
    if (pub !== undefined) this.gateway()?.onPublication(pub);
  };

  private readonly onUserMessage = (message: string, channel: string): void => {
    const push = decodeUserPush(this.names.userOfChannel(channel), message);
    if (push !== undefined) this.gateway()?.onUserPush(push);
  };

  private readonly onAllMessage = (message: string): void => {
    const pub = decodePublication(ALL_STREAM, message);
    if (pub !== undefined) this.gateway()?.onPublication(pub);
  };

  /**
   * Tells the gateway when its subscriptions drop and when they are back (the
   * client emits `ready` once it has resubscribed): it reads what it missed
   * meanwhile from history.
   */
  watchConnection(): void {
    this.subscriber.on('error', () => {
      if (this.subscriber.isReady || this.down) return;
      this.down = true;
      this.gateway()?.onSubscriptionsLost();
    });
    this.subscriber.on('ready', () => {
      this.unsubscribeLost();
      if (!this.down) return;
      this.down = false;
      this.gateway()?.onSubscriptionsRestored();
    });
  }
}
