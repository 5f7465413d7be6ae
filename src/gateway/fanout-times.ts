/**
 * How long one gateway node takes to fan a publication out (encode it once and
 * queue it for every local member): a histogram kept by the node from its
 * start, read by the logic API's /metrics through the broker.
 */
import type { FanoutTimesSnapshot } from '../broker/broker.js';

/** Bucket upper bounds, in seconds: from 10 µs to 1 s. */
export const FANOUT_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export class FanoutTimes {
  private readonly counts: number[] = new Array<number>(FANOUT_BUCKETS.length + 1).fill(0);
  private sum = 0;

  observe(seconds: number): void {
    let bucket = 0;
    while (bucket < FANOUT_BUCKETS.length && seconds > FANOUT_BUCKETS[bucket]) bucket++;
    this.counts[bucket]++;
    this.sum += seconds;
  }

  snapshot(): FanoutTimesSnapshot {
    return { counts: [...this.counts], sum: this.sum };
  }
}
