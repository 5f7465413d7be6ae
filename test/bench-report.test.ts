import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scenarioTable, speedChecks } from '../bench/report.js';
import type { TargetResult } from '../bench/run-target.js';
import { buildScenario, DEFAULT_SIZES } from '../bench/scenarios.js';
import type { TargetName } from '../bench/targets.js';

/** A fanout result at the default sizes (2,000 × 2,000 frames), every frame delivered, no error; `change` alters it. */
function fanoutResult(target: TargetName, label: string, change: Partial<TargetResult> = {}): TargetResult {
  const expected = 2000 * 2000;
  return {
    scenario: 'fanout', target, label, variant: target === 'roomcast' ? { workers: 0, redis: false, history: true } : undefined,
    conns: 2000, connected: 2000, connectSeconds: 0.5, pushes: 2000, pushesAccepted: 2000, pushesPerSecond: 1500,
    expectedDeliveries: expected, deliveries: expected, completeness: 1, duplicateFrames: 0, outOfOrderFrames: 0, unsequencedFrames: 0, extraFrames: 0,
    deliveriesPerSecond: 2_800_000, latencyMs: { p50: 20, p99: 45, max: 60 }, serverCpuSeconds: 1.4, serverRssMB: 100, serverPeakRssMB: 110,
    serverProcesses: 1, serverOpenFiles: [2010], rssPerConnKB: undefined, redisCpuSeconds: undefined, redisRssMB: undefined, deliverySpreadMs: 1400,
    clientCpuSeconds: 1, otherCpuSeconds: 0, closedEarly: 0, protocolErrors: 0, malformedFrames: 0, pids: [], resume: undefined, churn: undefined, errors: [],
    ...change,
  };
}

/** The cells of `target`'s row in a printed table, by column title. */
function rowOf(table: string, target: string): Record<string, string> {
  const lines = table.split('\n').filter((line) => line.startsWith('| '));
  const split = (line: string): string[] => line.slice(2, -2).split(' | ').map((cell) => cell.trim());
  const [, ...titles] = split(lines[0]);
  const row = lines.map(split).find(([name]) => name === target);
  assert.ok(row !== undefined, `a row for ${target} in:\n${table}`);
  return Object.fromEntries(titles.map((title, i) => [title, row[i + 1]]));
}

describe('the bench report of a run that missed frames', () => {
  it('never shows an incomplete run as 100%, however few frames it missed', () => {
    const scenario = buildScenario('fanout', DEFAULT_SIZES, 1);
    // 3 of 4,000,000 frames missing: 99.999925%, which rounds to 100.00 at two decimals
    const missed = fanoutResult('roomcast', 'roomcast', { deliveries: 4_000_000 - 3, completeness: (4_000_000 - 3) / 4_000_000, errors: ['pushing: no frame arrived for 10 s, 3 missing'] });
    const complete = rowOf(scenarioTable(scenario, [missed]), 'roomcast').complete;
    assert.notEqual(complete.replace(/[.0]+%$/, '%'), '100%', `shown as ${complete}`);
    assert.equal(complete, '99.9999%');
    const check = speedChecks([missed]).find((c) => c.what === 'fanout complete');
    assert.deepEqual(check, { what: 'fanout complete', measured: '99.9999%', met: false });
    // every column that shows a share: connected (idle, hold) too
    const held = { ...fanoutResult('roomcast', 'roomcast'), scenario: 'idle', conns: 30_000, connected: 30_000, closedEarly: 1 };
    assert.equal(rowOf(scenarioTable(buildScenario('idle', DEFAULT_SIZES, 1), [held]), 'roomcast').connected, '99.997%');
    assert.equal(rowOf(scenarioTable(scenario, [fanoutResult('roomcast', 'roomcast')]), 'roomcast').complete, '100%');
    assert.equal(rowOf(scenarioTable(scenario, [fanoutResult('roomcast', 'roomcast', { completeness: 0.5 })]), 'roomcast').complete, '50.00%');
  });

  it('judges no speed target on a run that failed or did not complete, its own or the one it is compared with', () => {
    const roomcast = fanoutResult('roomcast', 'roomcast');
    const ws = fanoutResult('ws', 'bare ws loop', { deliveriesPerSecond: 1_000_000 });
    const ratio = (results: TargetResult[]) => speedChecks(results).find((c) => c.what === 'fanout deliveries/s >= 1.5x bare ws loop');
    assert.deepEqual(ratio([roomcast, ws]), { what: 'fanout deliveries/s >= 1.5x bare ws loop', measured: '2.80x', met: true });
    // the peer crashed after a tenth of the frames: its deliveries/s is no measure of its speed
    const crashed = fanoutResult('ws', 'bare ws loop', {
      deliveries: 400_000, completeness: 0.1, deliveriesPerSecond: 100_000, errors: ['bare ws loop exited with SIGSEGV: '],
    });
    assert.deepEqual(ratio([roomcast, crashed]), { what: 'fanout deliveries/s >= 1.5x bare ws loop', measured: '28.00x, not judged: bare ws loop 10.00% complete, 1 error', met: false });
    // the peer delivered nothing at all: no infinite ratio met
    const none = fanoutResult('ws', 'bare ws loop', { deliveries: 0, completeness: 0, deliveriesPerSecond: 0, errors: ['warm-up: no frame arrived for 10 s, 2000 missing'] });
    assert.equal(ratio([roomcast, none])?.met, false);
    // roomcast itself lost frames: neither its ratio nor its p99 is judged
    const lossy = fanoutResult('roomcast', 'roomcast', { deliveries: 3_000_000, completeness: 0.75, errors: ['pushing: no frame arrived for 10 s, 1000000 missing'] });
    assert.equal(ratio([lossy, ws])?.met, false);
    assert.deepEqual(speedChecks([lossy]).find((c) => c.what === 'fanout p99 <= 50 ms'), { what: 'fanout p99 <= 50 ms', measured: '45 ms, not judged: roomcast 75.00% complete, 1 error', met: false });
    assert.equal(speedChecks([roomcast]).find((c) => c.what === 'fanout p99 <= 50 ms')?.met, true);
  });

  it('judges no idle RSS per connection on a run whose connections were not all held', () => {
    const idle = (change: Partial<TargetResult>): TargetResult => ({ ...fanoutResult('roomcast', 'roomcast'), scenario: 'idle', conns: 10_000, connected: 10_000, rssPerConnKB: 7.4, ...change });
    const check = (r: TargetResult) => speedChecks([r]).find((c) => c.what === 'idle RSS per connection <= 8 KB');
    assert.deepEqual(check(idle({})), { what: 'idle RSS per connection <= 8 KB', measured: '7.4 KB', met: true });
    // half the connections closed by the server: RSS after, over connections counted before, is half what it should be
    const dropped = idle({ closedEarly: 5000, rssPerConnKB: 4.1, errors: ['5000 of 10000 connections were closed by the server'] });
    assert.deepEqual(check(dropped), { what: 'idle RSS per connection <= 8 KB', measured: '4.1 KB, not judged: roomcast 1 error', met: false });
  });
});
