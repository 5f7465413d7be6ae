/**
 * Follows GET /stats/stream. EventSource cannot send an Authorization header,
 * so this reads the event stream with fetch, which can. It reconnects after a
 * drop until stopped, and after a silence: a connection whose other end went
 * away without closing it (a host or network gone) stays open, and reads nothing, forever.
 */
import { authErrorOf, headersFor, readAnswer, type AuthError, type LiveStats } from './api';

export interface LiveHandlers {
  /** `first`: the first event of a new stream (after a reconnect, maybe of a restarted logic process, whose counters began again from 0). */
  stats(stats: LiveStats, first: boolean): void;
  /** The stream is down (with why), or up again (undefined). */
  problem(message: string | undefined): void;
  unauthorized(error: AuthError): void;
}

const RETRY_MS = 2000;
/** The server sends an event every second (a slow broker read skips some): this long without a byte, the stream is taken for dead. */
export const SILENCE_MS = 10_000;

/** Splits a chunk of text/event-stream into complete events; returns what is left over. */
export function takeEvents(buffer: string, onEvent: (event: string, data: string) => void): string {
  let end: number;
  while ((end = buffer.indexOf('\n\n')) !== -1) {
    const block = buffer.slice(0, end);
    buffer = buffer.slice(end + 2);
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
    }
    if (data.length > 0) onEvent(event, data.join('\n'));
  }
  return buffer;
}

export function followStats(key: string | undefined, handlers: LiveHandlers): () => void {
  let stopped = false;
  /** The connection attempt under way, aborted when stopped. */
  let current: AbortController | undefined;

  const run = async (): Promise<void> => {
    while (!stopped) {
      const attempt = new AbortController();
      current = attempt;
      const { signal } = attempt;
      let silence: ReturnType<typeof setTimeout> | undefined;
      const heard = (): void => {
        clearTimeout(silence);
        silence = setTimeout(() => attempt.abort(new Error(`no totals for ${SILENCE_MS / 1000} s (the connection may be gone)`)), SILENCE_MS);
      };
      try {
        heard();
        const res = await fetch('/stats/stream', { headers: headersFor(key), signal });
        if (!res.ok || res.body === null) {
          const refused = authErrorOf(await readAnswer(res));
          if (refused === undefined) throw new Error(`/stats/stream answered ${res.status}`);
          handlers.unauthorized(refused);
          return;
        }
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        let first = true;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          heard();
          buffer = takeEvents(buffer + value, (event, data) => {
            if (event === 'stats') {
              handlers.problem(undefined);
              handlers.stats(JSON.parse(data) as LiveStats, first);
              first = false;
            } else if (event === 'unavailable') {
              handlers.problem((JSON.parse(data) as { msg: string }).msg);
            }
          });
        }
        throw new Error('the live stream ended');
      } catch (err) {
        if (stopped) return;
        const why = signal.aborted && signal.reason instanceof Error ? signal.reason : err;
        handlers.problem(`live totals: ${why instanceof Error ? why.message : String(why)}; retrying`);
      } finally {
        clearTimeout(silence);
        attempt.abort(); // a stream that threw mid-read (a bad event) would keep its connection open
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  };
  void run();
  return () => {
    stopped = true;
    current?.abort();
  };
}
