/**
 * The gap-repair limit on Redis (src/gateway/gaps.ts, docs/REFERENCE.md §7
 * "Gaps"): at most 10,000 live publications of a stream wait behind a history
 * read, and a gap of more than 10,000 is not read back. Past either, the
 * stream's members are closed with 4005 and their resume says recovered:false.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { RedisBroker } from '../src/broker/redis/broker.js';
import { CloseCode } from '../src/protocol/close-codes.js';
import { isPush } from './helpers/client.js';
import { relayedClusterPerSuite } from './helpers/cluster.js';
import { call, post } from './helpers/http.js';
import { skipWithoutRedis } from './helpers/redis.js';
import { member, resumeOn, type Position } from './helpers/resume.js';

const LIMIT = 10_000;
const HISTORY = { size: 2 * LIMIT, ttlMs: 300_000 };
/** How long gap repair tries to read history before it gives up (GIVE_UP_MS in gaps.ts). */
const GIVE_UP_MS = 5_000;

describe('the gap-repair limit on Redis', { skip: skipWithoutRedis, timeout: 120_000 }, () => {
  /** A second logic process's broker, straight on Redis: 10,001 pushes in well under the 5 s a read is given. */
  let pusher: RedisBroker | undefined;
  // registered before the cluster's hooks, so it closes while Redis still runs
  after(() => pusher?.close());
  const env = relayedClusterPerSuite(1, { history: HISTORY }, { historySize: HISTORY.size });
  let gatewayProcess: string;
  before(async () => {
    const gatewayBroker = env.cluster.gateways[0].node.broker as RedisBroker;
    gatewayProcess = gatewayBroker.processId;
    pusher = await RedisBroker.connect({ url: env.redis.url, prefix: gatewayBroker.names.prefix, history: HISTORY }, pino({ level: 'silent' }));
  });

  async function push(room: string, count: number): Promise<void> {
    for (let i = 0; i < count; i += 1000) {
      await Promise.all(Array.from({ length: Math.min(1000, count - i) }, (_, j) => pusher!.publish(room, { tag: 2, val: `${room}-${i + j}` })));
    }
  }

  const servers = (): { gatewayUrl: string; logicUrl: string } => ({ gatewayUrl: env.cluster.gatewayUrls[0], logicUrl: env.cluster.logicUrl });

  it(`more than ${LIMIT} pushes waiting behind a stalled history read close the members with 4005 at once, not after the 5 s give-up; they resume with recovered:false`, async () => {
    const room = 'stalled';
    const { client, since } = await member(servers(), [room]);
    const historyKey = (env.cluster.gateways[0].node.broker as RedisBroker).names.historyKey(room);
    // the read of what the room missed, once the subscriber is back, stalls in the relay
    const read = env.relay.hold((name, text) => name === `roomcast:commands:${gatewayProcess}` && text.includes(historyKey));
    try {
      await env.redis.killClient(`roomcast:subscriber:${gatewayProcess}`);
      await read.held;
      const stalledAt = Date.now();
      await push(room, LIMIT);
      assert.equal(await client.closeCode(500), 'still open', `${LIMIT} waiting pushes are within the limit`);
      await push(room, 1);
      assert.equal(await client.closeCode(GIVE_UP_MS), CloseCode.missedMessages);
      assert.ok(Date.now() - stalledAt < GIVE_UP_MS, `closed ${Date.now() - stalledAt} ms after the read stalled: by the limit, before the give-up`);
      assert.equal(client.frames.filter(isPush).length, 0, 'nothing of the room went out while its read stalled');
    } finally {
      read.release();
    }
    assert.ok(((await call(env.cluster.logicUrl, '/stats')).body.data?.missedMessageCloses as number) >= 1);

    const { client: again, end } = await resumeOn(env.cluster.gatewayUrls[0], client.welcome!.resume as string, since);
    assert.equal(end.op, 'resumed', JSON.stringify(end));
    assert.equal(end.recovered, false, `${LIMIT + 1} missed pushes are more than a resume replays`);
    assert.equal((end.streams as Record<string, Position>)[room].seq, LIMIT + 1);
    const live = await post(env.cluster.logicUrl, '/push/room', { val: 'live', tag: 3, id: room });
    assert.deepEqual(await again.next((f) => isPush(f) && f.data === 'live'), { type: 3, data: 'live', room, seq: LIMIT + 2 });
    assert.equal(live.body.data?.seq, LIMIT + 2);
    await again.closeAndWait();
  });

  it(`a gap of more than ${LIMIT} pushes closes the members with 4005 even where history holds it; the resume replays ${LIMIT} and says recovered:false`, async () => {
    const room = 'long-gap';
    const { client, since } = await member(servers(), [room]);
    // the subscriber's resubscription waits in the relay: the node misses every push meanwhile
    const resubscribe = env.relay.hold((name, text) => name === `roomcast:subscriber:${gatewayProcess}` && /subscribe/i.test(text));
    try {
      await env.redis.killClient(`roomcast:subscriber:${gatewayProcess}`);
      await resubscribe.held;
      await push(room, LIMIT + 1);
    } finally {
      resubscribe.release();
    }
    assert.equal(await client.closeCode(GIVE_UP_MS), CloseCode.missedMessages);
    assert.equal(client.frames.filter(isPush).length, 0);

    const { client: again, frames, end } = await resumeOn(env.cluster.gatewayUrls[0], client.welcome!.resume as string, since);
    assert.equal(end.op, 'resumed', JSON.stringify(end));
    assert.equal(end.recovered, false);
    const replayed = frames.filter(isPush);
    assert.equal(replayed.length, LIMIT, 'the oldest 10,000 after since');
    assert.deepEqual(
      replayed.map((f) => f.seq),
      Array.from({ length: LIMIT }, (_, i) => i + 1),
    );
    assert.equal((end.streams as Record<string, Position>)[room].seq, LIMIT + 1);
    await again.closeAndWait();
  });
});
