/** `roomcast/client` in Node 20+: the client on the `ws` package. */
import { WebSocket } from 'ws';
import { BaseRoomcastClient } from './client.js';
import type { OpenTransport } from './transport.js';
import type { ClientOptions } from './types.js';

const openWs: OpenTransport = (url, handlers) => {
  // ws waits 30 s for the server's answer to a close, and holds the process meanwhile: a frozen
  // server gets 1 s. (A variable: @types/ws 8.18 does not know closeTimeout, ws 8.23 does.)
  const options = { perMessageDeflate: false, closeTimeout: 1000 };
  const ws = new WebSocket(url, options);
  ws.on('message', (data, isBinary) => {
    if (!isBinary && Buffer.isBuffer(data)) handlers.message(data.toString('utf8'));
  });
  ws.on('close', (code, reason) => handlers.close(code, reason.toString()));
  // A 'close' event always follows an error, and its code tells the client what happened.
  ws.on('error', () => undefined);
  return {
    send: (text) => ws.send(text),
    close: (code, reason) => ws.close(code, reason),
    abort: () => ws.terminate(),
  };
};

export class RoomcastClient extends BaseRoomcastClient {
  constructor(url: string, options: ClientOptions = {}) {
    super(url, options, openWs);
  }
}

export * from './public.js';
