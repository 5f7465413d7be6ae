/** Names of every Redis key and channel roomcast uses, under one prefix. */
export class RedisNames {
  constructor(readonly prefix: string) {}

  /** Pub/sub channel of a room's publications. */
  roomChannel(room: string): string {
    return `${this.prefix}room:${room}`;
  }

  roomOfChannel(channel: string): string {
    return channel.slice(this.prefix.length + 5);
  }

  /** Pub/sub channel of pushes to one user. */
  userChannel(uid: string): string {
    return `${this.prefix}user:${uid}`;
  }

  userOfChannel(channel: string): string {
    return channel.slice(this.prefix.length + 5);
  }

  /** Pub/sub channel of push/all publications. */
  get allChannel(): string {
    return `${this.prefix}all`;
  }

  /** Pub/sub channel of commands addressed to one gateway node. */
  nodeChannel(nodeId: string): string {
    return `${this.prefix}node:${nodeId}`;
  }

  /** Pub/sub channel every gateway node listens on, for cluster-wide queries. */
  get nodesChannel(): string {
    return `${this.prefix}nodes`;
  }

  /** Pub/sub channel where one process receives the replies to its requests. */
  replyChannel(processId: string): string {
    return `${this.prefix}reply:${processId}`;
  }

  /** String key: the node that holds a wsId (expires unless refreshed). */
  connKey(wsId: string): string {
    return `${this.prefix}conn:${wsId}`;
  }

  /** Hash key: a stream's `seq` counter and `epoch`. */
  streamKey(stream: string): string {
    return `${this.prefix}stream:${stream}`;
  }

  /** Redis stream key: a stream's recent publications, with ids `<seq>-0`. */
  historyKey(stream: string): string {
    return `${this.prefix}history:${stream}`;
  }

  /**
   * Hash key: a session's rooms (field per room; value `seq:epoch`, where the
   * room stood when the session joined it, once the session is away; '' while
   * it is connected, or where that is not known), plus the fields SESSION_MARKER
   * (its uid, '' when anonymous), ROOMS_LIMIT_FIELD and, while away,
   * AWAY_FROM_FIELD of src/broker/redis/scripts.ts.
   */
  sessionKey(wsId: string): string {
    return `${this.prefix}session:${wsId}`;
  }

  /** Counter of the joins refused to away sessions by their rooms limit (by any logic process). */
  get awayRefusalsKey(): string {
    return `${this.prefix}away-room-limit-refusals`;
  }

  /** Counter ranking publications across streams. */
  get orderKey(): string {
    return `${this.prefix}order`;
  }

  /** String key: the secret resume tokens are signed with, shared by every node. */
  get secretKey(): string {
    return `${this.prefix}resume-secret`;
  }
}
