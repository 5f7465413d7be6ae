/**
 * A latency histogram in microseconds: exact below 1,024 µs, then 512 buckets
 * per power of two (under 0.2% error), so recording is a few integer operations
 * and no allocation. Histograms from several processes merge by adding counts.
 */
const LINEAR = 1024;
const SUB_BUCKETS = 512;
const SUB_BITS = 9;
/** Values up to 2^32 µs (71 minutes); larger ones land in the last bucket. */
const BUCKETS = LINEAR + (32 - 10) * SUB_BUCKETS;

function bucketOf(us: number): number {
  if (us < LINEAR) return us < 0 ? 0 : us | 0;
  if (us >= 0xffffffff) return BUCKETS - 1;
  const v = us >>> 0;
  const shift = 31 - Math.clz32(v) - SUB_BITS;
  return LINEAR + (shift - 1) * SUB_BUCKETS + ((v >>> shift) - SUB_BUCKETS);
}

/** The smallest value a bucket holds. */
function lowestIn(bucket: number): number {
  if (bucket < LINEAR) return bucket;
  const shift = Math.floor((bucket - LINEAR) / SUB_BUCKETS) + 1;
  const mantissa = ((bucket - LINEAR) % SUB_BUCKETS) + SUB_BUCKETS;
  return mantissa * 2 ** shift;
}

export class Histogram {
  readonly counts = new Uint32Array(BUCKETS);
  total = 0;
  max = 0;

  record(us: number): void {
    this.counts[bucketOf(us)]++;
    this.total++;
    if (us > this.max) this.max = us;
  }

  /** Sparse form for sending between processes: [bucket, count] pairs. */
  toSparse(): { pairs: number[]; max: number } {
    const pairs: number[] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i] !== 0) pairs.push(i, this.counts[i]);
    return { pairs, max: this.max };
  }

  addSparse(sparse: { pairs: number[]; max: number }): void {
    for (let i = 0; i < sparse.pairs.length; i += 2) {
      this.counts[sparse.pairs[i]] += sparse.pairs[i + 1];
      this.total += sparse.pairs[i + 1];
    }
    if (sparse.max > this.max) this.max = sparse.max;
  }

  /** The value at quantile q (0..1), as the low edge of its bucket; the exact maximum for q = 1. */
  quantile(q: number): number {
    if (this.total === 0) return NaN;
    if (q >= 1) return this.max;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(lowestIn(i), this.max);
    }
    return this.max;
  }
}

export function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** p50, p99 and max of a histogram of µs, in ms. */
export function quantilesMs(h: Histogram): { p50: number; p99: number; max: number } {
  return { p50: round(h.quantile(0.5) / 1000, 2), p99: round(h.quantile(0.99) / 1000, 2), max: round(h.quantile(1) / 1000, 2) };
}
