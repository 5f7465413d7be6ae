/**
 * Peer: the bare `ws` loop. The `ws` library does the handshake and reads
 * client frames; a push builds its WebSocket frame once and writes that
 * buffer to every member's socket, one write per socket per message. It
 * speaks roomcast's frames (welcome with wsId, PING/PONG, pushes) behind the
 * same HTTP API, so the bench clients treat it exactly like roomcast.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { PONG_FRAME, pushFrame, welcomeFrame } from '../../src/protocol/frames.js';
import { encodeTextFrame } from '../../src/protocol/ws-frame.js';
import { createApiServer, readPeerFlags, Sequences, servePeer, type PeerBackend } from './peer-api.js';

interface Member {
  socket: Duplex;
  rooms: Set<string>;
}

const WS_PATH = '/connect';

const flags = readPeerFlags(process.argv.slice(2));
const members = new Map<string, Member>();
const rooms = new Map<string, Set<Member>>();
const seqs = new Sequences();
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
const gateway = createServer();

gateway.on('upgrade', (req, socket: Duplex, head: Buffer) => {
  socket.on('error', () => socket.destroy());
  wss.handleUpgrade(req, socket, head, (ws) => {
    const wsId = randomUUID();
    const member: Member = { socket, rooms: new Set() };
    members.set(wsId, member);
    ws.on('message', (data: Buffer) => {
      if (data.includes('"PING"')) ws.send(PONG_FRAME);
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      members.delete(wsId);
      for (const room of member.rooms) rooms.get(room)?.delete(member);
    });
    ws.send(welcomeFrame({ wsId, heartbeatMs: 0 }));
  });
});

function broadcast(to: Iterable<Member>, frame: Buffer): void {
  for (const member of to) member.socket.write(frame);
}

const backend: PeerBackend = {
  pushAll(tag, val) {
    const seq = seqs.next('*');
    broadcast(members.values(), encodeTextFrame(pushFrame(tag, val, undefined, seq)));
    return seq;
  },
  pushRoom(room, tag, val) {
    const seq = seqs.next(room);
    const to = rooms.get(room);
    if (to !== undefined) broadcast(to, encodeTextFrame(pushFrame(tag, val, room, seq)));
    return seq;
  },
  join(room, wsId) {
    const member = members.get(wsId);
    if (member === undefined) return undefined;
    if (member.rooms.has(room)) return false;
    member.rooms.add(room);
    let set = rooms.get(room);
    if (set === undefined) rooms.set(room, (set = new Set()));
    set.add(member);
    return true;
  },
};

await servePeer('ws', flags, gateway, createApiServer(backend), WS_PATH, () => undefined);
