/** After close() the SDK is silent: no event after `closed`, whatever was still under way. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { RoomcastClient, type RoomcastError } from '../client/node.js';
import { nextEvent, record, ScriptedGateway } from './helpers/sdk.js';
import { serverPerSuite, startServer } from './helpers/server.js';
import { TcpRelay } from './helpers/tcp-relay.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';

describe('SDK after close()', () => {
  const server = serverPerSuite({ auth: 'required', jwtSecret: JWT_SECRET });

  it('emits no error when the getToken it was asking fails after close()', async () => {
    let failToken: (reason: Error) => void = () => undefined;
    const getToken = (): Promise<string> => new Promise<string>((_, reject) => (failToken = reject));
    // an expired token: the server closes with 4001, and the client asks getToken for a new one
    const client = new RoomcastClient(server.gatewayUrl, { token: await signToken({ sub: 'sdk-user', expiresIn: -10 }), getToken, reconnect: { initialDelayMs: 20, maxDelayMs: 20 } });
    const events: string[] = [];
    client.on('state', ({ state }) => events.push(state));
    const errors = record(client, 'error');
    client.on('error', (err) => events.push(`error: ${err.message}`));
    await nextEvent(client, 'state', (s) => s.state === 'reconnecting' && s.code === 4001);
    client.close();
    failToken(new Error('the token service is down'));
    await sleep(100);
    assert.deepEqual(events, ['connecting', 'reconnecting', 'closed']);
    assert.deepEqual(errors, []);
  });
});

describe('SDK closed by a listener of the connected state that follows a refused resume', () => {
  it('emits nothing after closed: the refusal (bad_resume) is told before the state, not after', async () => {
    const first = await startServer();
    const second = await startServer();
    let target = first;
    const relay = await TcpRelay.start(() => Number(new URL(target.gatewayUrl).port));
    const client = new RoomcastClient(`ws://127.0.0.1:${relay.port}/connect`, { reconnect: { initialDelayMs: 20, maxDelayMs: 20 } });
    const events: string[] = [];
    client.on('error', (err) => events.push(`error: ${(err as RoomcastError).code}`));
    client.on('state', ({ state, recovered }) => {
      events.push(recovered === undefined ? state : `${state} recovered:${recovered}`);
      // an app that starts over when its session is not taken back
      if (recovered === false) client.close();
    });
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      // the client comes back on another server, which cannot take its session back (another resume secret)
      target = second;
      relay.destroyLinks();
      await nextEvent(client, 'state', (s) => s.state === 'closed');
      await sleep(100);
      assert.deepEqual(events, ['connecting', 'connected', 'reconnecting', 'error: bad_resume', 'connected recovered:false', 'closed']);
      assert.equal(client.wsId, undefined);
    } finally {
      client.close();
      await relay.close();
      await Promise.all([first.close(), second.close()]);
    }
  });
});

describe('SDK closed by a listener of a left event that a resume brings', () => {
  it('keeps no room once closed: the rooms of the resumed session are back before the left events, not added after them', async () => {
    const gateway = await ScriptedGateway.start(
      (ws, index) => {
        if (index === 0) {
          ws.send('{"type":0,"op":"joined","room":"kept","seq":1,"epoch":"e"}');
          ws.send('{"type":0,"op":"joined","room":"gone","seq":1,"epoch":"e"}');
          return;
        }
        ws.on('message', (data: Buffer) => {
          if (data.toString().includes('"op":"resume"')) ws.send('{"type":0,"op":"resumed","wsId":"ws-0","recovered":true,"streams":{"kept":{"seq":1,"epoch":"e"}}}');
        });
      },
      { welcome: (index) => ({ resume: `r${index}`, seq: 0, epoch: 'e' }) },
    );
    const client = new RoomcastClient(gateway.url, { reconnect: { initialDelayMs: 20, maxDelayMs: 20 } });
    try {
      await nextEvent(client, 'joined', (m) => m.room === 'gone');
      client.on('left', () => client.close());
      gateway.sockets[0].terminate();
      await nextEvent(client, 'state', (s) => s.state === 'closed');
      assert.deepEqual([...client.rooms], []);
      assert.equal(client.wsId, undefined);
    } finally {
      client.close();
      await gateway.close();
    }
  });
});
