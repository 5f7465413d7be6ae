/** GET /stats/stream: the totals of GET /stats as Server-Sent Events, for the admin page. */
import type { FastifyReply } from 'fastify';
import type { StatsData } from './routes.js';

export const STATS_STREAM_INTERVAL_MS = 1000;

/** A reader that stops reading is dropped before its buffer grows past this. */
const MAX_BUFFERED_BYTES = 256 * 1024;

export function streamStats(reply: FastifyReply, read: () => Promise<StatsData>, intervalMs = STATS_STREAM_INTERVAL_MS): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
  const write = (event: string, data: unknown): void => {
    if (res.destroyed) return;
    if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy();
    else res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  let reading = false;
  const tick = async (): Promise<void> => {
    // A broker slower than the interval skips ticks instead of piling reads up.
    if (reading) return;
    reading = true;
    try {
      write('stats', { ...(await read()), at: Date.now() });
    } catch (err) {
      write('unavailable', { msg: `cannot read the totals: ${err instanceof Error ? err.message : String(err)}` });
    } finally {
      reading = false;
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), intervalMs);
  res.on('close', () => clearInterval(timer));
}
