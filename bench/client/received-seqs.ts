/**
 * The `seq`s one bench connection has received. Every scenario puts a
 * connection on exactly one stream (its one room, or `*`), whose frames carry
 * consecutive seqs in the order the server sends them, so a seq seen before
 * is a duplicate and one lower than the highest seen arrived out of order.
 * A bitmap, grown by doubling: nothing is allocated per frame.
 */

/** How a frame's seq relates to those received before it on its connection. */
export const SeqOutcome = {
  /** Not seen before, and higher than every seq seen before. */
  InOrder: 0,
  /** Not seen before, but lower than one seen before: it arrived after a later frame. */
  Late: 1,
  Duplicate: 2,
} as const;
export type SeqOutcome = (typeof SeqOutcome)[keyof typeof SeqOutcome];

/** Seqs this far from the first one are not tracked (a broken server's wild seq): counted as late. */
const MAX_SPAN = 1 << 24;

export class ReceivedSeqs {
  /** The seq of bit 0; a multiple of 8, so growing at the front moves whole bytes. */
  private base = 0;
  private bits = new Uint8Array(0);
  private top = -1;

  /** The highest seq received, -1 before the first. */
  get highest(): number {
    return this.top;
  }

  /** Every seq received, lowest first. */
  list(): number[] {
    const seqs: number[] = [];
    for (let byte = 0; byte < this.bits.length; byte++) {
      if (this.bits[byte] === 0) continue;
      for (let bit = 0; bit < 8; bit++) if ((this.bits[byte] & (1 << bit)) !== 0) seqs.push(this.base + byte * 8 + bit);
    }
    return seqs;
  }

  add(seq: number): SeqOutcome {
    if (this.top === -1) this.base = seq - (seq % 8);
    if (seq < this.base) {
      if (this.base - seq >= MAX_SPAN) return SeqOutcome.Late;
      this.growFront(seq);
    }
    const index = seq - this.base;
    if (index >= MAX_SPAN) return SeqOutcome.Late;
    if (index >= this.bits.length * 8) this.growBack(index);
    const byte = index >>> 3;
    const bit = 1 << (index & 7);
    if ((this.bits[byte] & bit) !== 0) return SeqOutcome.Duplicate;
    this.bits[byte] |= bit;
    if (seq < this.top) return SeqOutcome.Late;
    this.top = seq;
    return SeqOutcome.InOrder;
  }

  private growBack(index: number): void {
    const bytes = Math.max(8, this.bits.length * 2, (index >>> 3) + 1);
    const grown = new Uint8Array(bytes);
    grown.set(this.bits);
    this.bits = grown;
  }

  private growFront(seq: number): void {
    const base = seq - (seq % 8);
    const shift = (this.base - base) >>> 3;
    const grown = new Uint8Array(this.bits.length + shift);
    grown.set(this.bits, shift);
    this.bits = grown;
    this.base = base;
  }
}
