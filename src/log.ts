import { destination, pino, stdSerializers, type Logger } from 'pino';

/**
 * JSON logs on stdout, each line written as it is logged. Not pino's default
 * buffered stdout: at exit it flushes its queue with a loop that retries a
 * failed write without end, so a process whose stdout reader was gone (EPIPE)
 * hung in exit, deaf to SIGTERM. A line that cannot be written is dropped
 * (after EPIPE, every later one): logging never stops or crashes the server.
 *
 * An error's cause is logged as its own `err.cause`, not appended to
 * `err.message` (pino's default): roomcast's messages already name their cause.
 */
export function createLogger(level: string): Logger {
  const stdout = destination({ dest: 1, sync: true });
  stdout.on('error', () => undefined);
  return pino(
    {
      name: 'roomcast',
      level,
      serializers: { err: stdSerializers.errWithCause },
      redact: { paths: ['apiKey', '*.apiKey', 'config.apiKey', 'token', '*.token', 'headers.authorization'], censor: '[redacted]' },
    },
    stdout,
  );
}
