/**
 * Prometheus metrics (prom-client), served by the logic API at `/metrics`.
 *
 * Nothing here runs on the fan-out path but the histogram's `observe`, once
 * per publication. Every other value is read when Prometheus scrapes: the
 * gauges from the broker's `stats()`, the gateway nodes' counters from its
 * `nodeStats()` (each once per scrape) through CounterTotals, so that they
 * never go down, and the push counters from the logic API that owns this
 * registry.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { NodeCounters, NodeStats } from './broker/broker.js';
import { CounterTotals } from './counter-totals.js';
import type { PushCounters } from './logic/routes.js';

export interface MetricsSource {
  readonly engine: string;
  /** Totals across every gateway node. */
  stats(): Promise<NodeStats & { nodes: number }>;
  /** Each gateway node's stats, by node id. */
  nodeStats(): Promise<Map<string, NodeStats>>;
  isReady(): boolean;
}

/** Fan-out time of one publication on one node: from 10 µs to 1 s. */
export const FANOUT_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

type Totals = NodeStats & { nodes: number };

const CLOSE_CAUSES = {
  slow_consumer: 'slowConsumerCloses',
  missed_messages: 'missedMessageCloses',
  heartbeat_timeout: 'heartbeatTimeouts',
  malformed: 'malformedCloses',
  kicked: 'kicks',
  rate_limited: 'frameRateCloses',
  token_expired: 'tokenExpiries',
} as const satisfies Record<string, keyof NodeCounters>;

/** Connections and joins refused by each limit (docs/SECURITY.md). */
const REFUSALS = {
  max_connections: 'refusedMaxConnections',
  max_connections_per_ip: 'refusedMaxConnectionsPerIp',
  connect_rate_per_ip: 'refusedConnectRate',
  allowed_origins: 'refusedOrigin',
  max_rooms_per_connection: 'roomLimitRefusals',
  bad_token: 'authFailures',
} as const satisfies Record<string, keyof NodeCounters>;

export class Metrics {
  readonly registry = new Registry();
  private readonly fanout: Histogram;
  /** The broker's totals as of the current scrape (the last good one if the broker cannot answer). */
  private stats: Totals | undefined;
  /** The gateway nodes' counters summed so that they never go down, as of the same scrape. */
  private readonly counters = new CounterTotals();

  constructor(
    private readonly source: MetricsSource,
    pushes: PushCounters,
  ) {
    const registers = [this.registry];
    const totals = (): Totals | undefined => this.stats;
    const gauge = (name: string, help: string, read: (s: Totals) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const s = totals();
          if (s !== undefined) this.set(read(s));
        },
      });
    };
    gauge('roomcast_connections', 'Open client connections, on every gateway node', (s) => s.connections);
    gauge('roomcast_rooms', 'Rooms with at least one member, on every gateway node', (s) => s.rooms);
    gauge('roomcast_gateway_nodes', 'Gateway nodes attached to the broker', (s) => s.nodes);

    const counters = this.counters;
    /** A counter read from the nodes' never-decreasing totals at scrape time, one series per label value. */
    const counter = (name: string, help: string, read: Record<string, keyof NodeCounters> | keyof NodeCounters, label?: string): void => {
      new Counter({
        name,
        help,
        labelNames: label === undefined ? [] : [label],
        registers,
        collect() {
          if (totals() === undefined) return; // nothing read yet: no series rather than a 0 that jumps
          this.reset();
          if (typeof read === 'string') this.inc(counters.get(read));
          else for (const [value, key] of Object.entries(read)) this.inc({ [label!]: value }, counters.get(key));
        },
      });
    };
    counter('roomcast_deliveries_total', 'Frames queued to clients by pushes, on every gateway node', 'deliveries');
    counter('roomcast_closes_total', 'Connections closed by the server, by cause, on every gateway node', CLOSE_CAUSES, 'cause');
    counter('roomcast_refusals_total', 'Connections, tokens and joins refused by a limit, on every gateway node', REFUSALS, 'limit');
    counter('roomcast_resumes_total', 'Sessions taken back by a reconnecting client, on every gateway node', 'resumes');
    new Counter({
      name: 'roomcast_pushes_total',
      help: 'Pushes accepted by this logic API, by kind (all, room, conn, user)',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        for (const kind of ['all', 'room', 'conn', 'user'] as const) this.inc({ kind }, pushes[kind]);
      },
    });
    new Gauge({
      name: 'roomcast_broker_up',
      help: 'Whether the broker can hand pushes on (1) or not (0)',
      labelNames: ['engine'],
      registers,
      collect() {
        this.set({ engine: source.engine }, source.isReady() ? 1 : 0);
      },
    });
    this.fanout = new Histogram({
      name: 'roomcast_fanout_duration_seconds',
      help: "Time to encode one publication and queue it for the members of this process's gateway nodes",
      buckets: FANOUT_BUCKETS,
      registers,
    });
    collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Given to gateway nodes (`GatewayNode.onFanout`); called once per publication. */
  readonly observeFanout = (seconds: number): void => {
    this.fanout.observe(seconds);
  };

  /** The metrics in Prometheus text format. */
  async render(): Promise<string> {
    try {
      const [stats, perNode] = await Promise.all([this.source.stats(), this.source.nodeStats()]);
      this.stats = stats;
      this.counters.update(perNode);
    } catch {
      // Keep the last totals: counters must not fall back to zero while the broker is away; roomcast_broker_up says it is.
    }
    return this.registry.metrics();
  }
}
