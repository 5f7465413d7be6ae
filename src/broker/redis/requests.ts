/**
 * Requests this process sent over Redis and is waiting to hear back about:
 * each has an id, the number of replies it expects, and a deadline.
 */
import { startDeadline, type DeadlineTimer } from '../../deadline-timer.js';

interface Pending {
  expected: number;
  /** A reply that settles the request at once, however many are still expected. */
  decisive?: (reply: unknown) => boolean;
  replies: unknown[];
  deadline: DeadlineTimer;
  settle: (replies: unknown[], timedOut: boolean) => void;
}

export class PendingRequests {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  /**
   * Reserves an id; `wait` then resolves with the replies once `expected` arrived
   * or one is `decisive`, or with what arrived by the deadline.
   */
  open(timeoutMs: number): { reqId: number; wait: (expected: number, decisive?: (reply: unknown) => boolean) => Promise<{ replies: unknown[]; timedOut: boolean }> } {
    const reqId = this.nextId++;
    let settle!: Pending['settle'];
    const done = new Promise<{ replies: unknown[]; timedOut: boolean }>((resolve) => {
      settle = (replies, timedOut) => resolve({ replies, timedOut });
    });
    const entry: Pending = {
      expected: Number.POSITIVE_INFINITY,
      replies: [],
      deadline: startDeadline(timeoutMs, () => this.finish(reqId, true)),
      settle,
    };
    this.pending.set(reqId, entry);
    return {
      reqId,
      wait: (expected, decisive) => {
        entry.expected = expected;
        entry.decisive = decisive;
        if (entry.replies.length >= expected || (decisive !== undefined && entry.replies.some(decisive))) this.finish(reqId, false);
        return done;
      },
    };
  }

  deliver(reqId: number, reply: unknown): void {
    const entry = this.pending.get(reqId);
    if (entry === undefined) return;
    entry.replies.push(reply);
    if (entry.replies.length >= entry.expected || entry.decisive?.(reply) === true) this.finish(reqId, false);
  }

  cancel(reqId: number): void {
    this.finish(reqId, false);
  }

  /** Settles everything still waiting (on close). */
  cancelAll(): void {
    for (const reqId of [...this.pending.keys()]) this.finish(reqId, true);
  }

  private finish(reqId: number, timedOut: boolean): void {
    const entry = this.pending.get(reqId);
    if (entry === undefined) return;
    this.pending.delete(reqId);
    entry.deadline.cancel();
    entry.settle(entry.replies, timedOut);
  }
}
