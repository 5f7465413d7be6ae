/**
 * An HTTP error answer written straight to a socket that no HTTP response
 * object owns (a refused WebSocket handshake, a request Node gave up on).
 */
import { maxHeaderSize, STATUS_CODES, type ServerResponse } from 'node:http';
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

/**
 * Answers a request Node's HTTP server gave up on (its `clientError`): 408 past
 * `timeoutMs`, 431 naming the limit for a request line and headers over it,
 * else 400. `request` names what was sent ("the request"). A socket that has
 * started another answer, or cannot be written, is destroyed instead.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, request: string, timeoutMs: number): void {
  const answering = (socket as { _httpMessage?: ServerResponse | null })._httpMessage?.headersSent === true;
  if (!socket.writable || answering) socket.destroy();
  else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') answerRaw(socket, 408, `${request} did not arrive within ${timeoutMs} ms`);
  // a long URL (a huge ?token=, a long path parameter) is the likely cause; say what the limit is
  else if (err.code === 'HPE_HEADER_OVERFLOW') answerRaw(socket, 431, `the request line and headers of ${request} are over ${maxHeaderSize} bytes`);
  else answerRaw(socket, 400, 'malformed HTTP request');
}
