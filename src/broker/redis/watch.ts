/**
 * Whether Redis answers, and where its clock stands against this process's.
 *
 * A Redis that is stopped (SIGSTOP, a VM paused, a long fork) keeps its TCP
 * connections open: commands are sent and simply wait. Only a command that
 * gets no answer tells, so a TIME goes out every half second; once one has
 * waited longer than the limit, Redis counts as not answering until it is
 * answered. The limit is a deadline timer (src/deadline-timer.ts): after a stall
 * of this process, an answer that came in meanwhile is read before it is
 * judged, so a stall alone never makes Redis count as silent. Each answer
 * also measures the offset of Redis's clock, so a deadline can be given to
 * Redis in its own time (see deadlineCheck in scripts.ts).
 */
import { startDeadline, type DeadlineTimer } from '../../deadline-timer.js';

/** How often a TIME goes out (when none is waiting). */
const WATCH_MS = 500;
/**
 * A sample's offset is off by at most half its round trip. One is taken when
 * its round trip is at most twice that of the sample in use (or that one is
 * older than SAMPLE_LIFE_MS), and never above MAX_SAMPLE_ROUND_TRIP_MS.
 */
const MAX_SAMPLE_ROUND_TRIP_MS = 1000;
const SAMPLE_LIFE_MS = 10_000;

export interface TimeSource {
  readonly isReady: boolean;
  sendCommand(args: string[]): Promise<unknown>;
}

export class RedisWatch {
  private offsetMs = 0;
  /** The round trip and time of the sample the offset comes from. */
  private sample = { roundTripMs: Number.POSITIVE_INFINITY, at: 0 };
  /** The deadline of the TIME waiting for its answer; undefined while none waits. */
  private waiting: DeadlineTimer | undefined;
  /** Set when the TIME waiting has passed its deadline. */
  private silent = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: TimeSource,
    /** How long a TIME may wait before Redis counts as not answering. */
    readonly silentAfterMs: number,
  ) {}

  /** Measures the clock once (so deadlines are right from the start), then keeps watching. */
  async start(): Promise<void> {
    this.timer = setInterval(() => void this.ask(), WATCH_MS).unref();
    await this.ask();
  }

  stop(): void {
    clearInterval(this.timer);
    this.waiting?.cancel();
  }

  /** Connected again, maybe to another server with another clock: the next answer sets the offset. */
  reconnected(): void {
    this.sample = { roundTripMs: Number.POSITIVE_INFINITY, at: 0 };
  }

  /** False from when a TIME has waited longer than `silentAfterMs` until it is answered. */
  get answering(): boolean {
    return !this.silent;
  }

  /** The moment `ms` from now, on Redis's clock (ms since the epoch). */
  deadline(ms: number): number {
    return Math.round(Date.now() + this.offsetMs + ms);
  }

  private async ask(): Promise<void> {
    if (this.waiting !== undefined || !this.redis.isReady) return;
    const sent = Date.now();
    this.waiting = startDeadline(this.silentAfterMs, () => void (this.silent = true));
    try {
      const [seconds, micros] = (await this.redis.sendCommand(['TIME'])) as [string, string];
      const received = Date.now();
      const roundTripMs = received - sent;
      const better = roundTripMs <= 2 * this.sample.roundTripMs || received - this.sample.at > SAMPLE_LIFE_MS;
      if (better && roundTripMs <= MAX_SAMPLE_ROUND_TRIP_MS) {
        this.offsetMs = Number(seconds) * 1000 + Number(micros) / 1000 - (sent + received) / 2;
        this.sample = { roundTripMs, at: received };
      }
    } catch {
      // the connection dropped: the client's own state says so, and it reconnects
    } finally {
      this.waiting.cancel();
      this.waiting = undefined;
      this.silent = false;
    }
  }
}
