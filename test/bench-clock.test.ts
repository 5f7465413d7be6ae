/**
 * The bench compares times taken in different processes (a push answered in
 * the orchestrator, a connection leaving in a client worker), so each
 * process's `nowUs` must read the machine's one monotonic clock, not a copy
 * shifted by how long the process took to read it the first time.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const messages = fileURLToPath(new URL('../bench/messages.js', import.meta.url));

/** In a new process that loads nothing before it: the smallest gap (µs) between nowUs() and CLOCK_MONOTONIC read right after it, over many pairs. */
const SMALLEST_GAP = `
import { nowUs } from ${JSON.stringify(messages)};
let smallest = Infinity;
for (let i = 0; i < 10000; i++) {
  const ours = nowUs();
  const monotonic = Number(process.hrtime.bigint()) / 1000;
  if (Math.abs(monotonic - ours) < Math.abs(smallest)) smallest = monotonic - ours;
}
console.log(smallest);
`;

describe('bench clock', () => {
  it('reads the same monotonic time in every process, to within 50 µs', async () => {
    for (let run = 0; run < 5; run++) {
      const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', SMALLEST_GAP]);
      const gapUs = Number(stdout.trim());
      assert.ok(Number.isFinite(gapUs) && Math.abs(gapUs) <= 50, `process ${run + 1}: nowUs() is ${gapUs} µs off CLOCK_MONOTONIC`);
    }
  });
});
