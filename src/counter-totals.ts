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

/** A node missing from every answer this long is gone: its last counters are let go (what it counted stays in the sums). */
export const FORGET_NODE_AFTER_MS = 60 * 60_000;

interface NodeEntry<K extends string> {
  counters: Record<K, number>;
  seenAt: number;
}

export class CounterTotals<K extends string> {
  /** The last counters of every node seen within FORGET_NODE_AFTER_MS (a few hundred bytes each). */
  private readonly lastByNode = new Map<string, NodeEntry<K>>();
  private readonly sums: Record<K, number>;

  constructor(private readonly keys: readonly K[]) {
    this.sums = CounterTotals.zeros(keys);
  }

  /** How many nodes' last counters are kept. */
  get nodes(): number {
    return this.lastByNode.size;
  }

  /** Takes the nodes' latest counters; nodes absent from `perNode` keep their last ones until they are forgotten. */
  update(perNode: ReadonlyMap<string, Readonly<Partial<Record<K, number>>>>, now = Date.now()): void {
    for (const [nodeId, counters] of perNode) {
      let entry = this.lastByNode.get(nodeId);
      if (entry === undefined) {
        entry = { counters: CounterTotals.zeros(this.keys), seenAt: now };
        this.lastByNode.set(nodeId, entry);
      }
      entry.seenAt = now;
      const last = entry.counters;
      for (const key of this.keys) {
        const value = counters[key];
        if (typeof value !== 'number') continue; // a node of another version may lack a counter
        // a counter that went down was restarted from 0: all of `value` is new
        this.sums[key] += value >= last[key] ? value - last[key] : value;
        last[key] = value;
      }
    }
    for (const [nodeId, entry] of this.lastByNode) if (now - entry.seenAt > FORGET_NODE_AFTER_MS) this.lastByNode.delete(nodeId);
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
