/**
 * Who may open a connection: at most so many per node and per address, and
 * new ones from one address at a limited rate (a token bucket holding 5 s
 * worth, so a page of tabs reconnecting at once is not refused).
 */
export interface AdmissionLimits {
  /** 0 means no limit, for each. */
  maxConnections: number;
  maxConnectionsPerIp: number;
  connectRatePerIp: number;
}

export type Refusal = { status: 503 | 429; reason: string; limit: 'maxConnections' | 'maxConnectionsPerIp' | 'connectRatePerIp' };

interface PerAddress {
  connections: number;
  tokens: number;
  refilledAt: number;
}

const BURST_SECONDS = 5;

export class Admission {
  private readonly addresses = new Map<string, PerAddress>();
  private total = 0;

  constructor(private readonly limits: AdmissionLimits) {}

  /** Counts the connection in, or says why it is refused. Every admitted connection must be released once. */
  admit(address: string, now = Date.now()): Refusal | undefined {
    const { maxConnections, maxConnectionsPerIp, connectRatePerIp } = this.limits;
    if (maxConnections > 0 && this.total >= maxConnections) {
      return { status: 503, reason: `this node holds its limit of ${maxConnections} connections: try again later`, limit: 'maxConnections' };
    }
    let entry = this.addresses.get(address);
    if (entry === undefined) {
      entry = { connections: 0, tokens: connectRatePerIp * BURST_SECONDS, refilledAt: now };
      this.addresses.set(address, entry);
    }
    if (maxConnectionsPerIp > 0 && entry.connections >= maxConnectionsPerIp) {
      return { status: 429, reason: `your address holds its limit of ${maxConnectionsPerIp} connections`, limit: 'maxConnectionsPerIp' };
    }
    if (connectRatePerIp > 0) {
      entry.tokens = Math.min(connectRatePerIp * BURST_SECONDS, entry.tokens + ((now - entry.refilledAt) / 1000) * connectRatePerIp);
      entry.refilledAt = now;
      if (entry.tokens < 1) {
        return { status: 429, reason: `too many new connections from your address (limit ${connectRatePerIp} per second): retry with backoff`, limit: 'connectRatePerIp' };
      }
      entry.tokens -= 1;
    }
    entry.connections++;
    this.total++;
    return undefined;
  }

  release(address: string): void {
    const entry = this.addresses.get(address);
    if (entry === undefined) return;
    entry.connections--;
    this.total--;
  }

  /** Forgets addresses with no connection whose rate budget has refilled, so the table holds only addresses in use. */
  sweep(now = Date.now()): void {
    const full = this.limits.connectRatePerIp * BURST_SECONDS;
    for (const [address, entry] of this.addresses) {
      if (entry.connections === 0 && entry.tokens + ((now - entry.refilledAt) / 1000) * this.limits.connectRatePerIp >= full) this.addresses.delete(address);
    }
  }
}
