/** The soak (bench/soak.ts) at a tiny size: it runs its processes, checks its invariants, and stops by itself (on Redis, and on the memory engine). */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { skipWithoutRedis } from './helpers/redis.js';

const SOAK = fileURLToPath(new URL('../bench/soak.js', import.meta.url));

/** Runs the soak with `flags`; resolves with its exit code and output. */
async function runSoak(flags: string[]): Promise<{ code: number | null; out: string }> {
  const logs = mkdtempSync(join(tmpdir(), 'roomcast-soak-'));
  const child = spawn(process.execPath, [SOAK, ...flags, '--out', logs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  rmSync(logs, { recursive: true, force: true });
  return { code, out };
}

/** Every invariant held, and it did something: pushes were made and reached the clients. */
function assertHeld({ code, out }: { code: number | null; out: string }): RegExpExecArray {
  assert.equal(code, 0, out.slice(-3000));
  assert.match(out, /invariants: all held/);
  const done = /pushes (\d+) .*frames received (\d+)/.exec(out);
  assert.ok(done !== null, out.slice(-3000));
  assert.ok(Number(done[1]) > 0 && Number(done[2]) > 0, done[0]);
  return done;
}

describe('soak smoke', { timeout: 170_000 }, () => {
  it('runs 2 gateways, a logic process, Redis and a few SDK clients for a few seconds, and every invariant holds', { skip: skipWithoutRedis }, async () => {
    assertHeld(await runSoak(['--seconds', '6', '--clients', '12', '--rooms', '4', '--seed', '7', '--no-process-kills']));
  });

  it('runs one roomcast start on the memory engine with tokens and pushes to users, and every invariant holds', async () => {
    const result = await runSoak(['--engine', 'memory', '--auth', 'optional', '--seconds', '4', '--clients', '12', '--rooms', '4', '--seed', '9']);
    assertHeld(result);
    assert.match(result.out, /one `roomcast start` on the memory engine, auth optional/);
    assert.match(result.out, /user [1-9]\d*\)/, 'pushes to users were made');
  });
});
