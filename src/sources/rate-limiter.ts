/**
 * A token bucket: `ratePerSecond` tokens a second, holding at most `burst`. take() is false when
 * the bucket is empty; the caller drops the work (and counts it) rather than queueing it.
 */
export class TokenBucket {
  private tokens: number;
  private lastRefillMs: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number = ratePerSecond,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.lastRefillMs = nowMs();
  }

  take(): boolean {
    const now = this.nowMs();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.lastRefillMs) * this.ratePerSecond) / 1000);
    this.lastRefillMs = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
