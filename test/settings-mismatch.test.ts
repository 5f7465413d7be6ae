/**
 * Real processes on a real Redis run with differing shared settings
 * (--history-size, --recovery-window): the process that starts second warns
 * once per differing setting, naming both values and the other process, and
 * GET /stats lists the difference; processes that agree say nothing.
 */
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { after, afterEach, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import { VERSION } from '../src/version.js';
import { call } from './helpers/http.js';
import { spawnRoomcast, stopProcess, type LogLine, type ServerProcess } from './helpers/process.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { until } from './helpers/until.js';

const LOOPBACK = ['--host', '127.0.0.1', '--port', '0'];
const WARN = 40;

function differs(lines: LogLine[]): LogLine[] {
  return lines.filter((line) => line.level === WARN && / differs across the cluster/.test(line.msg));
}

async function settingsMismatch(logicUrl: string): Promise<unknown> {
  const answer = await call(logicUrl, '/stats');
  assert.equal(answer.status, 200, answer.text);
  return answer.body.data?.settingsMismatch;
}

function processOf(server: ServerProcess, role: string): Record<string, unknown> {
  return { id: '<id>', role, pid: server.proc.pid, host: hostname() };
}

/** The mismatch's processes with their ids checked as ids and left out, so the rest compares as a whole. */
function withoutIds(mismatch: unknown): unknown {
  return (mismatch as { flag: string; values: { value: number; processes: { id: string }[] }[] }[]).map(({ flag, values }) => ({
    flag,
    values: values.map(({ value, processes }) => ({
      value,
      processes: processes.map(({ id, ...rest }) => {
        assert.match(id, /^[0-9a-f-]{36}$/);
        return { id: '<id>', ...rest };
      }),
    })),
  }));
}

describe('shared settings compared across processes on Redis', { skip: skipWithoutRedis }, () => {
  let redis: RedisServer;
  const running: ServerProcess[] = [];
  // each case on a database of its own: no process of one case is live in another's
  let database: number;
  const spawn = async (command: string, args: string[]): Promise<ServerProcess> => {
    const server = await spawnRoomcast(command, [...LOOPBACK, '--broker', `${redis.url}/${database}`, ...args]);
    running.push(server);
    return server;
  };
  const stopAll = async (): Promise<void> => {
    await Promise.all(running.splice(0).map(stopProcess));
  };

  before(async () => {
    redis = await RedisServer.start();
  });
  // a failed case stops its processes too, before the next case starts its own
  afterEach(stopAll);
  after(async () => {
    await redis?.stop();
  });

  it('a logic process with another --history-size warns once, naming both values and the gateway, and /stats lists it until the gateway stops', async () => {
    database = 1;
    const gateway = await spawn('gateway', []);
    const logic = await spawn('logic', ['--history-size', '10']);

    const warnings = differs(logic.lines);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(warnings[0].setting, '--history-size');
    assert.match(
      warnings[0].msg,
      new RegExp(
        `^--history-size differs across the cluster: this logic runs 10, gateway [0-9a-f-]{36} \\(pid ${gateway.proc.pid} on ${hostname()}\\) runs 1000; ` +
          'each push is trimmed to the size of the logic process that accepted it',
      ),
    );
    assert.match(warnings[0].msg, /resumes may report recovered:false/);

    assert.deepEqual(withoutIds(await settingsMismatch(logic.logicUrl)), [
      {
        flag: '--history-size',
        values: [
          { value: 10, processes: [processOf(logic, 'logic')] },
          { value: 1000, processes: [processOf(gateway, 'gateway')] },
        ],
      },
    ]);

    // a stopped process takes its record with it: a rolling change is through once the last old process stops
    await stopProcess(gateway);
    assert.deepEqual(await settingsMismatch(logic.logicUrl), []);
  });

  it('a gateway with another --recovery-window warns naming the start process that runs the default, whose /stats lists it', async () => {
    database = 2;
    const server = await spawnRoomcast('start', ['--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0', '--broker', `${redis.url}/${database}`]);
    running.push(server);
    const gateway = await spawn('gateway', ['--recovery-window', '1500']);

    const warnings = differs(gateway.lines);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(
      warnings[0].msg,
      new RegExp(
        `^--recovery-window differs across the cluster: this gateway runs 1500, gateway\\+logic [0-9a-f-]{36} \\(pid ${server.proc.pid} on ${hostname()}\\) runs 120000; ` +
          'a dropped session is kept for the window of the gateway it dropped from',
      ),
    );
    assert.deepEqual(withoutIds(await settingsMismatch(server.logicUrl)), [
      {
        flag: '--recovery-window',
        values: [
          { value: 1500, processes: [processOf(gateway, 'gateway')] },
          { value: 120_000, processes: [processOf(server, 'gateway+logic')] },
        ],
      },
    ]);
    // the process that was first warns too, with its next heartbeat (every 10 s)
    await until(
      'the start process to warn of the gateway',
      () => differs(server.lines).find((line) => line.setting === '--recovery-window' && String(line.msg).includes(`this gateway+logic runs 120000, gateway`)),
      15_000,
    );
    assert.equal(differs(server.lines).length, 1, JSON.stringify(differs(server.lines)));
  });

  it("a logic process's --max-val-size that a gateway's --send-buffer-limit cannot hold one push of: each side warns, naming the other", async () => {
    database = 4;
    const gateway = await spawn('gateway', ['--send-buffer-limit', '100000']);
    const logic = await spawn('logic', ['--max-val-size', '200000']);
    const fits = (lines: LogLine[]): LogLine[] => lines.filter((line) => line.level === WARN && /fills a client's send buffer by itself/.test(line.msg));
    const gatewayDescribed = `gateway [0-9a-f-]{36} \\(pid ${gateway.proc.pid} on ${hostname()}\\)`;
    assert.equal(fits(logic.lines).length, 1, JSON.stringify(logic.lines));
    assert.match(fits(logic.lines)[0].msg, new RegExp(`^--send-buffer-limit 100000 of ${gatewayDescribed} is below this process's --max-val-size 200000 .*slow consumer \\(4000\\)`));
    // the gateway was first: it warns with its next heartbeat (every 10 s)
    await until('the gateway to warn of the logic process', () => fits(gateway.lines)[0], 15_000);
    assert.match(fits(gateway.lines)[0].msg, new RegExp(`^this process's --send-buffer-limit 100000 is below --max-val-size 200000 of logic [0-9a-f-]{36} \\(pid ${logic.proc.pid} on`));
    assert.deepEqual(differs([...gateway.lines, ...logic.lines]), [], 'not a setting every process must share');
  });

  it('processes that run the same settings say nothing, and /stats lists no mismatch', async () => {
    database = 3;
    const shared = ['--history-size', '50', '--history-ttl', '60000', '--recovery-window', '5000'];
    const gateway = await spawn('gateway', shared);
    const logic = await spawn('logic', [...shared, '--max-val-size', '100']);
    assert.deepEqual(await settingsMismatch(logic.logicUrl), []);
    assert.deepEqual(differs([...gateway.lines, ...logic.lines]), []);
    assert.deepEqual(
      [...gateway.lines, ...logic.lines].filter((line) => line.level === WARN).map((line) => line.msg),
      [],
      'a --max-val-size the gateways hold is no warning',
    );
  });

  it('a process of another roomcast version is named in a warning at start and listed in GET /stats, and a line says when every process runs one version again', async () => {
    database = 5;
    // a gateway of another version, as its record in Redis shows it (the same shared settings: only the version differs)
    const other = createClient({ url: `${redis.url}/${database}` });
    await other.connect();
    try {
      const record = { role: 'gateway', pid: 4242, host: 'elsewhere', version: '0.0.1-old', settings: { '--history-size': 1000, '--history-ttl': 300_000, '--recovery-window': 120_000 } };
      await other.hSet('roomcast:settings', 'old-process', `${Date.now() + 60_000}|${JSON.stringify(record)}`);
      const logic = await spawn('logic', []);
      const versions = logic.lines.filter((line) => line.level === WARN && line.msg.startsWith('roomcast versions differ'));
      assert.deepEqual(
        versions.map((line) => line.msg),
        [
          `roomcast versions differ across the cluster: this logic runs ${VERSION}, gateway old-process (pid 4242 on elsewhere) runs 0.0.1-old; ` +
            'they work together while an upgrade passes, but a query one of them does not know is answered by nothing, and its part is left out of GET /rooms and /stats, until every process runs one version',
        ],
      );
      assert.deepEqual(differs(logic.lines), [], 'no shared setting differs');
      // and GET /stats lists each version with its processes; one recorded before versions were has none (null)
      const older = { role: 'logic', pid: 4343, host: 'older', settings: record.settings };
      await other.hSet('roomcast:settings', 'older-process', `${Date.now() + 60_000}|${JSON.stringify(older)}`);
      const stats = await call(logic.logicUrl, '/stats');
      const listed = stats.body.data?.versionMismatch as { version: string | null; processes: { id: string }[] }[];
      assert.deepEqual(
        listed.map(({ version, processes }) => ({ version, processes: processes.map(({ id, ...rest }) => ({ id: id.length === 36 ? '<id>' : id, ...rest })) })),
        [
          { version: null, processes: [{ id: 'older-process', role: 'logic', pid: 4343, host: 'older' }] },
          { version: '0.0.1-old', processes: [{ id: 'old-process', role: 'gateway', pid: 4242, host: 'elsewhere' }] },
          { version: VERSION, processes: [processOf(logic, 'logic')] },
        ],
      );
      assert.deepEqual(await settingsMismatch(logic.logicUrl), [], 'the versions are no setting');
      // the old processes stop (their records go): the next heartbeat (every 10 s) says so, and /stats lists no version
      await other.hDel('roomcast:settings', ['old-process', 'older-process']);
      await until('the logic process to say every process runs one version', () => logic.lines.find((line) => line.msg === `every live process runs roomcast ${VERSION} again`), 15_000);
      assert.deepEqual((await call(logic.logicUrl, '/stats')).body.data?.versionMismatch, []);
    } finally {
      await other.quit();
    }
  });
});
