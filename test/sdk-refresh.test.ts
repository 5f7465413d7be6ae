/** The SDK renews its token with getToken before the token's exp, so the server never closes the connection with 4001. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { RoomcastClient } from '../client/node.js';
import { post } from './helpers/http.js';
import { nextEvent, record, runClientScript, ScriptedGateway } from './helpers/sdk.js';
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

  it('a getToken that gives back the token held (no later exp): a failed ask, not sent, tried again at most twice before exp, not ever closer to it', async () => {
    const token = await signToken({ sub: 'sdk-user', expiresIn: 3 });
    let asked = 0;
    const getToken = (): Promise<string> => {
      asked++;
      return Promise.resolve(token);
    };
    const client = new RoomcastClient(server.gatewayUrl, { token, getToken, reconnect: FAST });
    const events: string[] = [];
    client.on('state', (s) => events.push([s.state, s.code].filter((x) => x !== undefined).join(' ')));
    client.on('error', (err) => events.push(`error: ${err.message}`));
    // counted as the 4001 comes: the ask it makes itself follows
    let askedBeforeExp = -1;
    client.on('state', (s) => s.code === 4001 && askedBeforeExp === -1 && (askedBeforeExp = asked));
    try {
      await nextEvent(client, 'state', (s) => s.state === 'reconnecting' && s.code === 4001, 6000);
      const beforeExp = events.slice(2, events.indexOf('reconnecting 4001'));
      assert.deepEqual(events.slice(0, 2), ['connecting', 'connected']);
      assert.ok(askedBeforeExp >= 2 && askedBeforeExp <= 3, `asked ${askedBeforeExp} times before exp: ${events.join(', ')}`);
      assert.deepEqual(beforeExp, Array<string>(askedBeforeExp).fill('error: getToken gave no token expiring later'));
    } finally {
      client.close();
    }
  });

  it('a getToken that gives a token with no exp: sent and taken (not a failed ask), the connection outlives the old exp, and no ask after it', async () => {
    let asked = 0;
    const getToken = (): Promise<string> => {
      asked++;
      return signToken({ sub: 'sdk-user' });
    };
    const client = new RoomcastClient(server.gatewayUrl, { token: await signToken({ sub: 'sdk-user', expiresIn: 2 }), getToken, reconnect: FAST });
    const errors = record(client, 'error');
    try {
      const { wsId } = await nextEvent(client, 'state', (s) => s.state === 'connected');
      const states = record(client, 'state');
      const identity = () => server.gateway.node.hub.conns.get(wsId!)!.identity!;
      await until('the server holds the token with no exp', () => (identity().expiresAt === undefined ? true : undefined), 4000);
      // past the first token's exp (2 s), where the server would have closed with 4001
      await sleep(1500);
      assert.deepEqual(states, [], 'no close, no reconnect');
      assert.deepEqual(errors, []);
      assert.equal(asked, 1);
      assert.equal(identity().expiresAt, undefined);
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

/** A getToken whose answers the test gives: each ask is recorded and waits for `answer`. */
function heldAsks(): { asked: number[]; answer: ((token: string) => void)[]; getToken: () => Promise<string> } {
  const asks = { asked: [] as number[], answer: [] as ((token: string) => void)[], getToken: () => new Promise<string>((resolve) => asks.answer.push(resolve)) };
  const getToken = asks.getToken;
  asks.getToken = () => (asks.asked.push(Date.now()), getToken());
  return asks;
}

describe('SDK token refresh before exp: what replaces or ends the pending ask', () => {
  const server = serverPerSuite({ auth: 'required', jwtSecret: JWT_SECRET, jwtClockTolerance: 0 });
  const expiryOf = (wsId: string | undefined): number | undefined => server.gateway.node.hub.conns.get(wsId!)?.identity?.expiresAt;
  const stateLog = (client: RoomcastClient): string[] => {
    const log: string[] = [];
    client.on('state', (s) => log.push([s.state, s.code].filter((x) => x !== undefined).join(' ')));
    client.on('error', (err) => log.push(`error: ${err.message}`));
    return log;
  };

  /** The one ask comes from the connection's own token: answered with a 60 s token, which the server then holds (no 4001). */
  async function renewsOnce(client: RoomcastClient, asks: ReturnType<typeof heldAsks>, notBefore: number): Promise<void> {
    await until('the ask', () => (asks.asked.length > 0 ? true : undefined), 5000);
    assert.ok(asks.asked[0] >= notBefore, `asked ${notBefore - asks.asked[0]} ms too early`);
    asks.answer[0](await signToken({ sub: 'sdk-user', expiresIn: 60 }));
    await until('the server holds the new token', () => ((expiryOf(client.wsId) ?? 0) > Date.now() + 50_000 ? true : undefined), 3000);
    assert.equal(asks.asked.length, 1);
  }

  it('a drop while the timer waits: getToken is not asked for the old connection; the new one arms its own timer from the token it connected with', async () => {
    const asks = heldAsks();
    // the retry waits ~2.5 s: past the first token's timer (at 80% of its 1-2 s), while disconnected
    const client = new RoomcastClient(server.gatewayUrl, {
      token: await signToken({ sub: 'sdk-user', expiresIn: 2 }),
      getToken: asks.getToken,
      reconnect: { initialDelayMs: 2500, maxDelayMs: 2500, factor: 1 },
      random: () => 0.99,
    });
    const log = stateLog(client);
    try {
      const { wsId } = await nextEvent(client, 'state', (s) => s.state === 'connected');
      const later = await signToken({ sub: 'sdk-user', expiresIn: 5 });
      client.on('state', (s) => s.state === 'reconnecting' && void client.setToken(later));
      server.gateway.node.hub.conns.get(wsId!)!.terminate();
      await nextEvent(client, 'state', (s) => s.state === 'connected', 4000);
      const reconnectedAt = Date.now();
      assert.deepEqual(asks.asked, [], 'no ask while disconnected');
      await renewsOnce(client, asks, reconnectedAt);
      assert.deepEqual(log, ['connecting', 'connected', 'reconnecting 1006', 'connected']);
    } finally {
      client.close();
    }
  });

  it('setToken() while connected replaces the timer: the next ask is timed from the new token exp, not the old one', async () => {
    const asks = heldAsks();
    const client = new RoomcastClient(server.gatewayUrl, { token: await signToken({ sub: 'sdk-user', expiresIn: 2 }), getToken: asks.getToken, reconnect: FAST });
    const log = stateLog(client);
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      const replacedAt = Date.now();
      await client.setToken(await signToken({ sub: 'sdk-user', expiresIn: 5 }));
      // the first token's timer (80% of its 1-2 s) would have asked by now
      await sleep(2000);
      await renewsOnce(client, asks, replacedAt + 2000);
      assert.deepEqual(log, ['connecting', 'connected']);
    } finally {
      client.close();
    }
  });

  it('a getToken that never answers: the ask fails after connectTimeoutMs (an error event) and is tried again, before the 4001 at exp', async () => {
    const asks = heldAsks();
    const client = new RoomcastClient(server.gatewayUrl, {
      token: await signToken({ sub: 'sdk-user', expiresIn: 3 }),
      getToken: asks.getToken,
      connectTimeoutMs: 200,
      reconnect: FAST,
    });
    const log = stateLog(client);
    try {
      await nextEvent(client, 'state', (s) => s.state === 'reconnecting' && s.code === 4001, 6000);
      const beforeExp = log.slice(2, log.indexOf('reconnecting 4001'));
      assert.deepEqual(log.slice(0, 2), ['connecting', 'connected']);
      assert.ok(beforeExp.length >= 1 && beforeExp.every((e) => e === 'error: getToken gave no token within 200 ms'), log.join(', '));
      assert.equal(asks.asked.length, beforeExp.length + (beforeExp.length < 3 ? 1 : 0), `one ask per error, and one more when not all three failed: ${log.join(', ')}`);
    } finally {
      client.close();
    }
  });

  it('an ask answered after setToken() gave a newer token: the late answer is not sent, and no error', async () => {
    const asks = heldAsks();
    const client = new RoomcastClient(server.gatewayUrl, { token: await signToken({ sub: 'sdk-user', expiresIn: 2 }), getToken: asks.getToken, reconnect: FAST });
    const log = stateLog(client);
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      await until('the ask', () => (asks.asked.length > 0 ? true : undefined), 3000);
      await client.setToken(await signToken({ sub: 'sdk-user', expiresIn: 60 }));
      const accepted = expiryOf(client.wsId)!;
      asks.answer[0](await signToken({ sub: 'sdk-user', expiresIn: 30 }));
      // the client would send the late answer in the microtasks its resolution starts: all run before this
      await new Promise((resolve) => setImmediate(resolve));
      // the server takes a connection's tokens one after another: once it has answered a later one (refused: another
      // user's, so it changes nothing), a refresh with the late answer sent before it would have been applied
      await assert.rejects(client.setToken(await signToken({ sub: 'someone-else', expiresIn: 60 })), /for user someone-else, this connection is user sdk-user/);
      assert.equal(expiryOf(client.wsId), accepted, 'the server holds the token setToken() gave');
      assert.deepEqual(log, ['connecting', 'connected']);
    } finally {
      client.close();
    }
  });
});

describe('SDK token refresh before exp: a close() in the tick of the refresh answer', () => {
  it('arms no timer: getToken is not asked after close(), though the accepted token has an exp', async () => {
    // the client reads exp without verifying the token: a scripted gateway takes any
    const expiringIn2s = ['{"alg":"none"}', JSON.stringify({ exp: Date.now() / 1000 + 2 }), ''].map((part) => Buffer.from(part).toString('base64url')).join('.');
    const gateway = await ScriptedGateway.start((ws) =>
      ws.on('message', (data: Buffer) => {
        const op = JSON.parse(data.toString()) as { op?: string; id?: number };
        // the answer and a push in one write: the client reads both in one tick, its push listener closing before setToken() resumes
        if (op.op !== 'refresh') return;
        ws.send(JSON.stringify({ type: 0, op: 'reply', id: op.id }));
        ws.send(JSON.stringify({ type: 2, data: 'close now' }));
      }),
    );
    let asked = 0;
    // the connection's own token is no JWT: no timer but the one the refresh would arm
    const client = new RoomcastClient(gateway.url, { token: 'not-a-jwt', getToken: () => (asked++, Promise.resolve(expiringIn2s)), reconnect: false });
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      const states = record(client, 'state');
      client.on('message', () => client.close());
      await client.setToken(expiringIn2s);
      assert.deepEqual(states.map((s) => s.state), ['closed']);
      // the refresh would have been asked at 80% of the token's 2 s
      await sleep(2500);
      assert.equal(asked, 0, 'getToken was asked after close()');
    } finally {
      client.close();
      await gateway.close();
    }
  });
});
