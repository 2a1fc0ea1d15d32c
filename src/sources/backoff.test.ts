import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelayMs } from './backoff.ts';

describe('backoffDelayMs', () => {
  const options = { initialDelayMs: 100, maxDelayMs: 5000, factor: 2, jitterRatio: 0.5 };

  it('doubles from the initial delay and stops at the cap without jitter', () => {
    const noJitter = { ...options, jitterRatio: 0 };
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelayMs(a, noJitter))).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    expect(backoffDelayMs(10_000, noJitter)).toBe(5000);
  });

  it('jitter only shortens a delay, by at most jitterRatio', () => {
    expect(backoffDelayMs(3, options, () => 0)).toBe(800);
    expect(backoffDelayMs(3, options, () => 0.999999)).toBe(400);
    expect(backoffDelayMs(20, options, () => 0.5)).toBe(3750);
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelayMs(i % 12, options);
      const nominal = Math.min(5000, 100 * 2 ** (i % 12));
      expect(delay).toBeGreaterThanOrEqual(nominal / 2);
      expect(delay).toBeLessThanOrEqual(nominal);
    }
  });

  it('spreads the delays of cameras failing together', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelayMs(4, options)));
    expect(delays.size).toBeGreaterThan(10);
  });
});

describe('Backoff', () => {
  it('counts failures and starts over after reset', () => {
    const backoff = new Backoff({ initialDelayMs: 10, maxDelayMs: 1000, jitterRatio: 0 });
    expect([backoff.nextDelayMs(), backoff.nextDelayMs(), backoff.nextDelayMs()]).toEqual([10, 20, 40]);
    expect(backoff.attempts).toBe(3);
    backoff.reset();
    expect(backoff.attempts).toBe(0);
    expect(backoff.nextDelayMs()).toBe(10);
  });
});
