/**
 * A relay in front of an HTTP server that holds back what the server answers on
 * the first connection through it for `holdMs`, then lets it go (to a client
 * that may have given up on it by then): a request made, whose answer comes too
 * late. Every later connection passes straight through.
 */
import { TcpRelay } from './tcp-relay.js';

export interface HeldAnswerRelay {
  relay: TcpRelay;
  url: string;
  /** How many connections came through the relay. */
  connections(): number;
}

export async function startHeldAnswerRelay(targetPort: number, holdMs: number): Promise<HeldAnswerRelay> {
  let connections = 0;
  const relay = await TcpRelay.start(() => targetPort, {
    answerCarrier: ({ client }) => {
      const first = ++connections === 1;
      return (chunk) => {
        if (!first) client.write(chunk);
        else setTimeout(() => client.writable && client.write(chunk), holdMs).unref();
      };
    },
  });
  return { relay, url: `http://127.0.0.1:${relay.port}`, connections: () => connections };
}
