/** The flags of bench/soak.ts (node:util parseArgs options), apart so the docs test knows them without running a soak. */
export const SOAK_OPTIONS = {
  seconds: { type: 'string', default: '180' },
  clients: { type: 'string', default: '200' },
  rooms: { type: 'string', default: '20' },
  seed: { type: 'string' },
  'max-actions': { type: 'string', default: '100000' },
  out: { type: 'string' },
  // keeps every process up the whole run (CLIENT KILL still happens), so the memory check sees each gateway's whole run
  'no-process-kills': { type: 'boolean', default: false },
  // redis: a redis-server and separate gateway/logic processes (or `roomcast start --workers N`); memory: one `roomcast start`, no Redis, no kills
  engine: { type: 'string', default: 'redis' },
  workers: { type: 'string', default: '0' },
  // optional: half the clients connect with a token of one of a few users, and the soak also pushes to users
  auth: { type: 'string', default: 'off' },
} as const;
