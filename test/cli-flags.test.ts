/** Which command takes which flag: a flag a command would ignore is refused by it, naming the flag. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from './helpers/process.js';

describe('flags of each command', () => {
  it('--resume-secret is a gateway flag: gateway and start take it, logic refuses it', async () => {
    for (const command of ['gateway', 'start']) {
      const { stdout } = await runCli([command, '--help']);
      assert.match(stdout, /--resume-secret/, `roomcast ${command} --help`);
    }
    const help = await runCli(['logic', '--help']);
    assert.equal(help.code, 0);
    assert.doesNotMatch(help.stdout, /--resume-secret/);
    const refused = await runCli(['logic', '--port', '0', '--resume-secret', 'ignored-secret']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /unknown option '--resume-secret'/);
  });
});
