/** Makes the server close one connection as a slow consumer (4000), for tests that count such closes. */
import { call, post } from './http.js';
import { RawClient } from './raw-client.js';

const BIG_VAL = 'x'.repeat(16 * 1024);

/**
 * Connects a client that joins `room` and stops reading, then pushes 16 KB
 * messages to the room until `/stats` counts one more slow-consumer close
 * (a server with a small --send-buffer-limit gets there in a few pushes).
 * Throws if the server never closes it.
 */
export async function forceSlowConsumerClose(server: { gatewayUrl: string; logicUrl: string }, room: string, headers: Record<string, string> = {}): Promise<void> {
  const closes = async (): Promise<number> => (await call(server.logicUrl, '/stats', { headers })).body.data?.slowConsumerCloses as number;
  const before = await closes();
  const slow = await RawClient.connect(server.gatewayUrl);
  try {
    await post(server.logicUrl, '/room/join', { id: room, wsId: await slow.welcome() }, headers);
    slow.socket.pause();
    for (let i = 1; i <= 2000; i++) {
      await post(server.logicUrl, '/push/room', { val: BIG_VAL, tag: 2, id: room }, headers);
      if (i % 20 === 0 && (await closes()) > before) return;
    }
    throw new Error(`2000 pushes of 16 KB to room ${room} did not make the server close the client that stopped reading`);
  } finally {
    slow.socket.destroy();
  }
}
