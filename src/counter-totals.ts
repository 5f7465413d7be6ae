/**
 * Cluster-wide totals of the gateway nodes' counters that never go down, for
 * the Prometheus counters of src/metrics.ts.
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
import { emptyNodeCounters, type NodeCounters, type NodeStats } from './broker/broker.js';

const COUNTER_KEYS = Object.keys(emptyNodeCounters()) as (keyof NodeCounters)[];

export class CounterTotals {
  /** The last counters of every node ever seen (a gone node's stay in the totals; a few hundred bytes each). */
  private readonly lastByNode = new Map<string, NodeCounters>();
  private readonly sums: NodeCounters = emptyNodeCounters();

  /** Takes the nodes' latest counters; nodes absent from `perNode` keep their last ones. */
  update(perNode: ReadonlyMap<string, NodeStats>): void {
    for (const [nodeId, stats] of perNode) {
      let last = this.lastByNode.get(nodeId);
      if (last === undefined) {
        last = emptyNodeCounters();
        this.lastByNode.set(nodeId, last);
      }
      for (const key of COUNTER_KEYS) {
        const value = stats[key];
        if (typeof value !== 'number') continue; // a node of another version may lack a counter
        // a counter that went down was restarted from 0: all of `value` is new
        this.sums[key] += value >= last[key] ? value - last[key] : value;
        last[key] = value;
      }
    }
  }

  /** The total of one counter over every node seen so far. */
  get(key: keyof NodeCounters): number {
    return this.sums[key];
  }
}
