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
} as const;
