/**
 * A TCP server that answers as an old Redis does, for what node-redis sends
 * when it connects (HELLO 3 SETNAME, CLIENT SETINFO, CLIENT MAINT_NOTIFICATIONS)
 * and INFO server: enough for a start to reach its version check, and no
 * more. Any other command is answered "unknown command", so a start that does
 * not check the version fails some other way.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { readCommands } from './resp.js';

export interface OldRedis {
  port: number;
  /** Every command received, as its words. */
  commands: string[][];
  close(): Promise<void>;
}

function simple(text: string): string {
  return `+${text}\r\n`;
}

function bulk(text: string): string {
  return `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
}

/** RESP3 HELLO's answer: a map of the server's description. */
function helloReply(version: string): string {
  const fields: [string, string][] = [
    ['server', simple('redis')],
    ['version', simple(version)],
    ['proto', ':3\r\n'],
    ['id', ':1\r\n'],
    ['mode', simple('standalone')],
    ['role', simple('master')],
    ['modules', '*0\r\n'],
  ];
  return `%${fields.length}\r\n${fields.map(([name, value]) => simple(name) + value).join('')}`;
}

/** `helloKnown: false`: a Redis older than 6, which answers HELLO "unknown command". */
export async function startOldRedis(version: string, helloKnown = true): Promise<OldRedis> {
  const commands: string[][] = [];
  const sockets = new Set<Socket>();
  const answer = (words: string[]): string => {
    const name = words[0].toUpperCase();
    if (name === 'HELLO' && helloKnown) return helloReply(version);
    if (name === 'INFO') return bulk(`# Server\r\nredis_version:${version}\r\nredis_mode:standalone\r\n`);
    if (name === 'PING') return simple('PONG');
    // as Redis 5 and 6 word it
    return `-ERR unknown command \`${words[0]}\`, with args beginning with: ${words.slice(1).map((word) => `\`${word}\`, `).join('')}\r\n`;
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      const parsed = readCommands(Buffer.concat([pending, chunk]));
      pending = parsed.rest;
      for (const words of parsed.commands) {
        commands.push(words);
        socket.write(answer(words));
      }
    });
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    commands,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}
