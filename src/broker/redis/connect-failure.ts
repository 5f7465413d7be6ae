/**
 * Why a start could not reach Redis, from the errors its connections met. The
 * client's own words are kept, but two of them do not say what is wrong: a
 * server that answers with something other than Redis replies (an HTTP port,
 * say) first fails to decode and then is left, and a TLS port named with
 * redis:// closes the connection; both end as "Socket closed unexpectedly".
 * A Redis older than 6 refuses the client's first command, HELLO.
 */
import { SocketClosedUnexpectedlyError } from 'redis';
import { REDIS_VERSION_NEEDED } from './server-version.js';
import { errorMessage } from '../../error-message.js';

const NOT_REDIS = /^Unknown RESP type \d+ "(.*)"$/s;
const NO_HELLO = /^ERR unknown command [`']HELLO[`']/i;

/** `errors`: what the connections met, oldest first; `timeout`: the start's own deadline error, when they met none. */
export function connectFailure(errors: readonly unknown[], timeout: unknown, where: string, tls: boolean): string {
  const notRedis = errors.map(errorMessage).map((message) => NOT_REDIS.exec(message)).find((match) => match !== null);
  if (notRedis) return `the server there does not answer as Redis does (its answer began with ${JSON.stringify(notRedis[1])}): is ${where} the port of a Redis server?`;
  const last = errors.at(-1) ?? timeout;
  const message = errorMessage(last);
  if (NO_HELLO.test(message)) return `the server does not know the HELLO command (${message}), so it is older than Redis 6, and ${REDIS_VERSION_NEEDED}`;
  if (last instanceof SocketClosedUnexpectedlyError) {
    const tlsHint = tls ? '' : ', and does it want TLS (rediss://)';
    return `the server closed the connection without answering (${message}): is it a Redis server${tlsHint}?`;
  }
  return message;
}
