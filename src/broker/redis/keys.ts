/** The database a `redis://HOST:PORT/<db>` URL names (0 when it names none). */
export function redisDatabase(url: string): number {
  return Number(new URL(url).pathname.slice(1) || 0);
}

/** The ACL user a `redis://USER:PASSWORD@HOST:PORT` URL logs in as (`default` when it names none). */
export function redisUser(url: string): string {
  const { username } = new URL(url);
  try {
    return decodeURIComponent(username) || 'default';
  } catch {
    return username; // not percent-encoded as it should be: named as given
  }
}

/**
 * Names of every Redis key and channel roomcast uses, under one prefix.
 * Keys live in the URL's database, but pub/sub channels are shared by every
 * database of a server: on a database other than 0 the channels carry its
 * number (`roomcast:db3:all`), so deployments on databases of one server
 * never hear each other.
 */
export class RedisNames {
  private readonly channelPrefix: string;

  constructor(
    readonly prefix: string,
    database = 0,
  ) {
    this.channelPrefix = database === 0 ? prefix : `${prefix}db${database}:`;
  }

  /** Pub/sub channel of a room's publications. */
  roomChannel(room: string): string {
    return `${this.channelPrefix}room:${room}`;
  }

  roomOfChannel(channel: string): string {
    return channel.slice(this.channelPrefix.length + 5);
  }

  /** Pub/sub channel of pushes to one user. */
  userChannel(uid: string): string {
    return `${this.channelPrefix}user:${uid}`;
  }

  userOfChannel(channel: string): string {
    return channel.slice(this.channelPrefix.length + 5);
  }

  /** Pub/sub channel of push/all publications. */
  get allChannel(): string {
    return `${this.channelPrefix}all`;
  }

  /** Pub/sub channel of commands addressed to one gateway node. */
  nodeChannel(nodeId: string): string {
    return `${this.channelPrefix}node:${nodeId}`;
  }

  /** Pub/sub channel every gateway node listens on, for cluster-wide queries. */
  get nodesChannel(): string {
    return `${this.channelPrefix}nodes`;
  }

  /** Pub/sub channel where one process receives the replies to its requests. */
  replyChannel(processId: string): string {
    return `${this.channelPrefix}reply:${processId}`;
  }

  /** String key: a node's reply too large for pub/sub, read once by the process that asked (expires at once after). */
  answerKey(id: string): string {
    return `${this.prefix}answer:${id}`;
  }

  /** String key: a gateway node's state, `<run_id of the Redis it wrote to> <1 when its subscriber is subscribed, else 0>` (expires with the registry; src/broker/redis/node-state.ts). */
  nodeStateKey(nodeId: string): string {
    return `${this.prefix}node-state:${nodeId}`;
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

  /** String key, for a while after a kick ended the session `wsId` while it was away. */
  kickedKey(wsId: string): string {
    return `${this.prefix}kicked:${wsId}`;
  }

  /** Counter of the joins refused to away sessions by their rooms limit (by any logic process). */
  get awayRefusalsKey(): string {
    return `${this.prefix}away-room-limit-refusals`;
  }

  /** String key: a push's idempotency key (scoped, src/logic/push-once.ts) for its window, holding the push's answer ('' while under way). */
  pushKey(scopedKey: string): string {
    return `${this.prefix}push-key:${scopedKey}`;
  }

  /** Counter ranking publications across streams. */
  get orderKey(): string {
    return `${this.prefix}order`;
  }

  /** Hash key: the shared settings each live process runs with, a field per process (src/broker/redis/process-settings.ts). */
  get settingsKey(): string {
    return `${this.prefix}settings`;
  }

  /** String key: the secret resume tokens are signed with, shared by every node. */
  get secretKey(): string {
    return `${this.prefix}resume-secret`;
  }
}
