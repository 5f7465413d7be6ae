/**
 * Prometheus metrics (prom-client), served by the logic API at `/metrics`.
 *
 * Nothing here runs on the fan-out path. Every value is read when Prometheus
 * scrapes, from the broker's `clusterReport()` (once per scrape): the gauges,
 * the gateway nodes' counters and fan-out histograms, summed through
 * CounterTotals so that they never go down, and each gateway process's own
 * figures; the push counters (and pushes refused) come from the logic API that
 * owns this registry. So one scrape of a logic API covers every gateway
 * process, also those that serve no HTTP of their own.
 */
import { readdir } from 'node:fs/promises';
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';
import { NODE_COUNTER_KEYS, type ClusterReport, type NodeCounters, type NodeReport, type ProcessReport } from './broker/broker.js';
import { CounterTotals } from './counter-totals.js';
import { FanoutMetric } from './fanout-metric.js';
import { PUSH_KINDS } from './logic/push-once.js';
import type { PushCounters } from './logic/routes.js';

export interface MetricsSource {
  readonly engine: string;
  clusterReport(): Promise<ClusterReport>;
  isReady(): boolean;
}

/** What the logic API serving /metrics counts itself. */
export interface LogicCounters {
  pushes: PushCounters;
  /** Pushes not made because they repeated an idempotency key. */
  repeats: PushCounters;
  /** Pushes answered 503: the broker could not take them. */
  failures: PushCounters;
  /** Pushes refused because their val was over --max-val-size. */
  refusedValSize: { count: number };
}

interface Totals {
  connections: number;
  rooms: number;
  nodes: number;
}

/** Not a node id (those are UUIDs): the entry of CounterTotals that holds the broker's own count of joins refused to away sessions. */
const AWAY_SESSIONS = '#away-sessions';

let processMetrics: Registry | undefined;

/**
 * prom-client's default metrics that list every open handle or resource of the
 * process at each scrape (process._getActiveHandles, getActiveResourcesInfo):
 * with 15,000 connections they held the event loop ~6 ms per scrape, growing
 * with connections. roomcast_connections says what they mostly counted.
 */
const PER_HANDLE_METRICS = ['nodejs_active_handles', 'nodejs_active_handles_total', 'nodejs_active_resources', 'nodejs_active_resources_total'];

/**
 * The process_* and nodejs_* metrics of this process, collected once however
 * many logic APIs it runs (as tests do): their collectors, a GC observer and
 * an event-loop monitor, run for the life of the process.
 */
function processRegistry(): Registry {
  if (processMetrics === undefined) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
    for (const name of PER_HANDLE_METRICS) processMetrics.removeSingleMetric(name);
    if (processMetrics.getSingleMetric(OPEN_FDS) !== undefined) {
      processMetrics.removeSingleMetric(OPEN_FDS);
      openFdsGauge(processMetrics);
    }
  }
  return processMetrics;
}

const OPEN_FDS = 'process_open_fds';

/**
 * prom-client's process_open_fds lists /proc/self/fd with readdirSync: one fd
 * per connection, so 8 ms of a held event loop per scrape at 15,000
 * connections. The same count, listed on the thread pool.
 */
function openFdsGauge(registry: Registry): void {
  new Gauge({
    name: OPEN_FDS,
    help: 'Number of open file descriptors.',
    registers: [registry],
    async collect() {
      try {
        // less the one the listing itself had open
        this.set((await readdir('/proc/self/fd')).length - 1);
      } catch {
        // /proc is not readable: no value rather than a wrong one
      }
    },
  });
}

const CLOSE_CAUSES = {
  slow_consumer: 'slowConsumerCloses',
  missed_messages: 'missedMessageCloses',
  session_taken: 'sessionTakenCloses',
  resume_retry: 'resumeRetryCloses',
  heartbeat_timeout: 'heartbeatTimeouts',
  malformed: 'malformedCloses',
  too_large: 'tooLargeCloses',
  kicked: 'kicks',
  rate_limited: 'frameRateCloses',
  token_expired: 'tokenExpiries',
} as const satisfies Record<string, keyof NodeCounters>;

/** Connections, tokens and joins refused by each limit (docs/SECURITY.md), on the gateway nodes (and the broker, for away sessions). */
const REFUSALS = {
  max_connections: 'refusedMaxConnections',
  max_connections_per_ip: 'refusedMaxConnectionsPerIp',
  max_connections_per_user: 'refusedMaxConnectionsPerUser',
  connect_rate_per_ip: 'refusedConnectRate',
  allowed_origins: 'refusedOrigin',
  max_rooms_per_connection: 'roomLimitRefusals',
  bad_token: 'authFailures',
} as const satisfies Record<string, keyof NodeCounters>;

export class Metrics {
  /** This API's metrics and the process's. */
  readonly registry: Registry;
  private readonly fanout = new FanoutMetric();
  /** The cluster's gauges as of the current scrape (the last good one if the broker cannot answer). */
  private totals: Totals | undefined;
  /** The gateway nodes' counters summed so that they never go down, as of the same scrape. */
  private readonly counters = new CounterTotals(NODE_COUNTER_KEYS);
  /** The gateway nodes that answered the current scrape. */
  private reports: NodeReport[] = [];
  /** False when the current scrape could not read the broker: its values are the last ones read. */
  private readOk = true;
  /** What the broker evicted to stay within its memory bounds, as of the same scrape (the broker's own counts: they never go down). */
  private evictions = { historyEvictions: 0, pushKeyEvictions: 0 };

  constructor(
    private readonly source: MetricsSource,
    { pushes, repeats, failures, refusedValSize }: LogicCounters,
  ) {
    const own = new Registry();
    const registers = [own];
    const totals = (): Totals | undefined => this.totals;
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
    /**
     * A counter read from the nodes' never-decreasing totals at scrape time, one
     * series per label value; `logic` adds series counted by this logic API.
     */
    const counter = (
      name: string,
      help: string,
      read: Record<string, keyof NodeCounters> | keyof NodeCounters,
      label?: string,
      logic: Record<string, () => number> = {},
    ): void => {
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
          for (const [value, count] of Object.entries(logic)) this.inc({ [label!]: value }, count());
        },
      });
    };
    counter('roomcast_deliveries_total', 'Frames queued to clients by pushes, on every gateway node', 'deliveries');
    counter('roomcast_closes_total', 'Connections closed by the server, by cause, on every gateway node', CLOSE_CAUSES, 'cause');
    counter(
      'roomcast_refusals_total',
      'Connections, tokens and joins refused by a limit, on every gateway node; pushes refused (max_val_size) by this logic API',
      REFUSALS,
      'limit',
      { max_val_size: () => refusedValSize.count },
    );
    counter('roomcast_resumes_total', 'Sessions taken back by a reconnecting client, on every gateway node', 'resumes');
    counter(
      'roomcast_away_sessions_ended_total',
      'Away sessions ended before their recovery window closed, to keep a node (--max-connections) or an address (--max-connections-per-ip) within its limit of them, on every gateway node',
      'awaySessionsEnded',
    );
    const evictions = (name: string, help: string, kind: keyof Metrics['evictions']): void => {
      const count = (): number => this.evictions[kind];
      new Counter({
        name,
        help,
        registers,
        collect() {
          if (totals() === undefined) return;
          this.reset();
          this.inc(count());
        },
      });
    };
    evictions(
      'roomcast_history_evicted_total',
      'History entries the memory engine dropped, oldest first across every stream, to keep history within --history-max-memory',
      'historyEvictions',
    );
    evictions(
      'roomcast_idempotency_keys_evicted_total',
      "Idempotency keys of pushes the memory engine dropped, oldest first, before their window ended, to keep them within their memory bound (a push repeated with one is made again)",
      'pushKeyEvictions',
    );
    new Counter({
      name: 'roomcast_pushes_total',
      help: 'Pushes accepted by this logic API, by kind (all, room, conn, user)',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        for (const kind of PUSH_KINDS) this.inc({ kind }, pushes[kind]);
      },
    });
    new Counter({
      name: 'roomcast_push_repeats_total',
      help: 'Pushes this logic API did not make because they repeated an idempotency key (each got the first push\'s answer), by kind (all, room, conn, user)',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        for (const kind of PUSH_KINDS) this.inc({ kind }, repeats[kind]);
      },
    });
    new Counter({
      name: 'roomcast_push_failures_total',
      help: 'Pushes this logic API answered 503 because the broker could not take them (Redis away, too slow, or refusing writes), by kind (all, room, conn, user)',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        for (const kind of PUSH_KINDS) this.inc({ kind }, failures[kind]);
      },
    });
    const readOk = (): boolean => this.readOk;
    new Gauge({
      name: 'roomcast_broker_up',
      help: 'Whether the broker can hand pushes on (1) or not (0)',
      labelNames: ['engine'],
      registers,
      collect() {
        // a read that failed says so at once: the broker may judge Redis silent only later
        this.set({ engine: source.engine }, readOk() && source.isReady() ? 1 : 0);
      },
    });
    own.registerMetric(this.fanout as unknown as Metric);

    const reports = (): NodeReport[] => this.reports;
    /** A figure of each gateway node that answered this scrape, labelled with its node id and pid. */
    const perNode = (name: string, help: string, read: (r: NodeReport) => number, Kind: typeof Gauge | typeof Counter = Gauge): void => {
      new Kind({
        name,
        help,
        labelNames: ['node', 'pid'],
        registers,
        collect() {
          this.reset();
          for (const r of reports()) {
            const labels = { node: r.nodeId, pid: String(r.process.pid) };
            if (this instanceof Gauge) this.set(labels, read(r));
            else (this as Counter).inc(labels, read(r));
          }
        },
      });
    };
    const ofProcess = (key: keyof ProcessReport) => (r: NodeReport) => r.process[key];
    perNode('roomcast_node_connections', 'Open client connections of one gateway node', (r) => r.stats.connections);
    perNode('roomcast_node_resident_memory_bytes', "Resident memory of a gateway node's process", ofProcess('residentBytes'));
    perNode('roomcast_node_heap_used_bytes', "V8 heap in use in a gateway node's process", ofProcess('heapUsedBytes'));
    perNode('roomcast_node_cpu_seconds_total', "User and system CPU time of a gateway node's process", ofProcess('cpuSeconds'), Counter);
    perNode(
      'roomcast_node_event_loop_delay_p99_seconds',
      "99th percentile of the event loop's delay in a gateway node's process over the last 10 s",
      ofProcess('eventLoopDelaySeconds'),
    );
    this.registry = Registry.merge([own, processRegistry()]);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The metrics in Prometheus text format. */
  async render(): Promise<string> {
    try {
      const { nodes, rooms, awayRoomLimitRefusals, historyEvictions, pushKeyEvictions } = await this.source.clusterReport();
      this.evictions = { historyEvictions, pushKeyEvictions };
      this.reports = [...nodes.values()];
      this.totals = { connections: this.reports.reduce((sum, r) => sum + r.stats.connections, 0), rooms, nodes: nodes.size };
      const counters = new Map<string, Partial<NodeCounters>>([...nodes].map(([nodeId, r]) => [nodeId, r.stats]));
      counters.set(AWAY_SESSIONS, { roomLimitRefusals: awayRoomLimitRefusals });
      this.counters.update(counters);
      this.fanout.update(new Map([...nodes].map(([nodeId, r]) => [nodeId, r.fanout])));
      this.readOk = true;
    } catch {
      // Keep the last totals: counters must not fall back to zero while the broker is away; roomcast_broker_up says it is.
      this.readOk = false;
    }
    return this.registry.metrics();
  }
}
