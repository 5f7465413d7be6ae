/**
 * Where the bench's client sockets come from: by default (`auto`) the kernel
 * picks the source of a run small enough for one address's ports, since
 * binding each socket to an address first costs a search of the ports; a
 * larger run, or a range named with --source-addresses, is spread over them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SPREAD_ADDRESSES, sourceAddressesFor } from '../bench/source-addresses.js';
import { runTargetWithPreload } from './helpers/bench.js';

/** A preload for the server under test that appends the address of each socket it accepts to `file`. */
function recordingPreload(file: string): string {
  return `import { appendFileSync } from 'node:fs';
import { subscribe } from 'node:diagnostics_channel';
subscribe('net.server.socket', ({ socket }) => appendFileSync(${JSON.stringify(file)}, socket.remoteAddress + '\\n'));
`;
}

/** The source addresses of every socket a tiny fanout run's server accepted (clients, joins and pushes). */
async function sourcesOfRun(extraFlags: string[]): Promise<Map<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'roomcast-bench-sources-'));
  const file = join(dir, 'sources.txt');
  try {
    const flags = ['--scenarios', 'fanout', '--targets', 'roomcast', '--fanout-conns', '16', '--fanout-pushes', '5', '--settle', '0', ...extraFlags];
    const { result } = await runTargetWithPreload(recordingPreload(file), flags);
    assert.equal(result.completeness, 1, result.errors.join('; '));
    const counts = new Map<string, number>();
    for (const address of readFileSync(file, 'utf8').split('\n').filter(Boolean)) counts.set(address, (counts.get(address) ?? 0) + 1);
    return counts;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the source addresses of the bench clients', () => {
  it('auto spreads only a run that opens more connections than half the ephemeral ports; a named range always', () => {
    assert.deepEqual(sourceAddressesFor('auto', 14_116, 28_232), []);
    assert.deepEqual(sourceAddressesFor('auto', 14_117, 28_232), [...SPREAD_ADDRESSES]);
    assert.deepEqual(SPREAD_ADDRESSES, ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7', '127.0.0.8', '127.0.0.9']);
    assert.deepEqual(sourceAddressesFor(['127.0.0.5'], 3, 28_232), ['127.0.0.5']);
  });

  it('a small run binds no source address: every socket comes from 127.0.0.1', async () => {
    const sources = await sourcesOfRun([]);
    assert.deepEqual([...sources.keys()], ['127.0.0.1']);
    assert.ok(sources.get('127.0.0.1')! >= 16, `16 clients and the API's sockets: ${sources.get('127.0.0.1')}`);
  });

  it('--source-addresses spreads the clients over the range, round robin', async () => {
    const sources = await sourcesOfRun(['--source-addresses', '127.0.0.2-127.0.0.5']);
    // the joins and pushes come from 127.0.0.1; the 16 clients 4 from each address
    assert.deepEqual(
      ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'].map((a) => sources.get(a)),
      [4, 4, 4, 4],
    );
    assert.ok((sources.get('127.0.0.1') ?? 0) > 0);
    assert.equal(sources.size, 5);
  });
});
