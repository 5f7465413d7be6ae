/**
 * History reads of resumes, shared while in flight: after a reconnect storm
 * the members of a room resume together from the same seq, and each would
 * otherwise read (on Redis: fetch and decode) the very same page. A shared
 * page also hands every reader the same entry objects, whose frames
 * ReplayFrames then encodes once.
 *
 * A resume may only take a read issued after its connection entered every
 * stream it replays (its rooms, and `*` as it opened): a read issued before may miss a publication this node fanned out
 * before then, which would reach the connection neither live nor from history.
 * (A read issued after it sees every publication fanned out before: the node
 * fans a publication out only once the broker has stored it.)
 */
import type { HistoryPage } from '../broker/broker.js';

interface InFlight {
  issuedAt: number;
  page: Promise<HistoryPage>;
}

export class SharedHistoryReads {
  /** Orders joins and reads: a read stamped after a connection entered a stream (`now()`) was issued after it did. */
  private clock = 0;
  private readonly inFlight = new Map<string, InFlight>();

  constructor(private readonly read: (stream: string, after: number, limit: number) => Promise<HistoryPage>) {}

  /** Stamps a connection's entering a stream (a room, or `*` as it opens). */
  now(): number {
    return ++this.clock;
  }

  /** The stream's publications after `after` (at most `limit`), from a read issued after `notBefore`. */
  history(stream: string, after: number, limit: number, notBefore: number): Promise<HistoryPage> {
    const key = `${after} ${limit} ${stream}`;
    const shared = this.inFlight.get(key);
    if (shared !== undefined && shared.issuedAt > notBefore) return shared.page;
    const read: InFlight = { issuedAt: ++this.clock, page: this.read(stream, after, limit) };
    this.inFlight.set(key, read);
    const forget = (): void => {
      if (this.inFlight.get(key) === read) this.inFlight.delete(key);
    };
    read.page.then(forget, forget);
    return read.page;
  }
}
