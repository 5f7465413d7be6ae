/**
 * A reconnect storm over real sockets: many members of rooms drop at once
 * (socket destroyed, no close handshake), then all reconnect and resume at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { TestClient, type Closed, type Frame } from './client.js';
import { call, post } from './http.js';
import type { Position } from './resume.js';
import { until } from './until.js';

/** A session as its client knows it: the token to resume with and the last seq seen in each stream. */
export interface StormSession {
  wsId: string;
  token: string;
  since: Record<string, Position>;
}

/** How one resume attempt of the storm ended. */
export interface StormAttempt {
  session: StormSession;
  /** The welcome of the new connection arrived. */
  welcomed: boolean;
  /** The `resumed` frame, when it came. */
  resumed?: Frame;
  /** An `error` frame that answered the resume. */
  refused?: Frame;
  /** The close the connection ended with (undefined while open); a refused handshake or connection counts as 1006. */
  closed?: Closed;
  client?: TestClient;
}

/** Runs `task` on every item with at most `width` at a time. */
async function inBatches<T, R>(items: readonly T[], width: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}

/** Updates `since` from a frame the client received: a push moves its stream, `joined`/`resumed` set positions. */
function track(since: Record<string, Position>, f: Frame): void {
  if (f.op === 'joined') since[f.room as string] = { seq: f.seq as number, epoch: f.epoch as string };
  else if (f.op === 'resumed') Object.assign(since, f.streams as Record<string, Position>);
  else if (f.type >= 2 && typeof f.seq === 'number') {
    const known = since[(f.room as string | undefined) ?? '*'];
    if (known !== undefined) known.seq = f.seq;
  }
}

/** `count` clients on the gateway, client i in room `rooms[i % rooms.length]` (joined by itself: --allow-client-join). */
export async function connectMembers(gatewayUrl: string, count: number, rooms: string[]): Promise<{ client: TestClient; session: StormSession }[]> {
  return inBatches(Array.from({ length: count }, (_, i) => rooms[i % rooms.length]), 50, async (room) => {
    const client = await TestClient.connect(gatewayUrl);
    const since = Object.create(null) as Record<string, Position>;
    since['*'] = { seq: client.welcome!.seq as number, epoch: client.welcome!.epoch as string };
    client.send({ op: 'join', room, id: 1 });
    track(since, await client.next((f) => f.op === 'joined' && f.room === room, 15_000));
    client.ws.on('message', (data: Buffer) => track(since, JSON.parse(data.toString()) as Frame));
    return { client, session: { wsId: client.wsId, token: client.welcome!.resume as string, since } };
  });
}

/** Destroys every client's socket at once (a network loss), then waits until the server holds no connection. */
export async function dropAll(clients: TestClient[], logicUrl: string): Promise<void> {
  for (const client of clients) client.ws.terminate();
  await until('the server to notice every dropped connection', async () => ((await call(logicUrl, '/stats')).body.data?.connections === 0 ? true : undefined), 20_000);
}

/**
 * Reconnects every session at once and sends its resume as the first frame; the attempts fill in as frames and closes arrive.
 * `onWelcomed` is called with the number of welcomes so far, as each arrives (before its resume is sent).
 */
export function resumeAll(
  gatewayUrl: string,
  sessions: StormSession[],
  onWelcomed?: (count: number) => void,
): { attempts: StormAttempt[]; opened: Promise<void> } {
  const attempts = sessions.map((session): StormAttempt => ({ session, welcomed: false }));
  let welcomes = 0;
  const opened = Promise.all(
    attempts.map(async (attempt) => {
      let client: TestClient;
      try {
        client = await TestClient.open(gatewayUrl);
      } catch {
        attempt.closed = { code: 1006, reason: 'refused' };
        return;
      }
      attempt.client = client;
      void client.closed.then((closed) => (attempt.closed = closed));
      const onFrame = (f: Frame): void => {
        if (f.op === 'welcome') {
          attempt.welcomed = true;
          onWelcomed?.(++welcomes);
          client.send({ op: 'resume', token: attempt.session.token, since: attempt.session.since, id: 1 });
        } else if (f.op === 'resumed') {
          attempt.resumed = f;
          attempt.session.token = f.resume as string;
        } else if (f.op === 'error') {
          attempt.refused = f;
        }
        track(attempt.session.since, f);
      };
      // the welcome may have come with the handshake's answer, before this code ran
      for (const f of client.frames) onFrame(f);
      client.ws.on('message', (data: Buffer) => onFrame(JSON.parse(data.toString()) as Frame));
    }),
  ).then(() => undefined);
  return { attempts, opened };
}

/**
 * Pushes to the rooms (and to all, one in four) from two callers, a few ms apart,
 * until stopped or until the logic API stops answering; at most `limit` pushes, so history keeps them all.
 */
export function pushWhileStorming(logicUrl: string, rooms: string[], limit: number): { stop(): Promise<number> } {
  let stopped = false;
  let sent = 0;
  const caller = async (): Promise<void> => {
    while (!stopped && sent < limit) {
      const n = sent++;
      const answer = await post(logicUrl, n % 4 === 0 ? '/push/all' : '/push/room', { val: `storm-${n}`, tag: 2, id: rooms[n % rooms.length] }).catch(() => undefined);
      if (answer === undefined) return; // the logic API is gone (its process stopped)
      await sleep(5);
    }
  };
  const running = Promise.all([caller(), caller()]);
  return {
    async stop() {
      stopped = true;
      await running;
      return sent;
    },
  };
}
