/** Which command takes which flag, and which values a flag refuses: a refusal names the flag. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { addLogicOptions, addServerOptions } from '../src/config.js';
import { TestClient } from './helpers/client.js';
import { call } from './helpers/http.js';
import { CLI, runCli, spawnRoomcast, spawnServer, stopProcess } from './helpers/process.js';

/** Runs a command expected to be refused; one that starts a server instead is stopped after 10 s (code null). */
const refusal = (args: string[], env: Record<string, string> = {}) => runCli(args, env, CLI, 10_000);

/** Runs `command` with each flag set and environment, expecting exit 1 with its message and `rule` (what the value must be). */
async function assertRefused(command: string[], refusals: [string[], Record<string, string>, RegExp][], rule: RegExp): Promise<void> {
  for (const [flags, env, message] of refusals) {
    const { code, stderr } = await refusal([...command, ...flags], env);
    assert.equal(code, 1, `${flags.join(' ')} ${JSON.stringify(env)}`);
    assert.match(stderr, message);
    assert.match(stderr, rule);
  }
}

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

  it('refuses a secret, file or proxy flag given empty on the command line (an unset shell variable) rather than start without it, naming the flag', async () => {
    const refusals: [string, string[]][] = [
      ['--api-key', ['logic', '--port', '0', '--api-key', '']],
      ['--api-key', ['start', '--gateway-port', '0', '--logic-port', '0', '--api-key=']],
      ['--jwt-secret', ['gateway', '--port', '0', '--jwt-secret', '']],
      ['--resume-secret', ['gateway', '--port', '0', '--resume-secret', '']],
      // without these a server started plain ws:// and http://, or trusting no proxy
      ['--tls-cert', ['start', '--gateway-port', '0', '--logic-port', '0', '--tls-cert', '', '--tls-key', '']],
      ['--tls-key', ['logic', '--port', '0', '--tls-key=']],
      ['--jwt-public-key', ['gateway', '--port', '0', '--jwt-public-key', '']],
      ['--trust-proxy', ['gateway', '--port', '0', '--trust-proxy', ' , ']],
    ];
    for (const [flag, args] of refusals) {
      const { code, stderr } = await refusal(args);
      assert.equal(code, 1, args.join(' '));
      assert.match(stderr, new RegExp(`${flag} is empty`), args.join(' '));
    }
  });

  it('refuses a --trust-proxy that is no address, CIDR or range name before starting, naming the flag or its variable and what it takes', async () => {
    const refusals: [string[], Record<string, string>, RegExp][] = [
      [['--trust-proxy', '10.0.0.1,bogus'], {}, /--trust-proxy <proxies>' argument '10.0.0.1,bogus' is invalid.*got "bogus"/],
      [['--trust-proxy', '10.0.0.0/33'], {}, /--trust-proxy <proxies>' argument '10.0.0.0\/33' is invalid/],
      [[], { ROOMCAST_TRUST_PROXY: '1.2.3.999' }, /--trust-proxy <proxies>' value '1.2.3.999' from env 'ROOMCAST_TRUST_PROXY' is invalid/],
    ];
    const rule = /each trusted proxy must be an IP address, a CIDR \(10.0.0.0\/8\) or loopback, linklocal or uniquelocal/;
    for (const command of [['gateway', '--port', '0'], ['logic', '--port', '0'], ['start', '--gateway-port', '0', '--logic-port', '0']]) {
      // silent: the refusal must not depend on a log line
      await assertRefused([...command, '--log-level', 'silent'], refusals, rule);
    }
    const server = await spawnRoomcast('logic', ['--host', '127.0.0.1', '--port', '0', '--log-level', 'info', '--trust-proxy', 'loopback, 10.0.0.0/8']);
    try {
      assert.equal((await call(server.logicUrl, '/stats')).status, 200);
    } finally {
      await stopProcess(server);
    }
  });

  it("reads each checked flag from its variable: a bad value there is refused with exit 1, naming the variable or the flag, and no stack", async () => {
    // the same option builders serve gateway and logic: start has every flag of theirs but --port
    const options = [...addServerOptions(new Command('start')).options.map((o) => ['start', o] as const), ['logic', addLogicOptions(new Command('logic')).options.find((o) => o.long === '--port')!] as const];
    const checked = options.filter(([, o]) => o.parseArg !== undefined || o.isBoolean() || o.long === '--broker');
    assert.ok(checked.length >= 30, `only ${checked.length} flags checked`);
    for (const [command, option] of checked) {
      // --host takes any name but an empty one
      const env = { [option.envVar!]: option.long === '--host' ? ' ' : '!bad!' };
      const { code, stderr } = await refusal([command, ...(option.long === '--log-level' ? [] : ['--log-level', 'silent'])], env);
      const where = `roomcast ${command} with ${JSON.stringify(env)}: ${stderr}`;
      assert.equal(code, 1, where);
      assert.ok(stderr.includes(option.envVar!) || stderr.includes(option.long!), where);
      assert.doesNotMatch(stderr, /\n\s+at /, where);
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

  it('refuses an --api-key no HTTP client can send (a character past printable ASCII, a space at either end), naming where, never the key', async () => {
    for (const [key, message] of [
      ['s3cret\u2011key', /--api-key has U\+2011 at index 6: it must be printable ASCII/],
      ['s3cret\u00e9', /--api-key has U\+00E9 at index 6: it must be printable ASCII/],
      ['s3cret\n', /--api-key has U\+000A at index 6/],
      [' s3cret', /--api-key starts or ends with a space/],
    ] as const) {
      for (const [args, env] of [[['--api-key', key], {}], [[], { ROOMCAST_API_KEY: key }]] as const) {
        const { code, stderr } = await refusal(['logic', '--host', '127.0.0.1', '--port', '0', ...args], env);
        assert.equal(code, 1, JSON.stringify(key));
        assert.match(stderr, message);
        assert.doesNotMatch(stderr, /s3cret/);
      }
    }
    // inner spaces and every printable character are sendable
    const server = await spawnRoomcast('logic', ['--host', '127.0.0.1', '--port', '0', '--api-key', 'a key ~!#"\\']);
    try {
      assert.equal((await call(server.logicUrl, '/stats', { headers: { authorization: 'Bearer a key ~!#"\\' } })).status, 200);
    } finally {
      await stopProcess(server);
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

  it('refuses a --body-limit that a push of a val of --max-val-size cannot fit in, naming both flags and the size to set', async () => {
    const ports = ['--gateway-port', '0', '--logic-port', '0'];
    for (const command of [['start', ...ports], ['logic', '--port', '0']]) {
      const body = await refusal([...command, '--max-val-size', '2000000'], { ROOMCAST_SEND_BUFFER_LIMIT: '8000000' });
      assert.equal(body.code, 1, command[0]);
      assert.match(body.stderr, /--body-limit 1048576 is below --max-val-size 2000000 .*refuses with 413; set --body-limit to at least 2000512/, command[0]);
    }
  });

  it('starts with a --send-buffer-limit that one push of a val of --max-val-size fills by itself (a lone frame still goes out), with a warning naming both flags', async () => {
    const server = await spawnServer([
      ...['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0', '--log-level', 'info'],
      ...['--max-val-size', '2000000', '--send-buffer-limit', '1000000', '--body-limit', '8000000'],
    ]);
    try {
      const warnings = server.lines.filter((line) => line.level === 40).map((line) => line.msg);
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      assert.match(warnings[0], /^--send-buffer-limit 1000000 is below --max-val-size 2000000 .*slow consumer \(4000\); set --send-buffer-limit to at least 4000512/);
      assert.equal((await call(server.logicUrl, '/healthz')).status, 200);
    } finally {
      await stopProcess(server);
    }
  });

  it('warns that --jwt-secret and the claims flags do nothing with --auth off (the default): an anonymous client still connects', async () => {
    const server = await spawnRoomcast('gateway', ['--host', '127.0.0.1', '--port', '0', '--log-level', 'info', '--jwt-issuer', 'https://id.example'], {
      ROOMCAST_JWT_SECRET: 'x'.repeat(32),
    });
    try {
      const warnings = server.lines.filter((line) => line.level === 40).map((line) => line.msg);
      assert.deepEqual(warnings, [
        '--jwt-secret, --jwt-issuer given with --auth off (the default): client tokens are not checked and every client connects anonymously; set --auth required (or optional) to use them',
      ]);
      const anonymous = await TestClient.connect(server.gatewayUrl);
      assert.equal(typeof anonymous.wsId, 'string');
      await anonymous.closeAndWait();
    } finally {
      await stopProcess(server);
    }
  });

  it('starts with a combination of flags that is merely risky, and logs a warning naming the flags of each', async () => {
    const risky = [
      ...['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0', '--log-level', 'info'],
      ...['--max-val-size', '500000', '--send-buffer-limit', '600000', '--history-max-memory', '100000'],
      ...['--auth', 'optional', '--jwt-secret', 'x'.repeat(32), '--allow-client-join', '--max-payload', '100'],
    ];
    const server = await spawnServer(risky);
    try {
      const warnings = server.lines.filter((line) => line.level === 40).map((line) => line.msg);
      for (const rule of [
        /^--max-payload 100 with --auth optional: an auth or refresh frame/,
        /^--max-payload 100 with --allow-client-join: a join or leave frame/,
        /^--body-limit 1048576 is below 3 times --max-val-size 500000/,
        /^--send-buffer-limit 600000 holds fewer than two pushes of a val of --max-val-size 500000/,
        /^--history-max-memory 100000 is below the 1001536 bytes history counts for a push of a val of --max-val-size 500000/,
      ]) {
        assert.ok(warnings.some((msg) => rule.test(msg)), `${rule} in ${JSON.stringify(warnings)}`);
      }
      assert.equal((await call(server.logicUrl, '/healthz')).status, 200);
    } finally {
      await stopProcess(server);
    }
    const plain = await spawnServer(['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0', '--log-level', 'info']);
    try {
      assert.deepEqual(plain.lines.filter((line) => line.level === 40).map((line) => line.msg), [], 'the defaults warn of nothing');
    } finally {
      await stopProcess(plain);
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
    await assertRefused(['gateway', '--port', '0'], refusals, /the JWT clock tolerance in seconds must be an integer from 0 to 3600/);
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
    await assertRefused(['gateway', '--port', '0'], refusals, /the max connections per user must be an integer from 0 to 10000000/);
  });

  it('--tls-watch-interval is taken by every server command; a bad value is refused, naming the flag or its variable', async () => {
    for (const command of ['start', 'gateway', 'logic']) assert.match((await runCli([command, '--help'])).stdout, /--tls-watch-interval <ms>/, `roomcast ${command} --help`);
    const refusals: [string[], Record<string, string>, RegExp][] = [
      [['--tls-watch-interval', '-1'], {}, /--tls-watch-interval <ms>' argument '-1' is invalid/],
      [['--tls-watch-interval', '86400001'], {}, /--tls-watch-interval <ms>' argument '86400001' is invalid/],
      [[], { ROOMCAST_TLS_WATCH_INTERVAL: '10s' }, /--tls-watch-interval <ms>' value '10s' from env 'ROOMCAST_TLS_WATCH_INTERVAL' is invalid/],
    ];
    await assertRefused(['logic', '--port', '0'], refusals, /the TLS watch interval must be an integer from 0 to 86400000/);
  });

  it('the variable of a boolean flag takes true/false, 1/0, yes/no, on/off (or empty); anything else, an Object.prototype name too, is refused listing them', async () => {
    for (const value of ['maybe', 'constructor', 'toString', '__proto__']) {
      const { code, stderr } = await refusal(['gateway', '--port', '0'], { ROOMCAST_ALLOW_CLIENT_JOIN: value });
      assert.equal(code, 1, `ROOMCAST_ALLOW_CLIENT_JOIN=${value}: ${stderr}`);
      assert.match(stderr, new RegExp(`ROOMCAST_ALLOW_CLIENT_JOIN must be one of true, false, 1, 0, yes, no, on, off \\(or empty\\), got "${value.toLowerCase()}"`));
    }
  });
});
