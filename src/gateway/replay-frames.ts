/**
 * The WebSocket frame of each history entry a resume replays, encoded once
 * and written to every resuming client: after a reconnect storm every member
 * of a room replays the very same entries. Keyed by the entry object, so a
 * frame lives as long as its entry does (the memory engine's history keeps
 * its entries; a Redis read's entries go with the resumes that read them),
 * and costs nothing on the live fan-out path.
 */
import type { HistoryEntry } from '../broker/broker.js';
import { publicationFrame } from '../protocol/frames.js';
import { encodeTextFrame } from '../protocol/ws-frame.js';

export class ReplayFrames {
  private readonly frames = new WeakMap<HistoryEntry, Buffer>();

  frameOf(entry: HistoryEntry): Buffer {
    let frame = this.frames.get(entry);
    if (frame === undefined) {
      frame = encodeTextFrame(publicationFrame(entry));
      this.frames.set(entry, frame);
    }
    return frame;
  }
}
