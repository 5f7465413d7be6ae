/** The SDK renews its token with getToken before the token's exp, so the server never closes the connection with 4001. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { RoomcastClient } from '../client/node.js';
import { post } from './helpers/http.js';
import { nextEvent, record, runClientScript } from './helpers/sdk.js';
import { serverPerSuite } from './helpers/server.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';
import { until } from './helpers/until.js';

const FAST = { initialDelayMs: 20, maxDelayMs: 80, factor: 2 };

describe('SDK token refresh before exp', () => {
  // no clock tolerance: the server closes a connection at its token's exp itself
  const server = serverPerSuite({ auth: 'required', jwtSecret: JWT_SECRET, jwtClockTolerance: 0 });

  it('asks getToken before each exp and sends the new token: the connection stays up past several expiries, same wsId, never a 4001, pushes keep arriving', async () => {
    const asked: number[] = [];
    const getToken = (): Promise<string> => {
      asked.push(Date.now());
      return signToken({ sub: 'sdk-user', expiresIn: 3 });
    };
    const client = new RoomcastClient(server.gatewayUrl, { token: await signToken({ sub: 'sdk-user', expiresIn: 3 }), getToken, reconnect: FAST });
    const errors = record(client, 'error');
    try {
      const { wsId } = await nextEvent(client, 'state', (s) => s.state === 'connected');
      const states = record(client, 'state');
      const messages = record(client, 'message');
      const firstExpiry = server.gateway.node.hub.conns.get(wsId!)!.identity!.expiresAt!;
      // four 3 s tokens' worth: each would have been closed with 4001 at its exp
      for (let i = 0; i < 9; i++) {
        await sleep(1000);
        const { status } = await post(server.logicUrl, '/push/conn', { wsId: wsId!, tag: 2, val: `push ${i}` });
        assert.equal(status, 200, `push ${i}: the connection is there`);
      }
      await until('the last push', () => (messages.length === 9 ? true : undefined), 3000);
      assert.deepEqual(messages.map((m) => m.data), Array.from({ length: 9 }, (_, i) => `push ${i}`));
      assert.deepEqual(states, [], 'no close, no reconnect');
      assert.equal(client.wsId, wsId);
      assert.deepEqual(errors, []);
      assert.ok(asked.length >= 3, `getToken asked ${asked.length} times`);
      const expiresAt = server.gateway.node.hub.conns.get(wsId!)!.identity!.expiresAt!;
      assert.ok(expiresAt - firstExpiry >= 6000, `the server holds a token that expires ${expiresAt - firstExpiry} ms after the first`);
    } finally {
      client.close();
    }
  });

  it('a getToken that rejects: an error event for the ask and each of its (at most two) retries before exp, then the 4001 and its ask, as without the refresh', async () => {
    const getToken = (): Promise<string> => Promise.reject(new Error('the token service is down'));
    const client = new RoomcastClient(server.gatewayUrl, { token: await signToken({ sub: 'sdk-user', expiresIn: 3 }), getToken, reconnect: FAST });
    const events: string[] = [];
    client.on('state', (s) => events.push([s.state, s.code].filter((x) => x !== undefined).join(' ')));
    client.on('error', (err) => events.push(`error: ${err.message}`));
    try {
      await nextEvent(client, 'state', (s) => s.state === 'reconnecting' && s.code === 4001, 6000);
      await nextEvent(client, 'error', () => true, 3000);
      const closedAt = events.indexOf('reconnecting 4001');
      const beforeExp = events.slice(2, closedAt);
      assert.deepEqual(events.slice(0, 2), ['connecting', 'connected']);
      assert.ok(beforeExp.length >= 2 && beforeExp.length <= 3, `the ask and its retries before exp: ${events.join(', ')}`);
      assert.ok(beforeExp.every((e) => e === 'error: the token service is down'), events.join(', '));
      // the 4001 path asks again, fails, and the retry goes with the token before
      assert.equal(events[closedAt + 1], 'error: the token service is down', events.join(', '));
    } finally {
      client.close();
    }
  });

  it('close() after a refresh leaves no timer: the process ends by itself', async () => {
    const [expiring, fresh] = [await signToken({ sub: 'sdk-user', expiresIn: 3 }), await signToken({ sub: 'sdk-user', expiresIn: 60 })];
    const run = await runClientScript(
      `const client = new RoomcastClient(${JSON.stringify(server.gatewayUrl)}, {
        token: ${JSON.stringify(expiring)},
        reconnect: { initialDelayMs: 20, maxDelayMs: 80 },
        getToken: async () => {
          console.log('asked');
          // time for the refresh to be answered, and the next one scheduled (50 s later), before close()
          setTimeout(() => client.close(), 300);
          return ${JSON.stringify(fresh)};
        },
      });
      client.on('state', (s) => console.log([s.state, s.code].filter((x) => x !== undefined).join(' ')));
      client.on('error', (err) => console.log('error', err.message));`,
      10_000,
    );
    assert.equal(run.stderr, '');
    assert.deepEqual(run.lines, ['connecting', 'connected', 'asked', 'closed 1000']);
    assert.ok(run.exited && run.ms < 6000, `the process ${run.exited ? `exited after ${Math.round(run.ms)} ms` : 'was still running after 10 s'}`);
  });
});
