/**
 * What one bench run compares: the peers as they are, and roomcast in one or
 * more variants (gateway workers on Redis, history on or off), each a row of
 * its own in every table.
 */
import { TARGETS, type TargetName } from './targets.js';

export type HistoryChoice = 'on' | 'off' | 'both';

/** Where roomcast's broker is: the embedded memory engine, a redis-server the bench starts per run, or one given by URL. */
export type BrokerChoice = { kind: 'memory' } | { kind: 'auto' } | { kind: 'url'; url: string };

export interface RoomcastVariant {
  /** Gateway worker processes (`roomcast start --workers N`); 0 runs the gateway in the one process. */
  workers: number;
  /** On Redis (true) or on the embedded memory engine. */
  redis: boolean;
  /** History for session recovery (the default); off runs with --history-size 0. */
  history: boolean;
}

export interface TargetRun {
  target: TargetName;
  label: string;
  /** roomcast only. */
  variant: RoomcastVariant | undefined;
}

/** roomcast as `roomcast start` runs with no flag: one process, memory engine, history on. The speed targets are about this one. */
export function isStandard(run: TargetRun): boolean {
  const v = run.variant;
  return run.target === 'roomcast' && v !== undefined && v.workers === 0 && !v.redis && v.history;
}

/** Whether a run has sessions to resume: roomcast with history (the peers have no resume; without history nothing can be replayed). */
export function canResume(run: TargetRun): boolean {
  return run.target === 'roomcast' && run.variant?.history === true;
}

export function variantLabel(v: RoomcastVariant): string {
  const parts: string[] = [];
  if (v.workers > 0) parts.push(`${v.workers} worker${v.workers === 1 ? '' : 's'}`);
  else if (v.redis) parts.push('on Redis');
  if (!v.history) parts.push('history off');
  return parts.length === 0 ? 'roomcast' : `roomcast, ${parts.join(', ')}`;
}

/** One run per peer, and one per roomcast variant (every worker count, with history on and/or off), in the order of --targets. */
export function targetRuns(targets: readonly TargetName[], workers: readonly number[], history: HistoryChoice, broker: BrokerChoice): TargetRun[] {
  const histories = history === 'both' ? [true, false] : [history === 'on'];
  const runs: TargetRun[] = [];
  for (const target of targets) {
    if (target !== 'roomcast') {
      runs.push({ target, label: TARGETS[target].label, variant: undefined });
      continue;
    }
    for (const n of workers) {
      for (const h of histories) {
        const variant: RoomcastVariant = { workers: n, redis: broker.kind !== 'memory', history: h };
        runs.push({ target, label: variantLabel(variant), variant });
      }
    }
  }
  return runs;
}

/** Server processes that hold the connections: the gateway workers, or the one process. */
export function gatewayProcesses(run: TargetRun): number {
  return Math.max(1, run.variant?.workers ?? 0);
}
