/**
 * GET /stats/stream: the totals of GET /stats as Server-Sent Events, for the
 * admin page. One poller serves every viewer of a logic API: it reads the
 * totals once a second (on Redis, a query to every gateway node) from the
 * first viewer's arrival until the last one leaves.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { StatsData } from './answers.js';
import { errorMessage } from '../error-message.js';

const STATS_STREAM_INTERVAL_MS = 1000;

/** A reader that stops reading is dropped before its buffer grows past this. */
const MAX_BUFFERED_BYTES = 256 * 1024;

function event(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

function send(res: ServerResponse, text: string): void {
  if (res.destroyed) return;
  if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy();
  else res.write(text);
}

export class StatsStream {
  private readonly viewers = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private reading = false;
  /** The latest event, sent at once to a viewer that arrives between two reads. */
  private latest: string | undefined;

  constructor(private readonly read: () => Promise<StatsData>) {}

  follow(reply: FastifyReply): void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    // Node sends no header until a body is written, and never writes one for HEAD: end it here or it hangs
    if (reply.request.method === 'HEAD') {
      res.end();
      return;
    }
    // The request closes with its connection even where the answer never got the socket (one pipelined
    // behind another stream): that answer emits no close of its own, and would be read for every second.
    const req = reply.request.raw;
    if (req.destroyed) return;
    this.viewers.add(res);
    const leave = (): void => {
      if (this.viewers.delete(res) && this.viewers.size === 0) this.stop();
    };
    res.once('close', leave);
    req.once('close', leave);
    if (this.timer !== undefined) {
      if (this.latest !== undefined) send(res, this.latest);
      return;
    }
    this.timer = setInterval(() => void this.tick(), STATS_STREAM_INTERVAL_MS);
    void this.tick();
  }

  /** Ends every viewer's stream (the server is shutting down: a stream never ends by itself). */
  end(): void {
    for (const res of this.viewers) res.end();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.latest = undefined;
  }

  private async tick(): Promise<void> {
    // A broker slower than the interval skips ticks instead of piling reads up.
    if (this.reading) return;
    this.reading = true;
    let text: string;
    try {
      text = event('stats', { ...(await this.read()), at: Date.now() });
    } catch (err) {
      text = event('unavailable', { msg: `cannot read the totals: ${errorMessage(err)}` });
    } finally {
      this.reading = false;
    }
    if (this.timer === undefined) return; // the last viewer left while it read
    this.latest = text;
    for (const res of this.viewers) send(res, text);
  }
}
