/**
 * Resumes waiting for this node to fan streams out past the positions their
 * replay reached (see CATCH_UP_MS in resume.ts). A track holds a set of
 * waiters only while someone waits on it, so moving it costs one property
 * read, and nothing per member.
 */
import type { StreamPosition } from '../broker/broker.js';

/** One stream a resume waits on: `reached` once the track is at `seq` in `epoch`, or in another epoch. */
interface CatchUp extends StreamPosition {
  reached(): void;
}

export interface CatchUpTrack extends StreamPosition {
  /** Set only while a resume waits on the stream: a reconnect storm leaves thousands waiting on `*`. */
  catchUps?: Set<CatchUp>;
}

/** The track has not yet fanned out `wanted`; a track in another epoch never will, and is not behind. */
export function isBehind(track: StreamPosition, wanted: StreamPosition): boolean {
  return track.epoch === wanted.epoch && track.seq < wanted.seq;
}

/** The track moved (or is dropped, `all`): wakes the waiters it is no longer behind. */
export function wakeCaughtUp(track: CatchUpTrack, all = false): void {
  const waiting = track.catchUps;
  if (waiting === undefined) return;
  for (const wait of waiting) {
    if (!all && isBehind(track, wait)) continue;
    waiting.delete(wait);
    wait.reached();
  }
  if (waiting.size === 0) track.catchUps = undefined;
}

/** Resolves with true once no track is behind the position given with it, or with false after `timeoutMs` (one timer in all). */
export function caughtUp(behind: [CatchUpTrack, StreamPosition][], timeoutMs: number): Promise<boolean> {
  if (behind.length === 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    let left = behind.length;
    const reached = (): void => {
      if (--left > 0) return;
      clearTimeout(timer);
      resolve(true);
    };
    const waits = behind.map(([track, { seq, epoch }]) => [track, { seq, epoch, reached }] as const);
    const timer = setTimeout(() => {
      for (const [track, wait] of waits) {
        track.catchUps?.delete(wait);
        if (track.catchUps?.size === 0) track.catchUps = undefined;
      }
      resolve(false);
    }, timeoutMs).unref();
    for (const [track, wait] of waits) (track.catchUps ??= new Set()).add(wait);
  });
}
