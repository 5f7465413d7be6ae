/** Which command takes which flag, and which values a flag refuses: a refusal names the flag. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call } from './helpers/http.js';
import { CLI, runCli, spawnRoomcast, stopProcess } from './helpers/process.js';

/** Runs a command expected to be refused; one that starts a server instead is stopped after 10 s (code null). */
const refusal = (args: string[], env: Record<string, string> = {}) => runCli(args, env, CLI, 10_000);

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

  it('refuses a secret given empty on the command line (an unset shell variable), naming the flag', async () => {
    const refusals: [string, string[]][] = [
      ['--api-key', ['logic', '--port', '0', '--api-key', '']],
      ['--api-key', ['start', '--gateway-port', '0', '--logic-port', '0', '--api-key=']],
      ['--jwt-secret', ['gateway', '--port', '0', '--jwt-secret', '']],
      ['--resume-secret', ['gateway', '--port', '0', '--resume-secret', '']],
    ];
    for (const [flag, args] of refusals) {
      const { code, stderr } = await refusal(args);
      assert.equal(code, 1, args.join(' '));
      assert.match(stderr, new RegExp(`${flag} is empty`), args.join(' '));
    }
  });

  it('refuses a redis:// URL it cannot parse without repeating its password, whatever the password holds', async () => {
    for (const url of ['redis://:s3cret@127.0.0.1:notaport', 'redis://user:pa/s3cret@127.0.0.1:6379', 'redis://user:pa@s3cret@127.0.0.1:x']) {
      const { code, stderr } = await refusal(['start', '--gateway-port', '0', '--logic-port', '0', '--broker', url]);
      assert.equal(code, 1, url);
      assert.match(stderr, /--broker must be memory or a redis:\/\/HOST:PORT URL, got "redis:\/\/(user)?:\*\*\*@/, url);
      assert.doesNotMatch(stderr, /s3cret/, url);
    }
  });

  it('takes an empty ROOMCAST_API_KEY as unset: the API answers loopback callers without a key', async () => {
    const server = await spawnRoomcast('logic', ['--host', '127.0.0.1', '--port', '0', '--log-level', 'info'], { ROOMCAST_API_KEY: '' });
    try {
      assert.equal((await call(server.logicUrl, '/stats')).status, 200);
    } finally {
      await stopProcess(server);
    }
  });

  it('refuses an empty --allowed-origins (it would refuse every browser) and an empty --host', async () => {
    const origins = await refusal(['gateway', '--port', '0'], { ROOMCAST_ALLOWED_ORIGINS: '' });
    assert.equal(origins.code, 1);
    assert.match(origins.stderr, /--allowed-origins.*name at least one origin/);
    const host = await refusal(['start', '--host', '', '--gateway-port', '0', '--logic-port', '0']);
    assert.equal(host.code, 1);
    assert.match(host.stderr, /--host.*the host must be an address or a name/);
  });

  it('refuses a --jwt-clock-tolerance that is not a whole number of seconds from 0 to 3600, naming the flag or its variable', async () => {
    const refusals: [string[], Record<string, string>, RegExp][] = [
      [['--jwt-clock-tolerance', '-1'], {}, /--jwt-clock-tolerance <seconds>' argument '-1' is invalid/],
      [['--jwt-clock-tolerance', '1.5'], {}, /--jwt-clock-tolerance <seconds>' argument '1.5' is invalid/],
      [['--jwt-clock-tolerance', '3601'], {}, /--jwt-clock-tolerance <seconds>' argument '3601' is invalid/],
      [[], { ROOMCAST_JWT_CLOCK_TOLERANCE: '5s' }, /--jwt-clock-tolerance <seconds>' value '5s' from env 'ROOMCAST_JWT_CLOCK_TOLERANCE' is invalid/],
    ];
    for (const [flags, env, message] of refusals) {
      const { code, stderr } = await refusal(['gateway', '--port', '0', ...flags], env);
      assert.equal(code, 1, `${flags.join(' ')} ${JSON.stringify(env)}`);
      assert.match(stderr, message);
      assert.match(stderr, /the JWT clock tolerance in seconds must be an integer from 0 to 3600/);
    }
  });
  it('--max-connections-per-user is a gateway flag taking a whole number from 0 (no limit); a bad value is refused, naming the flag or its variable', async () => {
    for (const command of ['gateway', 'start']) assert.match((await runCli([command, '--help'])).stdout, /--max-connections-per-user <n>/, `roomcast ${command} --help`);
    assert.match((await runCli(['logic', '--port', '0', '--max-connections-per-user', '5'])).stderr, /unknown option '--max-connections-per-user'/);
    const refusals: [string[], Record<string, string>, RegExp][] = [
      [['--max-connections-per-user', '-1'], {}, /--max-connections-per-user <n>' argument '-1' is invalid/],
      [['--max-connections-per-user', 'many'], {}, /--max-connections-per-user <n>' argument 'many' is invalid/],
      [['--max-connections-per-user', '10000001'], {}, /--max-connections-per-user <n>' argument '10000001' is invalid/],
      [[], { ROOMCAST_MAX_CONNECTIONS_PER_USER: '2.5' }, /--max-connections-per-user <n>' value '2.5' from env 'ROOMCAST_MAX_CONNECTIONS_PER_USER' is invalid/],
    ];
    for (const [flags, env, message] of refusals) {
      const { code, stderr } = await refusal(['gateway', '--port', '0', ...flags], env);
      assert.equal(code, 1, `${flags.join(' ')} ${JSON.stringify(env)}`);
      assert.match(stderr, message);
      assert.match(stderr, /the max connections per user must be an integer from 0 to 10000000/);
    }
  });

  it('the variable of a boolean flag takes true/false, 1/0, yes/no, on/off (or empty); anything else, an Object.prototype name too, is refused listing them', async () => {
    for (const value of ['maybe', 'constructor', 'toString', '__proto__']) {
      const { code, stderr } = await refusal(['gateway', '--port', '0'], { ROOMCAST_ALLOW_CLIENT_JOIN: value });
      assert.equal(code, 1, `ROOMCAST_ALLOW_CLIENT_JOIN=${value}: ${stderr}`);
      assert.match(stderr, new RegExp(`ROOMCAST_ALLOW_CLIENT_JOIN must be one of true, false, 1, 0, yes, no, on, off \\(or empty\\), got "${value.toLowerCase()}"`));
    }
  });
});
