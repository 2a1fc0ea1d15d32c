/** Frames per second over the last few frames (at most `window`), 0 when the newest is older than maxAgeMs. */
export class FpsMeter {
  private readonly times: Float64Array;
  private count = 0;

  constructor(
    private readonly window = 32,
    private readonly maxAgeMs = 5000,
  ) {
    this.times = new Float64Array(window);
  }

  /** Records one frame at nowMs (epoch or monotonic, as long as it is consistent). */
  tick(nowMs: number = Date.now()): void {
    this.times[this.count++ % this.window] = nowMs;
  }

  fps(nowMs: number = Date.now()): number {
    const n = Math.min(this.count, this.window);
    if (n < 2) return 0;
    const newest = this.times[(this.count - 1) % this.window]!;
    const oldest = this.times[(this.count - n) % this.window]!;
    if (nowMs - newest > this.maxAgeMs || newest <= oldest) return 0;
    return Math.round(((n - 1) * 10_000) / (newest - oldest)) / 10;
  }
}
