/** The SDK's resume (PROTOCOL.md §4) in the cases where the server cannot take the session back. */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { RoomcastClient } from '../client/node.js';
import { post } from './helpers/http.js';
import { nextEvent, record } from './helpers/sdk.js';
import { startServer } from './helpers/server.js';
import { TcpRelay } from './helpers/tcp-relay.js';

/** Passes what a client sends on after `ms`, in order: the upgrade request at once, every later chunk held back. */
function holdFramesBack(upstream: Socket, ms: number): (chunk: Buffer) => void {
  let first = true;
  return (chunk) => {
    if (first) upstream.write(chunk);
    else setTimeout(() => upstream.write(chunk), ms);
    first = false;
  };
}

describe('SDK resume refused', () => {
  it('keeps the position in `*` of the pushes to all that came before the refusal: the next resume replays none of them again', async () => {
    const first = await startServer();
    const second = await startServer();
    let target = first;
    let links = 0;
    let welcomedBySecond: () => void = () => undefined;
    const secondWelcome = new Promise<void>((resolve) => (welcomedBySecond = resolve));
    const relay = await TcpRelay.start(() => Number(new URL(target.gatewayUrl).port), {
      // the connection to the second server: its resume reaches the server 300 ms late, after a push to all
      carrier: ({ upstream }) => (++links === 2 ? holdFramesBack(upstream, 300) : (chunk) => upstream.write(chunk)),
      answerCarrier: ({ client }) => (chunk) => {
        if (target === second && chunk.includes('"op":"welcome"')) welcomedBySecond();
        client.write(chunk);
      },
    });
    const client = new RoomcastClient(`ws://127.0.0.1:${relay.port}/connect`, { reconnect: { initialDelayMs: 20, maxDelayMs: 20 } });
    const messages = record(client, 'message');
    try {
      await nextEvent(client, 'state', (s) => s.state === 'connected');
      await post(second.logicUrl, '/push/all', { tag: 2, val: 'before the client came' });
      // the client moves to another server, which cannot take its session back (another resume secret)
      target = second;
      const refused = nextEvent(client, 'error');
      const fresh = nextEvent(client, 'state', (s) => s.state === 'connected');
      relay.destroyLinks();
      await secondWelcome;
      const { data } = (await post(second.logicUrl, '/push/all', { tag: 2, val: 'while resuming' })).body;
      assert.equal((await refused).message.includes('forged, foreign or expired'), true);
      assert.deepEqual(await fresh, { state: 'connected', wsId: client.wsId, recovered: false });
      assert.deepEqual(messages.map((m) => m.data), ['while resuming']);
      assert.deepEqual(client.positions.get('*')?.seq, data?.seq);

      // the connection drops again: this resume is taken, and must not replay what the client already got
      const resumed = nextEvent(client, 'state', (s) => s.state === 'connected');
      relay.destroyLinks();
      assert.equal((await resumed).recovered, true);
      await post(second.logicUrl, '/push/all', { tag: 2, val: 'after' });
      await nextEvent(client, 'message', (m) => m.data === 'after');
      assert.deepEqual(messages.map((m) => m.data), ['while resuming', 'after']);
    } finally {
      client.close();
      await relay.close();
      await Promise.all([first.close(), second.close()]);
    }
  });
});
