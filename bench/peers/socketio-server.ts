/**
 * Peer: Socket.IO 4.8 with the WebSocket transport only, behind the same HTTP
 * API as roomcast. A push is one `io.to(room).emit('push', frame)`, which
 * Socket.IO encodes once and writes to every member.
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { createApiServer, readPeerFlags, Sequences, servePeer, type PeerBackend } from './peer-api.js';

const flags = readPeerFlags(process.argv.slice(2));
const gateway = createServer();
const io = new Server(gateway, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });
const seqs = new Sequences();

const backend: PeerBackend = {
  pushAll(tag, val) {
    const seq = seqs.next('*');
    io.emit('push', { type: tag, data: val, seq });
    return seq;
  },
  pushRoom(room, tag, val) {
    const seq = seqs.next(room);
    io.to(room).emit('push', { type: tag, data: val, room, seq });
    return seq;
  },
  join(room, wsId) {
    const socket = io.sockets.sockets.get(wsId);
    if (socket === undefined) return undefined;
    const changed = !socket.rooms.has(room);
    void socket.join(room);
    return changed;
  },
};

await servePeer('socket.io', flags, gateway, createApiServer(backend), '/socket.io/', () => io.close());
