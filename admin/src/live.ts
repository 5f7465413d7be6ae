/**
 * Follows GET /stats/stream. EventSource cannot send an Authorization header,
 * so this reads the event stream with fetch, which can. It reconnects after a
 * drop until stopped.
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
  const abort = new AbortController();
  let stopped = false;

  const run = async (): Promise<void> => {
    while (!stopped) {
      try {
        const res = await fetch('/stats/stream', { headers: headersFor(key), signal: abort.signal });
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
        handlers.problem(`live totals: ${err instanceof Error ? err.message : String(err)}; retrying`);
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  };
  void run();
  return () => {
    stopped = true;
    abort.abort();
  };
}
