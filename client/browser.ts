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
  if (ctor === undefined) throw new TypeError('no global WebSocket here: in Node 20, import roomcast/client without the browser condition (that build uses ws)');
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

/** The page's (or worker's) network events; undefined where there are none (Node, whose global has no addEventListener). */
interface NetworkEvents {
  addEventListener(type: 'online' | 'offline', listener: () => void): void;
  removeEventListener(type: 'online' | 'offline', listener: () => void): void;
}

export class RoomcastClient extends BaseRoomcastClient {
  constructor(url: string, options: ClientOptions = {}) {
    nativeWebSocket();
    super(url, options, openNative);
    const target = globalThis as Partial<NetworkEvents>;
    if (typeof target.addEventListener !== 'function') return;
    // Offline, a connection stays open with nothing flowing: drop it now, not a heartbeat later.
    // Online, a client waiting out its backoff retries at once.
    const listeners = { offline: () => this.dropNow('the browser went offline'), online: () => this.retryNow() };
    const listen = (method: 'addEventListener' | 'removeEventListener'): void => {
      for (const type of ['offline', 'online'] as const) target[method]!(type, listeners[type]);
    };
    listen('addEventListener');
    this.on('state', ({ state }) => state === 'closed' && listen('removeEventListener'));
  }
}

export * from './public.js';
