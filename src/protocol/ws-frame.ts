/**
 * Encodes server-to-client WebSocket frames (RFC 6455 §5.2). Server frames are
 * never masked, so one encoded frame is valid for every recipient: fan-out
 * builds it once and writes the same bytes to each member's socket.
 */
const OPCODE_TEXT = 0x1;
const FIN = 0x80;

function headerLength(payloadLength: number): number {
  if (payloadLength < 126) return 2;
  if (payloadLength < 0x10000) return 4;
  return 10;
}

function writeHeader(frame: Buffer, payloadLength: number): number {
  frame[0] = FIN | OPCODE_TEXT;
  if (payloadLength < 126) {
    frame[1] = payloadLength;
    return 2;
  }
  if (payloadLength < 0x10000) {
    frame[1] = 126;
    frame.writeUInt16BE(payloadLength, 2);
    return 4;
  }
  frame[1] = 127;
  frame.writeUInt32BE(Math.floor(payloadLength / 0x100000000), 2);
  frame.writeUInt32BE(payloadLength >>> 0, 6);
  return 10;
}

/** One final text frame carrying `text` as UTF-8, in a single buffer. */
export function encodeTextFrame(text: string): Buffer {
  const payloadLength = Buffer.byteLength(text);
  const offset = headerLength(payloadLength);
  const frame = Buffer.allocUnsafe(offset + payloadLength);
  writeHeader(frame, payloadLength);
  frame.write(text, offset, 'utf8');
  return frame;
}
