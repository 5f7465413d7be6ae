/**
 * What a gateway node's process looks like (memory, CPU, event-loop delay),
 * reported through the broker so the logic API's /metrics shows every gateway
 * process, also those (`roomcast gateway`, `--workers`) that serve no HTTP API.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { ProcessReport } from '../broker/broker.js';

const RESOLUTION_MS = 10;
let delays: IntervalHistogram | undefined;

export function processReport(): ProcessReport {
  if (delays === undefined) {
    // one sampler for the process, started by its first report; it does not keep the process alive
    delays = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    delays.enable();
  }
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  // a sample is the time between two timer turns, so the resolution itself is not delay
  const p99 = delays.count === 0 ? 0 : Math.max(0, delays.percentile(99) / 1e9 - RESOLUTION_MS / 1000);
  delays.reset();
  return {
    pid: process.pid,
    residentBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    eventLoopDelaySeconds: p99,
  };
}
