/**
 * Pushes the logic API answered 503 because the broker could not take them
 * (Redis away, too slow, or refusing writes: its maxmemory reached, say).
 * Counted by kind for GET /stats and /metrics, and logged: a warning at the
 * first one, then at most one line per interval while they go on (with how
 * many failed since the last line), and a line once a push goes through again.
 * Without it an operator would see the failures only in the callers' answers.
 */
import type { Logger } from 'pino';
import type { PushKind } from './push-once.js';
import type { PushCounters } from './routes.js';

const LINE_EVERY_MS = 10_000;

export class PushFailures {
  readonly counts: PushCounters = { all: 0, room: 0, conn: 0, user: 0 };
  private failing = false;
  /** Failures not told in a line yet. */
  private untold = 0;
  private lastLineAt = 0;

  constructor(
    private readonly log: Logger,
    private readonly lineEveryMs = LINE_EVERY_MS,
  ) {}

  failed(kind: PushKind, msg: string): void {
    this.counts[kind]++;
    this.untold++;
    const now = performance.now();
    if (this.failing && now - this.lastLineAt < this.lineEveryMs) return;
    const more = this.untold > 1 ? ` (${this.untold} pushes answered 503 since the last line)` : '';
    this.log.warn({ kind, failed: this.untold }, `a push could not be handed on and was answered 503: ${msg}${more}`);
    this.failing = true;
    this.untold = 0;
    this.lastLineAt = now;
  }

  /** A push went through: after failures, says so once. */
  succeeded(): void {
    if (!this.failing) return;
    const more = this.untold > 0 ? ` (${this.untold} more were answered 503 since the last line)` : '';
    this.log.info({ failed: this.untold }, `pushes are handed on again${more}`);
    this.failing = false;
    this.untold = 0;
  }
}
