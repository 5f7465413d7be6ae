/**
 * `roomcast_fanout_duration_seconds`: the fan-out histograms of every gateway
 * node, summed. prom-client's Histogram can only observe values one by one,
 * and these come as bucket counts from the nodes (through the broker), so this
 * is a metric object of its own that the registry renders like a histogram.
 */
import type { FanoutTimesSnapshot } from './broker/broker.js';
import { CounterTotals } from './counter-totals.js';
import { FANOUT_BUCKETS } from './gateway/fanout-times.js';

const NAME = 'roomcast_fanout_duration_seconds';
const BUCKET_KEYS = [...FANOUT_BUCKETS.map((_, i) => `b${i}`), 'over'];

interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

export class FanoutMetric {
  readonly name = NAME;
  readonly help = 'Time for a gateway node to encode one publication and queue it for its members, on every gateway node';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** Bucket counts and sum over every node, never going down (a gone node's observations stay); the count is that of every bucket. */
  private readonly totals = new CounterTotals<string>([...BUCKET_KEYS, 'sum']);

  update(perNode: ReadonlyMap<string, FanoutTimesSnapshot>): void {
    const flat = new Map<string, Record<string, number>>();
    for (const [nodeId, times] of perNode) {
      const record: Record<string, number> = { sum: times.sum };
      BUCKET_KEYS.forEach((key, i) => (record[key] = times.counts[i] ?? 0));
      flat.set(nodeId, record);
    }
    this.totals.update(flat);
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const values: Sample[] = [];
    let cumulative = 0;
    FANOUT_BUCKETS.forEach((le, i) => {
      cumulative += this.totals.get(`b${i}`);
      values.push({ metricName: `${NAME}_bucket`, labels: { le }, value: cumulative });
    });
    cumulative += this.totals.get('over');
    values.push({ metricName: `${NAME}_bucket`, labels: { le: '+Inf' }, value: cumulative });
    values.push({ metricName: `${NAME}_sum`, labels: {}, value: this.totals.get('sum') });
    values.push({ metricName: `${NAME}_count`, labels: {}, value: cumulative });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** The totals are the nodes' own; there is nothing here to reset. */
  reset(): void {}
}
