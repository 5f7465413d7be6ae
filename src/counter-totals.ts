/**
 * Cluster-wide totals of the gateway nodes' counters that never go down, for
 * the Prometheus counters (and the fan-out histogram) of src/metrics.ts.
 *
 * The broker's plain sum drops whenever a node is missing from an answer (a
 * Redis query it did not answer in time, a node that died) or restarts from 0
 * (a respawned `--workers` gateway), and Prometheus reads any drop of a
 * counter as a reset. So this keeps each node's last counters by node id: a
 * node missing from an answer still counts with its last values, and a
 * counter of one node that went down means that node restarted, so what it
 * had counted before is kept on top. Node ids are new at every start, so a
 * restarted node is simply a new entry.
 */
export class CounterTotals<K extends string> {
  /** The last counters of every node ever seen (a gone node's stay in the totals; a few hundred bytes each). */
  private readonly lastByNode = new Map<string, Record<K, number>>();
  private readonly sums: Record<K, number>;

  constructor(private readonly keys: readonly K[]) {
    this.sums = CounterTotals.zeros(keys);
  }

  /** Takes the nodes' latest counters; nodes absent from `perNode` keep their last ones. */
  update(perNode: ReadonlyMap<string, Readonly<Partial<Record<K, number>>>>): void {
    for (const [nodeId, counters] of perNode) {
      let last = this.lastByNode.get(nodeId);
      if (last === undefined) {
        last = CounterTotals.zeros(this.keys);
        this.lastByNode.set(nodeId, last);
      }
      for (const key of this.keys) {
        const value = counters[key];
        if (typeof value !== 'number') continue; // a node of another version may lack a counter
        // a counter that went down was restarted from 0: all of `value` is new
        this.sums[key] += value >= last[key] ? value - last[key] : value;
        last[key] = value;
      }
    }
  }

  /** The total of one counter over every node seen so far. */
  get(key: K): number {
    return this.sums[key];
  }

  private static zeros<K extends string>(keys: readonly K[]): Record<K, number> {
    const zeros = {} as Record<K, number>;
    for (const key of keys) zeros[key] = 0;
    return zeros;
  }
}
