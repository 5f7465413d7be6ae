/** The soak (bench/soak.ts) at a tiny size: it runs its processes, checks its invariants, and stops by itself. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { skipWithoutRedis } from './helpers/redis.js';

const SOAK = fileURLToPath(new URL('../bench/soak.js', import.meta.url));

describe('soak smoke', { skip: skipWithoutRedis, timeout: 170_000 }, () => {
  it('runs 2 gateways, a logic process, Redis and a few SDK clients for a few seconds, and every invariant holds', async () => {
    const logs = mkdtempSync(join(tmpdir(), 'roomcast-soak-'));
    const child = spawn(process.execPath, [SOAK, '--seconds', '6', '--clients', '12', '--rooms', '4', '--seed', '7', '--no-process-kills', '--out', logs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    rmSync(logs, { recursive: true, force: true });
    assert.equal(code, 0, out.slice(-3000));
    assert.match(out, /invariants: all held/);
    // it did something: pushes were made and reached the clients
    const done = /pushes (\d+) .*frames received (\d+)/.exec(out);
    assert.ok(done !== null, out.slice(-3000));
    assert.ok(Number(done[1]) > 0 && Number(done[2]) > 0, done[0]);
  });
});
