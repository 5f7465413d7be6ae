import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Asks `probe` every 50 ms until it gives a value (a throw counts as not yet);
 * fails after `timeoutMs` with `what` (a function is asked then, so it can say
 * what did arrive) and the last error the probe threw.
 */
export async function until<T>(what: string | (() => string), probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const value = await Promise.resolve()
      .then(probe)
      .catch((err: unknown) => {
        lastError = err;
        return undefined;
      });
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const said = typeof what === 'function' ? what() : what;
      const error = lastError === undefined ? '' : `; the last probe threw: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`${said}: not within ${timeoutMs} ms${error}`);
    }
    await sleep(50);
  }
}

/** Resolves as `promise` does, or fails with `what` after `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Waits until `list` (filled by listeners) holds `length` items; the failure names what did arrive. */
export async function untilLength(what: string, list: readonly unknown[], length: number, timeoutMs = 10_000): Promise<void> {
  await until(
    () => `${length} ${what} (${list.length} arrived, the last: ${JSON.stringify(list.slice(-3))})`,
    () => (list.length >= length ? true : undefined),
    timeoutMs,
  );
}

/** Blocks this process's event loop for `ms`, as a GC pause or a burst of CPU work would: no timer runs, no socket is read. */
export function stallFor(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy
  }
}
