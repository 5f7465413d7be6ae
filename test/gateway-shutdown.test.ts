/**
 * A gateway shutdown that arrives while a client is at some step of its
 * connection: each such client ends as PROTOCOL.md §1 says (1001, or a refused
 * handshake), never welcomed by a server that is already going away.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { startServer } from './helpers/server.js';
import { selfSignedCertificate } from './helpers/tls-cert.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';

/** The gateway's HTTP server, to act at the moment it hands over an upgrade. */
function httpOf(gateway: object): Server {
  return (gateway as unknown as { http: Server }).http;
}

describe('gateway shutdown', () => {
  it('while a ?token= is being verified: the handshake is refused with 503, no welcome, no wait for the shutdown timeout', async () => {
    const server = await startServer({ auth: 'optional', jwtSecret: JWT_SECRET });
    try {
      const token = await signToken({ sub: 'ada' });
      let shutdown: Promise<void> | undefined;
      // runs after the gateway's own upgrade listener: its token verification has begun and not ended
      httpOf(server.gateway).once('upgrade', () => (shutdown = server.gateway.close()));
      const started = Date.now();
      const client = new WebSocket(`${server.gatewayUrl}?token=${token}`);
      const frames: string[] = [];
      client.on('message', (data: Buffer) => frames.push(data.toString()));
      client.on('error', () => {});
      const outcome = await new Promise<string>((resolve) => {
        client.once('unexpected-response', (_req, res) => resolve(`HTTP ${res.statusCode}`));
        client.once('close', (code) => resolve(`close ${code}`));
      });
      await shutdown;
      assert.equal(outcome, 'HTTP 503');
      assert.deepEqual(frames, []);
      assert.ok(Date.now() - started < 2000, `the shutdown took ${Date.now() - started} ms`);
      client.terminate();
    } finally {
      await server.close();
    }
  });

  it('with wss://: a client that opened its TCP connection and never finished the TLS handshake holds it no longer than the shutdown timeout (3 s)', async () => {
    const files = selfSignedCertificate();
    const server = await startServer({ tlsCert: files.cert, tlsKey: files.key });
    const silent = connect({ host: '127.0.0.1', port: server.gateway.address.port });
    silent.on('error', () => {});
    try {
      await new Promise<void>((resolve) => silent.once('connect', resolve));
      const started = Date.now();
      await server.gateway.close();
      // the TLS handshake timeout (10 s) would end it otherwise
      assert.ok(Date.now() - started < 5000, `the shutdown took ${Date.now() - started} ms`);
    } finally {
      silent.destroy();
      await server.close();
    }
  });
});
