import type { LiveStats } from '../api';
import { formatAge, formatRate } from '../format';

/**
 * The rate between two events, or undefined (shown as –) without an earlier
 * one or when the total went down: /stats sums the gateway nodes attached
 * now, so it drops when one goes away or restarts from 0.
 */
function perSecond(now: LiveStats, before: LiveStats | undefined, read: (s: LiveStats) => number): number | undefined {
  if (before === undefined || now.at <= before.at) return undefined;
  const added = read(now) - read(before);
  return added < 0 ? undefined : added / ((now.at - before.at) / 1000);
}

const sumOfKinds = (c: LiveStats['pushes']): number => c.all + c.room + c.conn + c.user;
const pushCount = (s: LiveStats): number => sumOfKinds(s.pushes);

/** `alarm`: a figure that should stay 0, shown in the warning colour while it is not. */
function Total({ name, value, testId, title, alarm = false }: { name: string; value: string | number; testId: string; title?: string; alarm?: boolean }) {
  return (
    <div class={alarm ? 'total alarm' : 'total'} title={title}>
      <div class="value" data-testid={testId}>
        {value}
      </div>
      <div class="name">{name}</div>
    </div>
  );
}

export function Totals({ stats, previous, problem }: { stats: LiveStats | undefined; previous: LiveStats | undefined; problem: string | undefined }) {
  return (
    <section class="card">
      <h2>
        Live totals <span class={`live ${problem === undefined && stats !== undefined ? 'on' : 'off'}`}>{problem === undefined ? 'live' : 'offline'}</span>
      </h2>
      {problem !== undefined && <p class="error">{problem}</p>}
      {stats === undefined ? (
        <p class="muted">waiting for the first totals…</p>
      ) : (
        <>
          <div class="totals">
            <Total name="connections" value={stats.connections} testId="total-connections" />
            <Total name="rooms" value={stats.rooms} testId="total-rooms" />
            <Total name="pushes / s" value={formatRate(perSecond(stats, previous, pushCount))} testId="total-pushes-rate" title={`${pushCount(stats)} pushes since start`} />
            <Total name="deliveries / s" value={formatRate(perSecond(stats, previous, (s) => s.deliveries))} testId="total-deliveries-rate" title={`${stats.deliveries} deliveries since start`} />
            <Total
              name="failed pushes"
              value={sumOfKinds(stats.failedPushes)}
              testId="total-failed-pushes"
              title={`pushes answered 503 since start because the broker could not take them (Redis away, slow, or refusing writes): ${stats.failedPushes.all} to all, ${stats.failedPushes.room} to rooms, ${stats.failedPushes.conn} to connections, ${stats.failedPushes.user} to users`}
              alarm={sumOfKinds(stats.failedPushes) > 0}
            />
            <Total name="slow-consumer closes" value={stats.slowConsumerCloses} testId="total-slow" />
            <Total name="too-large closes" value={stats.tooLargeCloses} testId="total-too-large" title="connections closed (1009) for a message over --max-payload" />
            <Total name="heartbeat timeouts" value={stats.heartbeatTimeouts} testId="total-timeouts" />
          </div>
          <p class="muted small" data-testid="totals-footer">
            {stats.pushes.all} to all · {stats.pushes.room} to rooms · {stats.pushes.conn} to connections · {stats.pushes.user} to users · {stats.deliveries} deliveries · {stats.kicks} kicks ·{' '}
            {stats.malformedCloses} malformed · {stats.nodes} gateway node{stats.nodes === 1 ? '' : 's'} · {stats.engine} broker · up {formatAge(0, stats.uptimeSeconds * 1000)}
          </p>
        </>
      )}
    </section>
  );
}
