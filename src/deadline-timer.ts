/**
 * A deadline that a stalled event loop does not misjudge.
 *
 * After the loop was blocked (GC, a burst of CPU work) for longer than a
 * timeout, Node runs expired timers before it reads the sockets: a plain
 * setTimeout would give up on an answer that arrived in time and is only
 * waiting to be read. Here the verdict is deferred by one setImmediate, which
 * runs after the poll phase of the same loop turn, so an answer already
 * received settles (and cancels the deadline) first.
 */
export interface DeadlineTimer {
  cancel(): void;
}

/** Calls `expired` once `ms` have passed and an answer already received had its turn to be read. */
export function startDeadline(ms: number, expired: () => void): DeadlineTimer {
  let immediate: NodeJS.Immediate | undefined;
  const timer = setTimeout(() => {
    immediate = setImmediate(expired);
  }, ms);
  return {
    cancel() {
      clearTimeout(timer);
      clearImmediate(immediate);
    },
  };
}

/** The promise's outcome, or a rejection with `late()` once `ms` have passed without it (judged as above). */
export function settleWithin<T>(promise: Promise<T>, ms: number, late: () => Error): Promise<T> {
  let deadline: DeadlineTimer | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    deadline = startDeadline(ms, () => reject(late()));
  });
  return Promise.race([promise, expired]).finally(() => deadline?.cancel());
}
