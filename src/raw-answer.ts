/**
 * An HTTP error answer written straight to a socket that no HTTP response
 * object owns (a refused WebSocket handshake, a request Node gave up on).
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/** How long an answered socket stays open for the caller to read the answer and close its side. */
const ANSWERED_LINGER_MS = 2000;

/** Answers with `{"code":status,"msg":message}` (and `headers`) and closes the socket, at the latest ANSWERED_LINGER_MS later. */
export function answerRaw(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ code: status, msg: message });
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\n${extra}` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  // Node's HTTP sockets are half-open: a caller that never closes its side would otherwise keep the socket for good
  setTimeout(() => socket.destroy(), ANSWERED_LINGER_MS).unref();
}
