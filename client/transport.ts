/** What the client needs from a WebSocket; browser.ts and node.ts each provide one. */
export interface TransportHandlers {
  /** A text frame arrived. */
  message(text: string): void;
  /** The socket is gone, after a close handshake or not (1006). */
  close(code: number, reason: string): void;
}

export interface Transport {
  send(text: string): void;
  /** Starts the close handshake. */
  close(code: number, reason: string): void;
  /** Drops the connection without waiting for the server (it stopped answering). */
  abort(): void;
}

export type OpenTransport = (url: string, handlers: TransportHandlers) => Transport;
