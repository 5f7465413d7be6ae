/**
 * What the gateway does with each frame a client sends. Every outcome is a
 * frame back to that client (or nothing); no input can throw past here.
 */
import type { Logger } from 'pino';
import { parseClientFrame } from '../protocol/client-frames.js';
import { errorFrame, PONG_FRAME, replyFrame, type ClientErrorCode, type ReplyId } from '../protocol/frames.js';
import { encodeTextFrame } from '../protocol/ws-frame.js';
import type { Connection } from './connection.js';
import type { GatewayNode } from './node.js';
import { resume } from './resume.js';

/** More than this many malformed frames within the window closes the connection with 4004. */
export const MALFORMED_FRAME_LIMIT = 10;
export const MALFORMED_FRAME_WINDOW_MS = 10_000;

const PONG = encodeTextFrame(PONG_FRAME);

export interface InboundContext {
  node: GatewayNode;
  allowClientJoin: boolean;
  log: Logger;
}

function sendError(conn: Connection, id: ReplyId | undefined, code: ClientErrorCode, message: string): void {
  conn.send(encodeTextFrame(errorFrame(id, code, message)));
}

/** Counts a malformed frame; true when the connection has passed the limit and is being closed. */
function countMalformed(ctx: InboundContext, conn: Connection, now: number): boolean {
  if (now - conn.badFramesSince > MALFORMED_FRAME_WINDOW_MS) {
    conn.badFramesSince = now;
    conn.badFrames = 0;
  }
  conn.badFrames++;
  if (conn.badFrames <= MALFORMED_FRAME_LIMIT) return false;
  ctx.node.counters.malformedCloses++;
  conn.close('malformed');
  return true;
}

export function handleInbound(ctx: InboundContext, conn: Connection, data: Buffer, now: number): void {
  const frame = parseClientFrame(data);
  const firstFrame = !conn.firstFrameSeen;
  conn.firstFrameSeen = true;
  if (firstFrame && frame.kind !== 'resume') ctx.node.settle(conn);
  switch (frame.kind) {
    case 'ping':
      conn.send(PONG);
      return;
    case 'ignored':
      return;
    case 'problem':
      if (frame.code === 'bad_frame' && countMalformed(ctx, conn, now)) return;
      sendError(conn, frame.id, frame.code, frame.message);
      return;
    case 'membership': {
      if (!ctx.allowClientJoin) {
        sendError(conn, frame.id, 'forbidden', `clients may not ${frame.op} rooms on this server (start it with --allow-client-join)`);
        return;
      }
      const { op, room, id } = frame;
      const change = op === 'join' ? ctx.node.join(conn, room) : ctx.node.leave(conn, room);
      change.then(
        ({ changed }) => conn.send(encodeTextFrame(replyFrame(id, { room, changed }))),
        (err: unknown) => {
          ctx.log.warn({ err, room, wsId: conn.wsId }, `client ${op} failed`);
          sendError(conn, id, 'bad_request', `could not ${op} room ${room}: the broker is unavailable, try again`);
        },
      );
      return;
    }
    case 'token':
      sendError(conn, frame.id, 'forbidden', `client authentication is not enabled on this server, so op ${frame.op} does nothing`);
      return;
    case 'resume':
      resume(ctx.node, conn, frame, firstFrame).catch((err: unknown) => ctx.log.error({ err, wsId: conn.wsId }, 'resume failed'));
      return;
  }
}
