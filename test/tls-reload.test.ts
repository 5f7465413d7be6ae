/** --tls-watch-interval: renewed --tls-cert / --tls-key files are served to new connections without a restart. */
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { startStandalone, type RunningServer } from '../src/standalone.js';
import { TestClient } from './helpers/client.js';
import { spawnServer, stopProcess } from './helpers/process.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { testConfig } from './helpers/server.js';
import { selfSignedCertificate } from './helpers/tls-cert.js';
import { until } from './helpers/until.js';

interface LogLine {
  level: number;
  msg: string;
  subject?: string;
  validTo?: string;
}

const WARN = 40;
const INFO = 30;

function fingerprint(certFile: string): string {
  return new X509Certificate(readFileSync(certFile)).fingerprint256;
}

/** The fingerprint of the certificate a new wss:// connection to the gateway is served. */
function gatewayCertificate(url: string, ca: Buffer[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ca });
    let seen = '';
    ws.on('upgrade', (res) => (seen = (res.socket as TLSSocket).getPeerCertificate().fingerprint256));
    ws.on('open', () => ws.close());
    ws.on('close', () => resolve(seen));
    ws.on('error', reject);
  });
}

/** The fingerprint of the certificate a new https:// connection to the logic API is served (agent: false, so no TLS session is reused). */
function apiCertificate(url: string, ca: Buffer[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/healthz`, { ca, agent: false }, (res) => {
      const seen = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      res.resume();
      res.on('end', () => resolve(seen));
    });
    req.on('error', reject);
    req.end();
  });
}

async function bothServe(server: RunningServer, ca: Buffer[]): Promise<{ gateway: string; api: string }> {
  return { gateway: await gatewayCertificate(server.gatewayUrl, ca), api: await apiCertificate(server.logicUrl, ca) };
}

/** Replaces `path` with a copy of `source` renamed into place, as certbot and most renewals do. */
function renameIntoPlace(source: string, path: string): void {
  copyFileSync(source, `${path}.new`);
  renameSync(`${path}.new`, path);
}

/**
 * A server on certificate A, its key behind a symlink (as a Kubernetes secret mounts it), with
 * its log lines: the files live in a directory of their own, as the test changes them.
 */
async function serverOnCertificateA(a: { cert: string; key: string }, tlsWatchInterval: number) {
  const dir = mkdtempSync(join(tmpdir(), 'roomcast-tls-reload-'));
  const paths = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  copyFileSync(a.cert, paths.cert);
  copyFileSync(a.key, join(dir, 'key-a.pem'));
  symlinkSync('key-a.pem', paths.key);
  const lines: LogLine[] = [];
  const config = testConfig({ tlsCert: paths.cert, tlsKey: paths.key, tlsWatchInterval, logLevel: 'info' });
  const server = await startStandalone(config, pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) }));
  return { server, lines, dir, paths };
}

/** Points the symlink at `path` to a new file, swapped in with one rename, as a Kubernetes secret update does. */
function swapSymlink(dir: string, path: string, target: string): void {
  symlinkSync(target, join(dir, 'key.pem.new'));
  renameSync(join(dir, 'key.pem.new'), path);
}

/** A self-signed certificate on a 512-bit RSA key: its key is its certificate's, but OpenSSL will not serve it. */
function certificateOnTooSmallKey(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'roomcast-tls-weak-'));
  const paths = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:512', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', paths.key, '-out', paths.cert], { stdio: 'ignore' });
  return paths;
}

/** A renewal to `pair`: the certificate renamed into place, the key symlink swapped to a copy named `keyName`. */
function renewTo(pair: { cert: string; key: string }, dir: string, paths: { cert: string; key: string }, keyName: string): void {
  renameIntoPlace(pair.cert, paths.cert);
  copyFileSync(pair.key, join(dir, keyName));
  swapSymlink(dir, paths.key, keyName);
}

function untilBothServe(server: RunningServer, ca: Buffer[], expected: string): Promise<true> {
  return until(`new connections to be served the certificate ${expected}`, async () => {
    const served = await bothServe(server, ca);
    return served.gateway === expected && served.api === expected ? true : undefined;
  });
}

describe('TLS files renewed while the server runs', () => {
  const a = selfSignedCertificate();
  const b = selfSignedCertificate();
  const other = selfSignedCertificate();
  const ca = [readFileSync(a.cert), readFileSync(b.cert)];
  const [fingerprintA, fingerprintB] = [fingerprint(a.cert), fingerprint(b.cert)];

  it('serves a renewed pair to new wss:// and https:// connections, keeps open ones, refuses a key that is not the certificate\'s, and stops watching on close', async () => {
    const { server, lines, dir, paths } = await serverOnCertificateA(a, 100);
    let closed = false;
    try {
      assert.deepEqual(await bothServe(server, ca), { gateway: fingerprintA, api: fingerprintA }, 'both servers start on A');
      const before = await TestClient.connect(server.gatewayUrl, { ca: Buffer.concat(ca) });

      renewTo(b, dir, paths, 'key-b.pem');
      await untilBothServe(server, ca, fingerprintB);
      assert.deepEqual(await before.ping(), { type: 1, data: 'PONG' }, 'a connection opened on A still answers');
      const reloaded = lines.filter((l) => l.level === INFO && /TLS certificate reloaded/.test(l.msg));
      assert.equal(reloaded.length, 1, JSON.stringify(reloaded));
      const certificateB = new X509Certificate(readFileSync(b.cert));
      assert.equal(reloaded[0].subject, certificateB.subject);
      assert.equal(reloaded[0].validTo, certificateB.validTo);
      assert.ok(!JSON.stringify(lines).includes('PRIVATE KEY'), 'a key appears in the logs');

      // a key rewritten in place that is not the certificate's (a renewal read half-way): refused, B kept
      const warnedBefore = lines.filter((l) => l.level === WARN).length;
      writeFileSync(join(dir, 'key-b.pem'), readFileSync(other.key));
      const warning = await until('a warning about the key', () => lines.filter((l) => l.level === WARN).slice(warnedBefore)[0]);
      assert.match(warning.msg, /TLS files changed but not applied.*--tls-key \S+key\.pem does not hold the PEM private key of --tls-cert: it is not the key of the certificate/);
      await sleep(300);
      assert.deepEqual(await bothServe(server, ca), { gateway: fingerprintB, api: fingerprintB }, 'new connections still get B');
      assert.equal(lines.filter((l) => l.level === WARN).length, warnedBefore + 1, 'the same refused pair is warned about once');
      await before.closeAndWait();

      assert.equal(server.tlsFiles?.watching, true);
      await server.close();
      closed = true;
      assert.equal(server.tlsFiles?.watching, false, 'a poll is still scheduled after close');
    } finally {
      if (!closed) await server.close();
    }
  });

  it('with --tls-watch-interval 0, does not reload', async () => {
    const { server, dir, paths } = await serverOnCertificateA(a, 0);
    try {
      assert.equal(server.tlsFiles?.watching, false);
      renewTo(b, dir, paths, 'key-b.pem');
      await sleep(500);
      assert.deepEqual(await bothServe(server, ca), { gateway: fingerprintA, api: fingerprintA });
    } finally {
      await server.close();
    }
  });

  it('refuses a renewed pair OpenSSL will not serve, naming the flags, keeps the current one, and applies the next renewal', async () => {
    const weak = certificateOnTooSmallKey();
    const { server, lines, dir, paths } = await serverOnCertificateA(a, 100);
    try {
      renewTo(weak, dir, paths, 'key-weak.pem');
      const warning = await until('a warning about the pair', () => lines.find((l) => l.level === WARN));
      assert.match(warning.msg, /TLS files changed but not applied.*--tls-cert \S+cert\.pem and --tls-key \S+key\.pem cannot be served: .*key too small/);
      await sleep(300);
      assert.deepEqual(await bothServe(server, ca), { gateway: fingerprintA, api: fingerprintA }, 'new connections still get A');
      assert.equal(lines.filter((l) => l.level === WARN).length, 1, 'the same refused pair is warned about once');

      renewTo(b, dir, paths, 'key-b.pem');
      await untilBothServe(server, ca, fingerprintB);
    } finally {
      await server.close();
    }
  });

  it('leaves no timer once closed, though its next check was minutes away', async () => {
    // an interval no other timer has, so the watcher's timers can be told apart; long, so one left behind does not fire meanwhile
    const interval = 45_678;
    const alive = new Set<number>();
    const hook = createHook({
      init: (id, type, _trigger, resource) => {
        if (type === 'Timeout' && (resource as { _idleTimeout?: number })._idleTimeout === interval) alive.add(id);
      },
      destroy: (id) => void alive.delete(id),
    }).enable();
    try {
      const { server } = await serverOnCertificateA(a, interval);
      assert.equal(alive.size, 1, 'the watcher schedules its check');
      await server.close();
      await nextTurn(); // destroy hooks run after the turn the timer was cleared in
      assert.equal(alive.size, 0, 'a check is still scheduled after close');
    } finally {
      hook.disable();
    }
  });
});

describe('TLS files renewed under start --workers', { skip: skipWithoutRedis }, () => {
  it('each gateway worker and the logic API reload the renewed pair: every new connection gets it, whichever worker takes it', async () => {
    const [a, b] = [selfSignedCertificate(), selfSignedCertificate()];
    const ca = [readFileSync(a.cert), readFileSync(b.cert)];
    const dir = mkdtempSync(join(tmpdir(), 'roomcast-tls-workers-'));
    const paths = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
    copyFileSync(a.cert, paths.cert);
    copyFileSync(a.key, paths.key);
    const redis = await RedisServer.start();
    const server = await spawnServer([
      '--host', '127.0.0.1', '--gateway-port', '0', '--logic-port', '0', '--workers', '2', '--broker', redis.url,
      '--tls-cert', paths.cert, '--tls-key', paths.key, '--tls-watch-interval', '100',
    ]);
    try {
      // node:cluster hands connections to the workers in turn: 6 in a row reach both
      const sixInARow = async (): Promise<string[]> => {
        const seen: string[] = [];
        for (let i = 0; i < 6; i++) seen.push(await gatewayCertificate(server.gatewayUrl, ca));
        return [...new Set(seen)];
      };
      assert.deepEqual(await sixInARow(), [fingerprint(a.cert)]);
      renameIntoPlace(b.cert, paths.cert);
      renameIntoPlace(b.key, paths.key);
      const reloads = await until('the 2 workers and the primary to log the reload', () => {
        const pids = new Set(server.lines.filter((l) => l.msg.startsWith('TLS certificate reloaded')).map((l) => l.pid));
        return pids.size === 3 ? pids : undefined;
      });
      assert.equal(reloads.size, 3);
      assert.deepEqual(await sixInARow(), [fingerprint(b.cert)]);
      assert.equal(await apiCertificate(server.logicUrl, ca), fingerprint(b.cert));
    } finally {
      await stopProcess(server);
      await redis.stop();
    }
  });
});
