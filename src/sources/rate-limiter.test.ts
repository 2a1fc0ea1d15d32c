import { describe, expect, it } from 'vitest';
import { TokenBucket } from './rate-limiter.ts';

describe('TokenBucket', () => {
  it('allows a burst, then the rate', () => {
    let nowMs = 0;
    const bucket = new TokenBucket(10, 5, () => nowMs);
    const burst = Array.from({ length: 8 }, () => bucket.take());
    expect(burst).toEqual([true, true, true, true, true, false, false, false]);
    nowMs = 100; // one token per 100 ms
    expect([bucket.take(), bucket.take()]).toEqual([true, false]);
    nowMs = 10_000; // refills to the burst, not beyond
    expect(Array.from({ length: 7 }, () => bucket.take()).filter(Boolean)).toHaveLength(5);
  });

  it('passes about rate × seconds over a long flood', () => {
    let nowMs = 0;
    const bucket = new TokenBucket(30, 30, () => nowMs);
    let passed = 0;
    for (let i = 0; i < 10_000; i++) {
      nowMs = i; // 1000 messages a second for 10 s
      if (bucket.take()) passed++;
    }
    expect(passed).toBeGreaterThanOrEqual(325);
    expect(passed).toBeLessThanOrEqual(331);
  });
});
