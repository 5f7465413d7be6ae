import { pino, type Logger } from 'pino';

/** JSON logs on stdout. Secrets are redacted wherever they would appear. */
export function createLogger(level: string): Logger {
  return pino({
    name: 'roomcast',
    level,
    redact: { paths: ['apiKey', '*.apiKey', 'config.apiKey', 'token', '*.token', 'headers.authorization'], censor: '[redacted]' },
  });
}
