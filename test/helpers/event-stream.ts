import type { IncomingMessage, Server } from 'node:http';
import type { Broker } from '../../src/broker/broker.js';
import { within } from './until.js';

/** Reads a text/event-stream (GET /stats/stream) over real HTTP. */
export interface StreamEvent {
  event: string;
  data: Record<string, unknown>;
}

/** A text/event-stream read one event at a time. */
export class EventStream {
  private buffer = '';

  private constructor(
    readonly status: number,
    readonly type: string | null,
    private readonly reader: ReadableStreamDefaultReader<string> | undefined,
  ) {}

  static async open(url: string, headers: Record<string, string> = {}): Promise<EventStream> {
    const res = await fetch(url, { headers });
    const reader = res.body === null || res.status !== 200 ? undefined : res.body.pipeThrough(new TextDecoderStream()).getReader();
    if (reader === undefined) await res.body?.cancel();
    return new EventStream(res.status, res.headers.get('content-type'), reader);
  }

  /** The next event, or undefined once the stream has ended. */
  async next(): Promise<StreamEvent | undefined> {
    if (this.reader === undefined) return undefined;
    let end;
    while ((end = this.buffer.indexOf('\n\n')) === -1) {
      const { value, done } = await this.reader.read();
      if (done) return undefined;
      this.buffer += value;
    }
    const block = this.buffer.slice(0, end).split('\n');
    this.buffer = this.buffer.slice(end + 2);
    const event = block.find((l) => l.startsWith('event: '))?.slice(7) ?? 'message';
    const data = block.find((l) => l.startsWith('data: '))?.slice(6) ?? '{}';
    return { event, data: JSON.parse(data) as Record<string, unknown> };
  }

  async close(): Promise<void> {
    await this.reader?.cancel();
  }
}

/** Reads `count` events of a text/event-stream, then stops reading. */
export async function readEvents(
  url: string,
  count: number,
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<{ status: number; type: string | null; events: StreamEvent[] }> {
  const stream = await EventStream.open(url, headers);
  const events: StreamEvent[] = [];
  const reading = (async (): Promise<void> => {
    for (let event; events.length < count && (event = await stream.next()) !== undefined; ) events.push(event);
  })();
  try {
    await within(reading, timeoutMs, `${count} events from ${url}`);
  } finally {
    // cancelling ends a read still waiting, so `reading` settles too
    await stream.close();
  }
  return { status: stream.status, type: stream.type, events };
}

/** Counts the broker's totals reads (what each /stats/stream tick costs) until `restore`. */
export function countStatsReads(broker: Broker): { readonly count: number; restore(): void } {
  const readStats = broker.stats.bind(broker);
  const counter = {
    count: 0,
    restore: () => {
      broker.stats = readStats;
    },
  };
  broker.stats = () => {
    counter.count++;
    return readStats();
  };
  return counter;
}

/**
 * Counts the GET /stats/stream requests `server` has open, from their arrival to their close (the close the
 * server follows to let a viewer go), until `stop`: a test waits for 0 rather than for the server to have seen it.
 */
export function openStreamRequests(server: Server): { readonly count: number; stop(): void } {
  const counter = { count: 0, stop: () => server.off('request', onRequest) };
  const onRequest = (req: IncomingMessage): void => {
    if (req.url !== '/stats/stream') return;
    counter.count++;
    req.once('close', () => counter.count--);
  };
  server.on('request', onRequest);
  return counter;
}
