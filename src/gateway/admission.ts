/**
 * Who may open a connection: at most so many per node, per address and per
 * user, and new ones from one address at a limited rate (a token bucket
 * holding 5 s worth, so a page of tabs reconnecting at once is not refused).
 *
 * An address is also held to the per-address limit in TCP connections that
 * have not finished their WebSocket handshake, counted from the moment they
 * are accepted: a client that opens sockets and sends nothing (or half a
 * request) cannot hold more than that many open, whatever the limits above.
 *
 * Addresses are counted by addressGroup: an IPv6 client by its /64.
 */
import { addressGroup } from './address-group.js';
import { takeToken, tokensAt, type RateBucket } from './rate-bucket.js';

export interface AdmissionLimits {
  /** 0 means no limit, for each. */
  maxConnections: number;
  maxConnectionsPerIp: number;
  connectRatePerIp: number;
  /** Connections of one user (a token's `sub`) on this node; anonymous ones are not counted. */
  maxConnectionsPerUser: number;
}

export type Refusal = { status: 503 | 429; reason: string; limit: 'maxConnections' | 'maxConnectionsPerIp' | 'connectRatePerIp' | 'maxConnectionsPerUser' };

/** Its connect-rate budget, as a rate bucket. */
interface PerAddress extends RateBucket {
  connections: number;
  /** Accepted TCP connections not admitted (yet) as WebSocket connections. */
  handshakes: number;
}

const BURST_SECONDS = 5;

export class Admission {
  private readonly addresses = new Map<string, PerAddress>();
  /** Connections each user holds here; a user with none has no entry. */
  private readonly users = new Map<string, number>();
  private total = 0;

  constructor(private readonly limits: AdmissionLimits) {}

  /** False when neither per-address limit is on: accepted TCP connections need not be counted. */
  get countsHandshakes(): boolean {
    return this.limits.maxConnectionsPerIp > 0 || this.limits.connectRatePerIp > 0;
  }

  /**
   * A TCP connection from `address` was accepted, before any byte of it was
   * read: it counts as a handshake in progress until `closeHandshake`, and takes
   * its connect-rate token now (`rated` false: none was left, its upgrade is to
   * be refused). A refusal: the address holds its limit of handshakes, close the socket.
   */
  openHandshake(address: string, now = Date.now()): Refusal | { rated: boolean } {
    const limit = this.limits.maxConnectionsPerIp;
    const entry = this.entry(address, now);
    if (limit > 0 && entry.handshakes >= limit) {
      return { status: 429, reason: `your address holds its limit of ${limit} unfinished handshakes`, limit: 'maxConnectionsPerIp' };
    }
    entry.handshakes++;
    return { rated: this.takeToken(entry, now) };
  }

  closeHandshake(address: string): void {
    const entry = this.addresses.get(addressGroup(address));
    if (entry !== undefined) entry.handshakes--;
  }

  /**
   * Counts the connection in, or says why it is refused. Every admitted
   * connection must be released once. `rated` says whether its TCP connection
   * got its rate token (`openHandshake`); undefined: it was not counted there
   * (it came through a trusted proxy), so the token is taken now.
   */
  admit(address: string, now = Date.now(), rated?: boolean): Refusal | undefined {
    const { maxConnections, maxConnectionsPerIp, connectRatePerIp } = this.limits;
    if (maxConnections > 0 && this.total >= maxConnections) {
      return { status: 503, reason: `this node holds its limit of ${maxConnections} connections: try again later`, limit: 'maxConnections' };
    }
    const entry = this.entry(address, now);
    if (maxConnectionsPerIp > 0 && entry.connections >= maxConnectionsPerIp) {
      return { status: 429, reason: `your address holds its limit of ${maxConnectionsPerIp} connections`, limit: 'maxConnectionsPerIp' };
    }
    if (!(rated ?? this.takeToken(entry, now))) {
      return { status: 429, reason: `too many new connections from your address (limit ${connectRatePerIp} per second): retry with backoff`, limit: 'connectRatePerIp' };
    }
    entry.connections++;
    this.total++;
    return undefined;
  }

  release(address: string): void {
    const entry = this.addresses.get(addressGroup(address));
    if (entry === undefined) return;
    entry.connections--;
    this.total--;
  }

  /**
   * Counts a connection of the user in, or refuses it when the user already
   * holds the limit here: the new connection is refused, never an older one.
   * Every admitted user connection must be released once (`releaseUser`).
   */
  admitUser(uid: string): Refusal | undefined {
    const limit = this.limits.maxConnectionsPerUser;
    // without a limit nothing is counted, and releaseUser finds no entry
    if (limit === 0) return undefined;
    const held = this.users.get(uid) ?? 0;
    if (held >= limit) {
      return { status: 429, reason: `the token's user holds its limit of ${limit} connections on this node`, limit: 'maxConnectionsPerUser' };
    }
    this.users.set(uid, held + 1);
    return undefined;
  }

  releaseUser(uid: string): void {
    const held = this.users.get(uid);
    if (held === undefined) return;
    if (held > 1) this.users.set(uid, held - 1);
    else this.users.delete(uid);
  }

  /** Forgets addresses with no connection and no handshake whose rate budget has refilled, so the table holds only addresses in use. */
  sweep(now = Date.now()): void {
    const rate = this.limits.connectRatePerIp;
    const full = rate * BURST_SECONDS;
    for (const [address, entry] of this.addresses) {
      const idle = entry.connections === 0 && entry.handshakes === 0;
      if (idle && tokensAt(entry, now, rate, full) >= full) this.addresses.delete(address);
    }
  }

  private entry(address: string, now: number): PerAddress {
    const group = addressGroup(address);
    let entry = this.addresses.get(group);
    if (entry === undefined) {
      entry = { connections: 0, handshakes: 0, rateTokens: this.limits.connectRatePerIp * BURST_SECONDS, rateRefilledAt: now };
      this.addresses.set(group, entry);
    }
    return entry;
  }

  /** Takes one token from the address's rate budget; false when it is spent (always true without a rate limit). */
  private takeToken(entry: PerAddress, now: number): boolean {
    const rate = this.limits.connectRatePerIp;
    return rate === 0 || takeToken(entry, now, rate, rate * BURST_SECONDS);
  }
}
