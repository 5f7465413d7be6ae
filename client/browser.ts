/**
 * `roomcast/client` in browsers (the `browser` export condition): the client
 * on the platform's own WebSocket. Also works wherever a global WebSocket
 * exists (Node 22+, Deno, Bun).
 */
import { BaseRoomcastClient } from './client.js';
import type { OpenTransport } from './transport.js';
import type { ClientOptions } from './types.js';

interface NativeWebSocket {
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

type NativeWebSocketConstructor = new (url: string) => NativeWebSocket;

function nativeWebSocket(): NativeWebSocketConstructor {
  const ctor = (globalThis as { WebSocket?: NativeWebSocketConstructor }).WebSocket;
  if (ctor === undefined) throw new TypeError('there is no global WebSocket here: in Node 20, import roomcast/client without the browser condition (it uses the ws package)');
  return ctor;
}

const openNative: OpenTransport = (url, handlers) => {
  const ws = new (nativeWebSocket())(url);
  ws.onmessage = (event) => {
    if (typeof event.data === 'string') handlers.message(event.data);
  };
  ws.onclose = (event) => handlers.close(event.code, event.reason);
  return {
    send: (text) => ws.send(text),
    close: (code, reason) => ws.close(code, reason),
    // Browsers cannot destroy a socket. A close without a code would end the session on the
    // server (as the app's own close does); 4002, the heartbeat timeout, keeps it for the resume.
    abort: () => ws.close(4002),
  };
};

export class RoomcastClient extends BaseRoomcastClient {
  constructor(url: string, options: ClientOptions = {}) {
    nativeWebSocket();
    super(url, options, openNative);
  }
}

export * from './public.js';
