/** What the frames each connection received add up to, against what each should have received. */

export interface FrameTally {
  /** Frames that count: per connection, at most as many as it should have received. */
  deliveries: number;
  /** Frames beyond that, over every connection (frames of another room). */
  extra: number;
}

/** `received[i]` against `expectedFor(i)`, for each connection i. */
export function tallyFrames(received: readonly number[], expectedFor: (i: number) => number): FrameTally {
  let deliveries = 0;
  let extra = 0;
  received.forEach((frames, i) => {
    const expected = expectedFor(i);
    deliveries += Math.min(frames, expected);
    extra += Math.max(0, frames - expected);
  });
  return { deliveries, extra };
}
