/**
 * Keeps what one node fans out gap-free, stream by stream (PROTOCOL.md §3).
 *
 * Publications reach the node over a subscription that can drop (Redis
 * restarted, or it dropped a subscriber that read too slowly) while logic
 * processes go on accepting pushes. A stream may then miss publications, which
 * shows as a seq that jumps, or not at all when the stream went quiet. So after
 * a jump, and for every stream once the subscription is back, what was missed
 * is read from history and fanned out in order before newer live publications,
 * which wait meanwhile. Where history cannot cover the gap (trimmed, expired,
 * epoch changed), the stream's local members are closed so they reconnect and
 * resume, which tells them (`recovered:false`).
 */
import type { Logger } from 'pino';
import type { Broker, HistoryPage, Publication, StreamPosition } from '../broker/broker.js';
import { settleWithin } from '../deadline-timer.js';
import { wakeCaughtUp, type CatchUpTrack } from './catch-up.js';

/**
 * At most this many missed publications are read back per stream; a longer gap
 * closes its members. At most this many live ones wait behind a history read.
 */
const REPAIR_LIMIT = 10_000;
/** While history cannot be read (the broker's command connection is not back yet), it is tried again this often... */
const RETRY_MS = 200;
/** ...for this long (a read that hangs, too); then the members are closed, to resume once it can. */
const GIVE_UP_MS = 5_000;

/**
 * Where a stream stands as this node has fanned it out; `ready` once its
 * subscription is active and its position known. Only GapRepair moves it.
 */
export interface StreamTrack extends CatchUpTrack {
  ready: boolean;
  /** Live publications waiting behind a history read; set while there may be a gap. */
  waiting?: Publication[];
  /** History must be read before the waiting publications go out. */
  unchecked?: boolean;
  repairing?: boolean;
  /** The epoch the stream left when its history was lost: a publication of it still waiting is stale. */
  lostEpoch?: string;
}

function moveTo(track: StreamTrack, position: StreamPosition): void {
  track.seq = position.seq;
  track.epoch = position.epoch;
  if (track.catchUps !== undefined) wakeCaughtUp(track);
}

function takeWaiting(track: StreamTrack): Publication[] {
  const waiting = track.waiting ?? [];
  track.waiting = undefined;
  return waiting;
}

export interface GapHost {
  readonly broker: Broker;
  /** The stream's track, or undefined once the node no longer tracks it. */
  trackOf(stream: string): StreamTrack | undefined;
  tracks(): Iterable<[string, StreamTrack]>;
  /** Sends a publication to the stream's local members; its track has just moved to it. */
  fanOut(pub: Publication): void;
  /** Publications of the stream were lost: its local members must reconnect and resume. */
  lose(stream: string): void;
}

export class GapRepair {
  private subscribed = true;
  private stopped = false;

  constructor(
    private readonly host: GapHost,
    private readonly log: Logger,
  ) {}

  /** A live publication: fanned out, dropped as already fanned out, or held until a gap before it is filled. */
  receive(track: StreamTrack, pub: Publication): void {
    if (track.waiting !== undefined) {
      track.waiting.push(pub);
      if (track.waiting.length > REPAIR_LIMIT) {
        // the history read takes too long (it may hang): the node holds no more of the stream meanwhile
        this.log.warn({ stream: pub.stream }, `${REPAIR_LIMIT} publications waited for history; closing the members so they resume`);
        this.dropWaiting(pub.stream, track);
      }
      return;
    }
    if (!track.ready) {
      // still opening: a publication seen before the position was read is at least as new as it
      if (track.seq === -1 || pub.epoch !== track.epoch || pub.seq > track.seq) moveTo(track, pub);
      return;
    }
    // sent before the history of its epoch was lost (it waited behind the read that found the loss): its members were closed
    if (pub.epoch === track.lostEpoch) return;
    const sameEpoch = pub.epoch === track.epoch;
    // at or below the track: counted in the position read when the stream opened, or already read back from history
    if (sameEpoch && pub.seq <= track.seq) return;
    if (!sameEpoch) this.epochChanged(pub.stream, track, pub.epoch);
    if (pub.seq > track.seq + 1) {
      // a new epoch whose first publications did not arrive is read from its start
      track.waiting = [pub];
      track.unchecked = true;
      this.check(pub.stream, track);
      return;
    }
    this.send(track, pub);
  }

  /** The subscription dropped: every stream may miss publications until it is back and checked against history. */
  interrupted(): void {
    this.subscribed = false;
    for (const [, track] of this.host.tracks()) {
      track.waiting ??= [];
      track.unchecked = true;
    }
  }

  /** The subscription is active again. */
  restored(): void {
    this.subscribed = true;
    for (const [stream, track] of this.host.tracks()) this.check(stream, track);
  }

  /** The stream's subscription is active and its position read: a publication seen meanwhile is newer and wins. */
  opened(stream: string, track: StreamTrack, position: StreamPosition): void {
    if (track.seq === -1) moveTo(track, position);
    track.ready = true;
    // a check that waited for the position can run
    this.check(stream, track);
  }

  stop(): void {
    this.stopped = true;
  }

  private check(stream: string, track: StreamTrack): void {
    if (!this.subscribed || this.stopped || !track.ready || track.repairing === true || track.unchecked !== true) return;
    track.repairing = true;
    this.repair(stream, track).then(
      () => (track.repairing = false),
      (err: unknown) => {
        track.repairing = false;
        this.log.error({ err, stream }, 'filling a gap failed');
      },
    );
  }

  /** Fills the track's gaps until nothing can have been missed, letting the waiting publications go after each. */
  private async repair(stream: string, track: StreamTrack): Promise<void> {
    while (track.unchecked === true && this.subscribed) {
      if (!(await this.fill(stream, track))) return;
      // interrupted again while reading: read once more when the subscription is back; else a waiting one may open a new gap
      if (track.unchecked !== true) this.release(track);
    }
  }

  /** Reads what the track missed and fans it out; false when the node stopped tracking the stream meanwhile. */
  private async fill(stream: string, track: StreamTrack): Promise<boolean> {
    const started = Date.now();
    for (;;) {
      track.unchecked = false;
      try {
        const waitMs = Math.max(RETRY_MS, GIVE_UP_MS - (Date.now() - started));
        const page = await settleWithin(this.host.broker.history(stream, track.seq, REPAIR_LIMIT), waitMs, () => new Error(`history did not answer within ${waitMs} ms`));
        if (!this.tracking(stream, track)) return false;
        this.apply(stream, track, page);
        return true;
      } catch (err) {
        if (!this.tracking(stream, track)) return false;
        track.unchecked = true;
        if (!this.subscribed) return true;
        if (Date.now() - started >= GIVE_UP_MS) {
          this.giveUp(stream, track, err);
          return true;
        }
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS).unref());
      }
    }
  }

  private tracking(stream: string, track: StreamTrack): boolean {
    return !this.stopped && this.host.trackOf(stream) === track;
  }

  /** History cannot be read: the members resume once it can; the stream goes on from the newest publication seen. */
  private giveUp(stream: string, track: StreamTrack, err: unknown): void {
    this.log.warn({ err, stream }, 'cannot read history to fill a gap; closing the members so they resume');
    this.dropWaiting(stream, track);
    track.unchecked = false;
  }

  /** The members lose what waited (they resume); the stream goes on from the newest publication seen. */
  private dropWaiting(stream: string, track: StreamTrack): void {
    this.host.lose(stream);
    const newest = track.waiting?.at(-1);
    if (newest !== undefined) moveTo(track, newest);
    track.waiting = [];
  }

  /**
   * A live publication of another epoch: Redis lost the stream (flushed,
   * evicted, expired) while the node stayed subscribed, so the positions its
   * members hold name history that is gone. They are closed before the
   * publication goes out, so none of them gets it: their resume answers
   * recovered:false with the new epoch's position, and replays it.
   */
  private epochChanged(stream: string, track: StreamTrack, epoch: string): void {
    this.log.warn({ stream, seq: track.seq, epoch: track.epoch, now: epoch }, "the stream's epoch changed (Redis lost its history); closing the members so they resume");
    this.lose(stream, track, { seq: 0, epoch });
  }

  /** The stream's members are closed to resume; it goes on from `position`, and publications of the epoch it left are dropped. */
  private lose(stream: string, track: StreamTrack, position: StreamPosition): void {
    this.host.lose(stream);
    if (position.epoch !== track.epoch) track.lostEpoch = track.epoch;
    moveTo(track, position);
  }

  private apply(stream: string, track: StreamTrack, page: HistoryPage): void {
    if (page.epoch === track.epoch && page.complete) {
      for (const pub of page.entries) if (pub.seq > track.seq) this.send(track, pub);
      return;
    }
    this.log.warn({ stream, seq: track.seq, epoch: track.epoch, now: { seq: page.seq, epoch: page.epoch } }, 'history cannot fill a gap; closing the members so they resume');
    // the waiting publications may have been dropped while the read was out, moving the track past it
    if (page.epoch !== track.epoch || page.seq > track.seq) this.lose(stream, track, page);
    else this.host.lose(stream);
  }

  private send(track: StreamTrack, pub: Publication): void {
    moveTo(track, pub);
    this.host.fanOut(pub);
  }

  /** Sends the publications that waited, in order; one of them may open a new gap, and the rest wait again. */
  private release(track: StreamTrack): void {
    const waiting = takeWaiting(track);
    for (let i = 0; i < waiting.length; i++) {
      this.receive(track, waiting[i]);
      if (track.waiting !== undefined) {
        track.waiting.push(...waiting.slice(i + 1));
        return;
      }
    }
  }
}
