/**
 * Streams (`*` and each room) in Redis: publishing into them, where each
 * stands (seq and epoch), the history of each, and keeping the seq and epoch
 * of the streams a node has members in from expiring.
 */
import { randomUUID } from 'node:crypto';
import { ALL_STREAM } from '../../protocol/room-id.js';
import { historyEnabled, type HistoryLimits } from '../../history/ring.js';
import {
  historyPage,
  repeatedPublication,
  type HistoryEntry,
  type HistoryPage,
  type Published,
  type PushMessage,
  type PushOnce,
  type StreamPosition,
} from '../broker.js';
import { newEpoch } from '../epoch.js';
import type { RedisCalls } from './calls.js';
import type { RedisNames } from './keys.js';
import { REGISTRY_BATCH } from './registry.js';
import { HISTORY, POSITION, PUBLISH, PUBLISH_ONCE } from './scripts.js';

/** How long a stream's seq and epoch live after its last push, unless its history lives longer. */
const PUSHED_STREAM_TTL_SECONDS = 86_400;

/**
 * Beats (registryTtlMs / 3 each) in which a gateway keeps every stream it has
 * members in once: keeping each on every beat cost one EXPIRE per room per
 * beat (10,000 a second per gateway at 100,000 rooms) for a TTL of minutes.
 * keptStreamSeconds covers a round on top of a session's life.
 */
export const KEEP_ROUND_BEATS = 12;

/** The beat of a round in which a stream is kept: from its name, so it stays the same as rooms come and go. */
function sliceOf(stream: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < stream.length; i++) hash = Math.imul(hash ^ stream.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % KEEP_ROUND_BEATS;
}

export class RedisStreams {
  /** How long a stream's seq and epoch live after its last push. */
  private readonly streamTtlSeconds: string;
  /** The beat period (beatMs long, counted from the start) whose slice was kept last. */
  private keptPeriod = 0;
  private readonly startedAt = performance.now();
  /** Streams whose keep failed, kept with the next slice. */
  private readonly unkept = new Set<string>();

  constructor(
    private readonly names: RedisNames,
    private readonly calls: RedisCalls,
    private readonly historyLimits: HistoryLimits,
    /**
     * How long a stream's seq and epoch live after a join (or a node kept
     * them): past a round of keeps plus the life of any session that may
     * resume in it, even one of a killed node. A push keeps them
     * `streamTtlSeconds` (24 h, or --history-ttl when longer).
     */
    private readonly keptStreamSeconds: number,
    private readonly beatMs: number,
  ) {
    // history numbered by a seq must not outlive the seq and epoch: a new epoch would make it unreadable
    this.streamTtlSeconds = String(Math.max(PUSHED_STREAM_TTL_SECONDS, Math.ceil(historyLimits.ttlMs / 1000)));
  }

  /** With `once`, its key is checked and kept by the publish script itself (PUBLISH_ONCE): one publish per key, whichever process runs it. */
  async publish(stream: string, message: PushMessage, once?: PushOnce): Promise<Published> {
    const id = randomUUID();
    const channel = stream === ALL_STREAM ? this.names.allChannel : this.names.roomChannel(stream);
    const keys = [...this.streamKeys(stream), this.names.orderKey];
    const args = [
      channel,
      id,
      String(message.tag),
      message.val,
      newEpoch(),
      this.streamTtlSeconds,
      String(historyEnabled(this.historyLimits) ? this.historyLimits.size : 0),
      String(Math.ceil(this.historyLimits.ttlMs / 1000)),
    ];
    if (once !== undefined) {
      const reply = (await this.calls.runBeforeDeadline(PUBLISH_ONCE, [...keys, this.names.pushKey(once.key)], [...args, String(once.windowMs)])) as
        | [number, string]
        | ['repeated', string];
      if (reply[0] === 'repeated') return repeatedPublication(stream, message, reply[1]);
      return { id, stream, seq: reply[0], epoch: reply[1], tag: message.tag, val: message.val };
    }
    const [seq, epoch] = (await this.calls.runBeforeDeadline(PUBLISH, keys, args)) as [number, string];
    return { id, stream, seq, epoch, tag: message.tag, val: message.val };
  }

  async position(stream: string): Promise<StreamPosition> {
    const [seq, epoch] = (await this.calls.runScriptBounded(POSITION, this.streamKeys(stream), [newEpoch(), String(this.keptStreamSeconds)])) as [number, string];
    return { seq, epoch };
  }

  async history(stream: string, after: number, limit: number): Promise<HistoryPage> {
    type Reply = [number, string, [number, string, number, string, number][]] | [];
    const reply = (await this.calls.runScriptBounded(HISTORY, this.streamKeys(stream), [String(after), String(limit), String(this.historyLimits.ttlMs)])) as Reply;
    if (reply.length === 0) return historyPage(await this.position(stream), after, []);
    const [seq, epoch, rows] = reply;
    const entries = rows.map(([entrySeq, id, tag, val, order]): HistoryEntry => ({ stream, seq: entrySeq, epoch, id, tag, val, order }));
    return historyPage({ seq, epoch }, after, entries);
  }

  /**
   * Keeps the seq and epoch of the streams of this beat's slice (a round of
   * KEEP_ROUND_BEATS beats keeps each once, spread so that no beat keeps them
   * all), and those whose last keep failed: a stream that only went quiet
   * must not start a new epoch under its members.
   */
  keepSlice(streams: Iterable<string>): void {
    // slices follow the clock, not the count of beats: a late beat also keeps the slices whose time passed
    // meanwhile, so however late the beats run no stream waits more than a round (in time) between keeps
    const period = Math.floor((performance.now() - this.startedAt) / this.beatMs);
    const slices = new Set<number>();
    for (let p = Math.max(this.keptPeriod + 1, period - KEEP_ROUND_BEATS + 1); p <= period; p++) slices.add(p % KEEP_ROUND_BEATS);
    this.keptPeriod = Math.max(this.keptPeriod, period);
    const due = new Set(this.unkept);
    this.unkept.clear();
    for (const stream of streams) if (slices.has(sliceOf(stream))) due.add(stream);
    this.keep(due);
  }

  /**
   * Keeps the seq and epoch of every one of these streams at once (after Redis
   * was out of reach, when slices may have been missed): the node's every
   * stream, so those whose keep failed need no other.
   */
  keepAll(streams: Iterable<string>): void {
    this.unkept.clear();
    this.keep(streams);
  }

  /** Walked, not listed: a node passes its room index, and builds no array of 100,000s of rooms. */
  private keep(streams: Iterable<string>): void {
    let kept: string[] = [];
    for (const stream of streams) {
      kept.push(stream);
      if (kept.length === REGISTRY_BATCH) {
        this.keepBatch(kept);
        kept = [];
      }
    }
    if (kept.length > 0) this.keepBatch(kept);
  }

  private keepBatch(kept: string[]): void {
    const batch = this.calls.client.multi();
    for (const stream of kept) batch.expire(this.names.streamKey(stream), this.keptStreamSeconds, 'GT');
    batch.execAsPipeline().catch((err: unknown) => {
      // at the next beat, not a round later: keptStreamSeconds leaves a few beats of margin, not a round
      for (const stream of kept) this.unkept.add(stream);
      this.calls.logError(err, 'keeping stream positions');
    });
  }

  private streamKeys(stream: string): string[] {
    return [this.names.streamKey(stream), this.names.historyKey(stream)];
  }
}
