/** Exponential backoff with jitter, capped: how long a source waits before reconnecting. */

export interface BackoffOptions {
  /** Delay before the first retry, in milliseconds. */
  initialDelayMs: number;
  /** Longest delay, in milliseconds; reached after a few failures and kept. */
  maxDelayMs: number;
  /** Growth per failure. */
  factor?: number;
  /** Fraction of the delay randomised away (0 = none, 0.5 = delays in [50%, 100%] of the nominal one). */
  jitterRatio?: number;
}

/**
 * The delay before retry number `attempt` (0 = the first retry): initialDelayMs × factor^attempt,
 * capped at maxDelayMs, then reduced by up to jitterRatio at random so that many cameras failing
 * together (a switch reboot) do not reconnect in lockstep.
 */
export function backoffDelayMs(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const factor = options.factor ?? 2;
  const jitterRatio = Math.min(1, Math.max(0, options.jitterRatio ?? 0.3));
  // Math.min before the power would overflow to Infinity for huge attempt counts; clamp the exponent.
  const exponent = Math.min(Math.max(0, attempt), 64);
  const nominalMs = Math.min(options.maxDelayMs, options.initialDelayMs * factor ** exponent);
  return Math.round(nominalMs * (1 - jitterRatio * random()));
}

/** Counts consecutive failures and hands out their delays; reset() after a success. */
export class Backoff {
  private failures = 0;

  constructor(
    private readonly options: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next retry; counts one more failure. */
  nextDelayMs(): number {
    return backoffDelayMs(this.failures++, this.options, this.random);
  }

  /** Consecutive failures so far. */
  get attempts(): number {
    return this.failures;
  }

  reset(): void {
    this.failures = 0;
  }
}
