/**
 * What the gateway does with each frame a client sends. Every outcome is a
 * frame back to that client (or nothing); no input can throw past here.
 */
import type { Logger } from 'pino';
import type { AuthMode } from '../config.js';
import { parseClientFrame } from '../protocol/client-frames.js';
import { errorFrame, PONG_FRAME, replyFrame, type ClientErrorCode, type ReplyId } from '../protocol/frames.js';
import { encodeTextFrame } from '../protocol/ws-frame.js';
import type { Connection } from './connection.js';
import { MalformedFrames } from './malformed.js';
import type { GatewayNode } from './node.js';
import { resume } from './resume.js';

const PONG = encodeTextFrame(PONG_FRAME);

export interface InboundContext {
  node: GatewayNode;
  allowClientJoin: boolean;
  /** --max-payload: the socket takes larger messages only for a resume (see resumeFrameLimit). */
  maxPayload: number;
  log: Logger;
  /** --auth: with `optional` or `required` an anonymous session may become a user's, which bounds what its resume token may take back. */
  auth: AuthMode;
  /** Verifies and applies a client token (auth or refresh); resolves with what is wrong, or undefined. */
  authenticate(conn: Connection, token: string): Promise<string | undefined>;
}

/** A client may join or leave a room by itself with --allow-client-join, or when its token's rooms claim covers it. */
function mayChoose(ctx: InboundContext, conn: Connection, room: string): boolean {
  return ctx.allowClientJoin || (conn.identity?.rooms.allows(room) ?? false);
}

function sendError(conn: Connection, id: ReplyId | undefined, code: ClientErrorCode, message: string): void {
  conn.send(encodeTextFrame(errorFrame(id, code, message)));
}

/** Counts a malformed frame; true when the connection has passed the limit and is being closed. */
function countMalformed(ctx: InboundContext, conn: Connection, now: number): boolean {
  conn.badFrames ??= new MalformedFrames();
  if (!conn.badFrames.record(now)) return false;
  // the bad frames that follow (in the same write) come after the close: they count no second close
  if (conn.closeCode === undefined) ctx.node.counters.malformedCloses++;
  conn.close('malformed');
  return true;
}

function closeTooLarge(ctx: InboundContext, conn: Connection): void {
  if (conn.closeCode === undefined) ctx.node.counters.tooLargeCloses++;
  conn.close('tooLarge');
}

/** False until the connection got its welcome (auth required, no token yet). */
function isAdmitted(ctx: InboundContext, conn: Connection): boolean {
  return ctx.node.hub.conns.get(conn.wsId) === conn;
}

export function handleInbound(ctx: InboundContext, conn: Connection, data: Buffer, now: number): void {
  // before its welcome (auth required, no token yet) a connection may only ping and authenticate; a frame
  // that cannot be read is told what is wrong with it (an auth frame with a bad token field, too)
  const admitted = isAdmitted(ctx, conn);
  const firstFrame = admitted && !conn.firstFrameSeen;
  const oversize = data.length > ctx.maxPayload;
  // only a resume, as the first frame, may be larger than --max-payload
  if (oversize && !firstFrame) return closeTooLarge(ctx, conn);
  const frame = parseClientFrame(data);
  if (oversize && frame.kind !== 'resume') return closeTooLarge(ctx, conn);
  if (!admitted && frame.kind !== 'ping' && frame.kind !== 'token' && frame.kind !== 'problem') {
    if (frame.kind !== 'ignored') sendError(conn, 'id' in frame ? frame.id : undefined, 'forbidden', 'authenticate first: send {"op":"auth","token":"<JWT>"}');
    return;
  }
  // auth and refresh frames leave the first frame to come: a client of --auth optional authenticates, then resumes
  if (admitted && frame.kind !== 'token') conn.firstFrameSeen = true;
  if (firstFrame && frame.kind !== 'resume' && frame.kind !== 'token') ctx.node.settle(conn);
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
      const { op, room, id } = frame;
      if (!mayChoose(ctx, conn, room)) {
        const why = conn.identity === undefined ? 'start the server with --allow-client-join, or give the client a token whose rooms claim covers it' : "the token's rooms claim does not cover it";
        sendError(conn, id, 'forbidden', `this client may not ${op} room ${room} by itself: ${why}`);
        return;
      }
      const change: Promise<{ changed: boolean; refused?: string }> = op === 'join' ? ctx.node.join(conn, room) : ctx.node.leave(conn, room);
      change.then(
        ({ changed, refused }) => conn.send(encodeTextFrame(refused === undefined ? replyFrame(id, { room, changed }) : errorFrame(id, 'forbidden', refused))),
        (err: unknown) => {
          ctx.log.warn({ err, room, wsId: conn.wsId }, `client ${op} failed`);
          sendError(conn, id, 'bad_request', `could not ${op} room ${room}: the broker is unavailable, try again`);
        },
      );
      return;
    }
    case 'token': {
      const { op, id } = frame;
      // verifications finish in any order (WebCrypto): an older token must not replace a newer one
      const previous = conn.tokenOps ?? Promise.resolve();
      const handled = previous.then(() => ctx.authenticate(conn, frame.token)).then(
        (problem) => {
          // queued past any hold of live frames: an answer carries no seq, and the auth frame that got the
          // welcome would otherwise have its answer wait for the newcomer's grace (1 s)
          if (problem === undefined) {
            conn.enqueue(encodeTextFrame(replyFrame(id, { uid: conn.uid, expiresAt: conn.identity?.expiresAt ?? null })));
          } else if (isAdmitted(ctx, conn)) {
            // judged now, not when the frame came: an auth frame before this one may have let the connection in
            conn.enqueue(encodeTextFrame(errorFrame(id, 'forbidden', problem)));
          } else {
            // a connection that cannot authenticate is closed: it would never get its welcome
            conn.close('badToken', problem);
          }
        },
        (err: unknown) => ctx.log.error({ err, wsId: conn.wsId }, `${op} failed`),
      );
      conn.tokenOps = handled;
      void handled.then(() => {
        if (conn.tokenOps === handled) conn.tokenOps = undefined;
      });
      return;
    }
    case 'resume':
      resume(ctx, conn, frame, firstFrame).catch((err: unknown) => ctx.log.error({ err, wsId: conn.wsId }, 'resume failed'));
      return;
  }
}
