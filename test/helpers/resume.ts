/** Steps of a resume, as the tests drive them over real sockets. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { TestClient, isPush, type Closed, type Frame } from './client.js';
import { call, post } from './http.js';
import { within } from './until.js';

export interface Position {
  seq: number;
  epoch: string;
}

/** A client that has joined `rooms`, and where it stands in each stream. */
export async function member(server: { gatewayUrl: string; logicUrl: string }, rooms: string[]): Promise<{ client: TestClient; since: Record<string, Position> }> {
  const client = await TestClient.connect(server.gatewayUrl);
  // no prototype, so a room named __proto__ is a field like any other
  const since = Object.create(null) as Record<string, Position>;
  since['*'] = { seq: client.welcome!.seq as number, epoch: client.welcome!.epoch as string };
  for (const room of rooms) {
    const answer = await post(server.logicUrl, '/room/join', { id: room, wsId: client.wsId });
    assert.equal(answer.status, 200, `join ${room}: ${answer.text}`);
    const joined = await client.next((f) => f.op === 'joined' && f.room === room).catch(async (err: unknown) => {
      const conn = await call(server.logicUrl, `/conns/${client.wsId}`);
      throw new Error(`no joined frame for ${room} (the join answered ${answer.text}; GET /conns/${client.wsId}: ${conn.text})`, { cause: err });
    });
    since[room] = { seq: joined.seq as number, epoch: joined.epoch as string };
  }
  return { client, since };
}

/** A member whose connection then dropped: its session is away, waiting for a resume. */
export async function awayMember(server: { gatewayUrl: string; logicUrl: string }, rooms: string[]): Promise<{ client: TestClient; since: Record<string, Position> }> {
  const joined = await member(server, rooms);
  await dropConnection(server, joined.client);
  return joined;
}

/** Drops the socket without a close handshake, as a lost network would, and waits until the server has noticed. */
export async function dropConnection(server: { logicUrl: string }, client: TestClient): Promise<void> {
  client.ws.terminate();
  for (let i = 0; i < 100; i++) {
    const info = await call(server.logicUrl, `/conns/${client.wsId}`);
    if (info.body.data?.state === 'away') return;
    await sleep(10);
  }
  throw new Error('the server did not notice the dropped connection');
}

/**
 * Reconnects and sends the resume op as the first frame (`afterMs` after the
 * welcome); resolves with every frame up to `resumed` (or an error).
 */
export async function resumeOn(url: string, token: string, since: Record<string, Position>, afterMs = 0): Promise<{ client: TestClient; frames: Frame[]; end: Frame }> {
  const client = await TestClient.connect(url, { quiet: true });
  if (afterMs > 0) await sleep(afterMs);
  client.send({ op: 'resume', token, since, id: 1 });
  const end = await client.next((f) => f.op === 'resumed' || f.op === 'error', 15_000);
  const frames = client.frames.splice(0);
  return { client, frames, end };
}

/**
 * Sends the resume op on a connection just welcomed, and stops reading (`client.ws.pause()`) in the tick
 * the first replayed push arrives: the replay is then under way, and one larger than the socket buffers
 * waits for the client until `client.ws.resume()`. Fails when the resume ends, or errs, before any push.
 */
export async function resumeUntilReplaying(client: TestClient, token: string, since: Record<string, Position>): Promise<void> {
  const replaying = new Promise<void>((resolve, reject) => {
    const onMessage = (data: Buffer): void => {
      const frame = JSON.parse(data.toString()) as Frame;
      if (!isPush(frame) && frame.op !== 'resumed' && frame.op !== 'error') return;
      client.ws.off('message', onMessage);
      if (!isPush(frame)) return reject(new Error(`the resume ended before it replayed anything: ${JSON.stringify(frame).slice(0, 300)}`));
      client.ws.pause();
      resolve();
    };
    client.ws.on('message', onMessage);
  });
  client.send({ op: 'resume', token, since, id: 1 });
  await within(replaying, 15_000, 'the first push of the replay');
}

/** How many resumes the server has ended with `resumed` (GET /stats). */
export async function resumesEnded(server: { logicUrl: string }): Promise<number> {
  const stats = await call(server.logicUrl, '/stats');
  assert.equal(stats.status, 200, stats.text);
  return stats.body.data?.resumes as number;
}

/** What a resume came to: the `resumed` or `error` frame, or the close the server answered it with. */
export type ResumeEnd = { frame: Frame; closed?: undefined } | { frame?: undefined; closed: Closed };

/** Sends the resume op on a connection that has just been welcomed; resolves with how the server answered it. */
export async function resumeEnd(client: TestClient, token: string, since: Record<string, Position>): Promise<ResumeEnd> {
  client.send({ op: 'resume', token, since, id: 1 });
  const frame = await client.next((f) => f.op === 'resumed' || f.op === 'error', 15_000).catch((err: unknown) => {
    if (client.ws.readyState === WebSocket.OPEN) throw err;
    return undefined;
  });
  return frame === undefined ? { closed: await client.closedWithin('the server to answer the resume or close the connection') } : { frame };
}

/** Asserts that a resume ended with `resumed`, and with the wsId and recovered flag that `expected` names; a failure shows the frame. */
export function assertResumed(end: Frame, expected: { wsId?: string; recovered?: boolean } = {}): void {
  const shown = JSON.stringify(end).slice(0, 300);
  assert.equal(end.op, 'resumed', shown);
  if ('wsId' in expected) assert.equal(end.wsId, expected.wsId, shown);
  if ('recovered' in expected) assert.equal(end.recovered, expected.recovered, shown);
}
