/**
 * Just enough of the Redis wire format (RESP2 and RESP3) for a relay to follow
 * a connection: where each command a client sends ends, and where each reply
 * Redis sends back ends and whether it is an error.
 */

/** A whole command (its words, as latin1 text) and the offset just past it; undefined while incomplete. */
function readCommand(buf: Buffer, at: number): { words: string[]; end: number } | undefined {
  const head = readLine(buf, at);
  if (head === undefined) return undefined;
  if (buf[at] !== 0x2a /* '*' */) throw new Error(`not a RESP command: ${JSON.stringify(buf.toString('latin1', at, head.end))}`);
  const words: string[] = [];
  let end = head.end;
  for (let i = 0; i < Number(head.text); i++) {
    const length = readLine(buf, end);
    if (length === undefined || buf.length < length.end + Number(length.text) + 2) return undefined;
    words.push(buf.toString('latin1', length.end, length.end + Number(length.text)));
    end = length.end + Number(length.text) + 2;
  }
  return { words, end };
}

/** Takes the whole commands (their words) off the front of `buf`; returns them and what is left, an incomplete command. */
export function readCommands(buf: Buffer): { commands: string[][]; rest: Buffer } {
  const commands: string[][] = [];
  let at = 0;
  for (let command = readCommand(buf, at); command !== undefined; command = readCommand(buf, at)) {
    commands.push(command.words);
    at = command.end;
  }
  return { commands, rest: buf.subarray(at) };
}

/** Kinds of reply: an answer to a command (an error or not), or a push Redis sends on its own (RESP3). */
export type ReplyKind = 'answer' | 'error' | 'push';

/** A whole reply, its kind and the offset just past it; undefined while incomplete. */
export function readReply(buf: Buffer, at: number): { kind: ReplyKind; end: number } | undefined {
  const type = String.fromCharCode(buf[at]);
  const end = skipValue(buf, at);
  if (end === undefined) return undefined;
  // an attribute comes before the reply it annotates
  if (type === '|') return readReply(buf, end);
  return { kind: type === '-' || type === '!' ? 'error' : type === '>' ? 'push' : 'answer', end };
}

/** The offset just past the value at `at`; undefined while incomplete. */
function skipValue(buf: Buffer, at: number): number | undefined {
  const line = readLine(buf, at);
  if (line === undefined) return undefined;
  const type = String.fromCharCode(buf[at]);
  const count = Number(line.text);
  if ('$!='.includes(type)) {
    if (count < 0) return line.end;
    return buf.length < line.end + count + 2 ? undefined : line.end + count + 2;
  }
  if ('*~>%|'.includes(type)) {
    let end: number | undefined = line.end;
    const values = count < 0 ? 0 : '%|'.includes(type) ? count * 2 : count;
    for (let i = 0; i < values && end !== undefined; i++) end = skipValue(buf, end);
    return end;
  }
  if ('+-:,#_('.includes(type)) return line.end;
  throw new Error(`unknown RESP type ${JSON.stringify(type)}`);
}

/** The text after the type byte up to CRLF, and the offset just past the CRLF. */
function readLine(buf: Buffer, at: number): { text: string; end: number } | undefined {
  if (at >= buf.length) return undefined;
  const crlf = buf.indexOf('\r\n', at, 'latin1');
  return crlf === -1 ? undefined : { text: buf.toString('latin1', at + 1, crlf), end: crlf + 2 };
}
