/** After close() the SDK is silent: no event after `closed`, whatever was still under way. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { RoomcastClient } from '../client/node.js';
import { nextEvent, record } from './helpers/sdk.js';
import { serverPerSuite } from './helpers/server.js';
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
