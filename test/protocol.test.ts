import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ws from 'ws';
import { parseClientFrame } from '../src/protocol/client-frames.js';
import { errorFrame, joinedFrame, pushFrame, replyFrame, welcomeFrame } from '../src/protocol/frames.js';
import { toRoomId } from '../src/protocol/room-id.js';
import { encodeTextFrame } from '../src/protocol/ws-frame.js';

interface WsReceiver {
  on(event: 'message', listener: (data: Buffer) => void): void;
  write(chunk: Buffer): void;
}
// ws exports its frame parser (Receiver) but @types/ws does not declare it
const { Receiver } = ws as unknown as { Receiver: new (options: { isServer: boolean; maxPayload: number }) => WsReceiver };

/** Decodes frames with the ws library's own receiver, as a client would. */
function decode(bytes: Buffer): string[] {
  const messages: string[] = [];
  const receiver = new Receiver({ isServer: false, maxPayload: 0 });
  receiver.on('message', (data: Buffer) => messages.push(data.toString()));
  receiver.write(bytes);
  return messages;
}

describe('encodeTextFrame', () => {
  for (const length of [0, 1, 125, 126, 127, 65535, 65536, 70000]) {
    it(`encodes a ${length}-byte payload that a client decodes back`, () => {
      const text = 'a'.repeat(length);
      assert.deepEqual(decode(encodeTextFrame(text)), [text]);
    });
  }

  it('counts UTF-8 bytes, not characters, in the length', () => {
    const text = '推送🚀'.repeat(50);
    assert.deepEqual(decode(encodeTextFrame(text)), [text]);
  });

  it('frames written back to back decode as separate messages', () => {
    assert.deepEqual(decode(Buffer.concat([encodeTextFrame('one'), encodeTextFrame('two')])), ['one', 'two']);
  });
});

describe('server frames', () => {
  it('are valid JSON for any val and room, including quotes, control characters and U+2028', () => {
    const val = 'he said "hi"\n\t\\ \u0000 \u2028 推送';
    assert.deepEqual(JSON.parse(pushFrame(3, val, 'r:1', 7)), { type: 3, data: val, room: 'r:1', seq: 7 });
    assert.deepEqual(JSON.parse(pushFrame(3, val)), { type: 3, data: val });
    assert.deepEqual(JSON.parse(welcomeFrame({ wsId: 'w', heartbeatMs: 10 })), { type: 0, op: 'welcome', data: 'w', wsId: 'w', heartbeat: 10 });
    assert.deepEqual(JSON.parse(joinedFrame('r', 4, 'e1')), { type: 0, op: 'joined', room: 'r', seq: 4, epoch: 'e1' });
    assert.deepEqual(JSON.parse(replyFrame(undefined, { ok: true })), { type: 0, op: 'reply', ok: true });
    assert.deepEqual(JSON.parse(errorFrame('x', 'bad_frame', 'm')), { type: 0, op: 'error', id: 'x', code: 'bad_frame', message: 'm' });
  });
});

describe('parseClientFrame', () => {
  const cases: [string, ReturnType<typeof parseClientFrame>][] = [
    ['{"type":1,"data":"PING"}', { kind: 'ping' }],
    ['{"type":1}', { kind: 'ping' }],
    ['{"type":3,"data":"x"}', { kind: 'ignored' }],
    ['{}', { kind: 'ignored' }],
    ['{"op":"join","room":"a","id":4}', { kind: 'membership', op: 'join', room: 'a', id: 4 }],
    ['{"op":"leave","room":12}', { kind: 'membership', op: 'leave', room: '12', id: undefined }],
    ['{"op":"join"}', { kind: 'problem', code: 'bad_request', message: 'room is required', id: undefined }],
    ['{"op":"join","room":"*"}', { kind: 'problem', code: 'bad_request', message: 'room must be a string of 1-128 characters from A-Z a-z 0-9 _ . : @ -, not "." or ".."', id: undefined }],
    ['{"op":"join","room":".."}', { kind: 'problem', code: 'bad_request', message: 'room must be a string of 1-128 characters from A-Z a-z 0-9 _ . : @ -, not "." or ".."', id: undefined }],
    ['{"op":"leave","room":"a..b"}', { kind: 'membership', op: 'leave', room: 'a..b', id: undefined }],
    ['{"op":"join","room":12345678901234567890,"id":5}', { kind: 'problem', code: 'bad_request', message: 'room is a JSON number past 2^53, which cannot be kept exactly: send it as a string', id: 5 }],
    ['{"op":"join","room":"a","id":9007199254740993}', { kind: 'problem', code: 'bad_request', message: 'id is a JSON number past 2^53, which cannot be kept exactly: send it as a string', id: undefined }],
    ['{"op":"join","room":"a","id":{}}', { kind: 'problem', code: 'bad_request', message: 'id must be an integer or a string of at most 64 characters', id: undefined }],
    ['{"op":7}', { kind: 'problem', code: 'bad_request', message: 'op must be a string', id: undefined }],
    ['{"op":"fly","id":"q"}', { kind: 'problem', code: 'unknown_op', message: 'unknown op "fly"', id: 'q' }],
    ['{"op":"auth"}', { kind: 'problem', code: 'bad_request', message: 'token is required and must be a non-empty string', id: undefined }],
    ['nope', { kind: 'problem', code: 'bad_frame', message: 'frame is not valid JSON', id: undefined }],
    ['[1]', { kind: 'problem', code: 'bad_frame', message: 'frame must be a JSON object', id: undefined }],
    ['null', { kind: 'problem', code: 'bad_frame', message: 'frame must be a JSON object', id: undefined }],
  ];
  for (const [text, expected] of cases) {
    it(`${text} -> ${expected.kind}${'code' in expected ? ` ${expected.code}` : ''}`, () => {
      assert.deepEqual(parseClientFrame(Buffer.from(text)), expected);
    });
  }  it('bytes that are not UTF-8 -> problem bad_frame', () => {
    assert.deepEqual(parseClientFrame(Buffer.from([0x7b, 0xc3, 0x7d])), { kind: 'problem', code: 'bad_frame', message: 'frame is not valid UTF-8: a binary frame must hold a JSON object in UTF-8', id: undefined });
  });
});

describe('room ids', () => {
  it('accept the seed integers and the documented characters, and nothing else', () => {
    assert.equal(toRoomId(1), '1');
    assert.equal(toRoomId('user@example.com:inbox_2.x-y'), 'user@example.com:inbox_2.x-y');
    for (const bad of ['', '*', 'a b', 'é', 'r'.repeat(129), 1.5, -0.5, null, {}, [], true]) assert.equal(toRoomId(bad), undefined, String(bad));
  });
});
