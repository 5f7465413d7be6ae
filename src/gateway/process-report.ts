/**
 * What a gateway node's process looks like (memory, CPU, event-loop delay),
 * reported through the broker so the logic API's /metrics shows every gateway
 * process, also those (`roomcast gateway`, `--workers`) that serve no HTTP API.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { ProcessReport } from '../broker/broker.js';

const RESOLUTION_MS = 10;
/** The event-loop delay reported is the p99 over the last window this long. */
export const DELAY_WINDOW_MS = 10_000;

/**
 * One sampler for the process, started by its first report. Reading it changes
 * nothing (a read that reset it would leave ~0 to every other reader: a second
 * scraper, logic process or node); a timer closes a window every DELAY_WINDOW_MS.
 */
class DelayWindows {
  private readonly delays: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  /** The p99 of the last closed window; until one closed, the current one's is reported. */
  private lastWindow: number | undefined;

  constructor() {
    this.delays.enable();
    // neither the sampler nor its timer keeps the process alive
    setInterval(() => {
      this.lastWindow = this.p99();
      this.delays.reset();
    }, DELAY_WINDOW_MS).unref();
  }

  /** Seconds. */
  get latest(): number {
    return this.lastWindow ?? this.p99();
  }

  private p99(): number {
    // a sample is the time between two timer turns, so the resolution itself is not delay
    return this.delays.count === 0 ? 0 : Math.max(0, this.delays.percentile(99) / 1e9 - RESOLUTION_MS / 1000);
  }
}

let delayWindows: DelayWindows | undefined;

export function processReport(): ProcessReport {
  delayWindows ??= new DelayWindows();
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  return {
    pid: process.pid,
    residentBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    eventLoopDelaySeconds: delayWindows.latest,
  };
}
