/**
 * A WebSocket client written straight on a TCP socket, for what a well-behaved
 * library will not do: stop reading, send garbage bytes or broken frames.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { within } from './until.js';

export interface RawFrame {
  opcode: number;
  payload: Buffer;
}

export class RawClient {
  readonly frames: RawFrame[] = [];
  /** Close code of the server's close frame, once one has arrived. */
  closeCode: number | undefined;
  readonly ended: Promise<void>;
  private buffer: Buffer = Buffer.alloc(0);

  private constructor(readonly socket: Socket) {
    this.ended = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
  }

  static async connect(wsUrl: string): Promise<RawClient> {
    const url = new URL(wsUrl);
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    const connected = new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    await within(connected, 20_000, `a TCP connection to ${url.host}`).catch((err: unknown) => {
      socket.destroy();
      throw err;
    });
    const key = randomBytes(16).toString('base64');
    socket.write(
      `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const answered = new Promise<Buffer>((resolve, reject) => {
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onData);
        const status = head.subarray(0, end).toString().split('\r\n')[0];
        if (!status.includes(' 101 ')) reject(new Error(`handshake answered: ${status}`));
        else resolve(head.subarray(end + 4));
      };
      socket.on('data', onData);
    });
    const rest = await within(answered, 20_000, `the answer to the WebSocket handshake with ${wsUrl}`).catch((err: unknown) => {
      socket.destroy();
      throw err;
    });
    const client = new RawClient(socket);
    client.take(rest);
    socket.on('data', (chunk: Buffer) => client.take(chunk));
    return client;
  }

  /** Sends one masked frame, as a client must. */
  sendFrame(opcode: number, payload: Buffer | string, fin = true): void {
    this.socket.write(RawClient.frame(opcode, payload, fin));
  }

  sendText(text: string): void {
    this.sendFrame(0x1, text);
  }

  /** Sends text frames in one socket write, as a client that batches its frames does. */
  sendTexts(texts: string[]): void {
    this.socket.write(Buffer.concat(texts.map((text) => RawClient.frame(0x1, text))));
  }

  private static frame(opcode: number, payload: Buffer | string, fin = true): Buffer {
    const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
    const mask = randomBytes(4);
    const lengthBytes = data.length < 126 ? 0 : data.length < 0x10000 ? 2 : 8;
    const header = Buffer.alloc(2 + lengthBytes + 4);
    header[0] = (fin ? 0x80 : 0) | opcode;
    if (lengthBytes === 0) header[1] = 0x80 | data.length;
    else if (lengthBytes === 2) {
      header[1] = 0x80 | 126;
      header.writeUInt16BE(data.length, 2);
    } else {
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(data.length), 2);
    }
    mask.copy(header, 2 + lengthBytes);
    const masked = Buffer.alloc(data.length);
    for (let i = 0; i < data.length; i++) masked[i] = data[i] ^ mask[i & 3];
    return Buffer.concat([header, masked]);
  }

  /** Waits for the welcome frame and returns its wsId. */
  async welcome(timeoutMs = 2000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.json().length === 0) {
      if (Date.now() > deadline) throw new Error(`no welcome frame within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const welcome = this.json()[0];
    if (welcome.op !== 'welcome') throw new Error(`the first frame is not a welcome: ${JSON.stringify(welcome)}`);
    return welcome.wsId as string;
  }

  /** The JSON text frames received so far. */
  json(): Record<string, unknown>[] {
    return this.frames.filter((f) => f.opcode === 0x1).map((f) => JSON.parse(f.payload.toString()) as Record<string, unknown>);
  }

  private take(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.buffer.length < 2) return;
      let length = this.buffer[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffer.length < 4) return;
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.buffer.length < 10) return;
        length = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffer.length < offset + length) return;
      const frame = { opcode: this.buffer[0] & 0x0f, payload: this.buffer.subarray(offset, offset + length) };
      this.buffer = this.buffer.subarray(offset + length);
      this.frames.push(frame);
      if (frame.opcode === 0x8) {
        if (frame.payload.length >= 2) this.closeCode = frame.payload.readUInt16BE(0);
        // answer the close handshake as a well-behaved client would
        if (!this.socket.writableEnded) {
          this.sendFrame(0x8, frame.payload.subarray(0, 2));
          this.socket.end();
        }
      }
    }
  }
}
