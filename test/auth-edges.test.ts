/** Edges of client auth found in review, over real sockets. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient } from './helpers/client.js';
import { serverPerSuite } from './helpers/server.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';

describe('refresh frames', () => {
  const server = serverPerSuite({ auth: 'required', jwtSecret: JWT_SECRET, heartbeatTimeout: 0 });

  it('apply in the order the client sent them: the last token is the one in force, whatever order their verifications finish in', async () => {
    const client = await TestClient.connect(`${server.gatewayUrl}?token=${await signToken({ sub: 'ann', expiresIn: 60 })}`);
    const count = 40;
    const tokens = await Promise.all(
      Array.from({ length: count }, (_, i) => signToken({ sub: 'ann', expiresIn: 60 + i, rooms: [i === count - 1 ? 'newest' : 'older'] })),
    );
    tokens.forEach((token, i) => client.send({ op: 'refresh', token, id: i }));
    const replies = await client.collect((f) => f.op === 'reply', count);
    assert.deepEqual(
      replies.map((r) => r.id),
      tokens.map((_, i) => i),
    );
    client.send({ op: 'join', room: 'newest', id: 'n' });
    assert.equal((await client.next((f) => f.id === 'n')).op, 'reply');
    client.send({ op: 'join', room: 'older', id: 'o' });
    assert.equal((await client.next((f) => f.id === 'o')).code, 'forbidden');
    await client.closeAndWait();
  });
});
