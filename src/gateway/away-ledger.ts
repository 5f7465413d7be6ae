/**
 * The sessions this node sent away (their connection dropped, the recovery
 * window open), oldest first, and the address each came from. A client that
 * connects, joins rooms and drops, again and again, leaves a session behind
 * each time, and nothing else bounds them: so a node keeps at most
 * `--max-connections` of them, an address at most `--max-connections-per-ip`,
 * and past either the oldest one ends (it resumes as `recovered:false`, like
 * one past its window). Away sessions never refuse a connection. Addresses
 * are counted by addressGroup, as for connections: an IPv6 client by its /64.
 */
import { addressGroup } from './address-group.js';
import { SetsByKey } from '../sets-by-key.js';

export interface AwayLimits {
  /** Away sessions this node keeps (0: no limit). */
  perNode: number;
  /** Away sessions one address keeps (0: no limit). */
  perAddress: number;
}

interface Entry {
  address: string;
  /** When its recovery window closes: past it the entry is only a memory of a session that ended by itself. */
  until: number;
}

export class AwayLedger {
  /** By wsId, in the order they went away (a Map keeps insertion order): the first is the oldest. */
  private readonly entries = new Map<string, Entry>();
  /** Each address's wsIds, oldest first. */
  private readonly byAddress = new SetsByKey<string>();

  constructor(
    private readonly limits: AwayLimits,
    private readonly windowMs: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** A session went away from `address`; returns the sessions to end so both limits hold, oldest first. */
  add(wsId: string, clientAddress: string, now = Date.now()): string[] {
    const address = addressGroup(clientAddress);
    this.forgetEnded(now);
    this.delete(wsId);
    this.entries.set(wsId, { address, until: now + this.windowMs });
    this.byAddress.add(address, wsId);
    const ended: string[] = [];
    const { perNode, perAddress } = this.limits;
    const ofAddress = this.byAddress.get(address)!;
    while (perAddress > 0 && ofAddress.size > perAddress) ended.push(this.end(ofAddress.values().next().value!));
    while (perNode > 0 && this.entries.size > perNode) ended.push(this.end(this.entries.keys().next().value!));
    return ended;
  }

  /** The session was taken back on this node. */
  delete(wsId: string): void {
    const entry = this.entries.get(wsId);
    if (entry === undefined) return;
    this.entries.delete(wsId);
    this.byAddress.delete(entry.address, wsId);
  }

  private end(wsId: string): string {
    this.delete(wsId);
    return wsId;
  }

  /**
   * Entries past their window are sessions that ended by themselves: they are the oldest, at the front.
   * Run at each `add` and by the gateway's sweep, so a burst of drops is let go even when none follows.
   */
  forgetEnded(now: number): void {
    for (const [wsId, entry] of this.entries) {
      if (entry.until > now) return;
      this.delete(wsId);
    }
  }
}
