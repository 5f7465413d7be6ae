/**
 * Coalesces writes: frames queued for a connection during one turn of the
 * event loop are written together at the next `setImmediate`, so a burst of
 * pushes costs one socket write per connection instead of one per frame.
 */
export interface Flushable {
  /** True while the connection is waiting in the outbox. */
  queued: boolean;
  flush(): void;
}

export class Outbox {
  private dirty: Flushable[] = [];
  private spare: Flushable[] = [];
  private scheduled = false;
  private readonly run = (): void => this.flushAll();

  schedule(item: Flushable): void {
    if (item.queued) return;
    item.queued = true;
    this.dirty.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  /** Writes everything queued now (also used before a close, so nothing is lost). */
  flushAll(): void {
    this.scheduled = false;
    const batch = this.dirty;
    this.dirty = this.spare;
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i];
      item.queued = false;
      item.flush();
    }
    batch.length = 0;
    this.spare = batch;
  }
}
