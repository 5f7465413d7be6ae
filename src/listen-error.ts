import { errorMessage } from './error-message.js';

/**
 * A listen that failed because its port is taken says what to do about it, naming the flag
 * that sets that port (`--gateway-port`, `--logic-port` or `--port`); any other error is returned as it is.
 */
export function withPortHint(err: unknown, port: number, flag: string): unknown {
  if ((err as NodeJS.ErrnoException | null)?.code !== 'EADDRINUSE') return err;
  return new Error(`${errorMessage(err)}: another process holds port ${port} (a roomcast still running?): stop it, or choose another port with ${flag}`, {
    cause: err,
  });
}

/** Runs `listen`, turning a port in use into an error that names `flag`. */
export async function listenOn<T>(listen: () => Promise<T>, port: number, flag: string): Promise<T> {
  try {
    return await listen();
  } catch (err) {
    throw withPortHint(err, port, flag);
  }
}
