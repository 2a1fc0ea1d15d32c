import type { Frame, FrameSink } from './frame.ts';

export interface LatestFrameSlotOptions {
  /** Highest rate at which frames are handed out, frames per second; 0 or undefined = no limit. */
  maxFps?: number;
  /** Monotonic clock in ms; injectable for tests. */
  nowMs?: () => number;
}

export interface LatestFrameSlotCounters {
  /** Frames given to offer(). */
  offered: number;
  /** Frames handed out by next(). */
  taken: number;
  /** Frames replaced by a newer one before being taken, offered after close, or pending at close. */
  dropped: number;
}

interface Waiter {
  resolve: (frame: Frame | undefined) => void;
  detach: () => void;
}

/**
 * Holds at most one pending frame per camera: a newer frame replaces the pending one (which is
 * counted as dropped), so memory stays flat however fast frames arrive. next() hands frames out
 * no faster than maxFps; frames arriving while the consumer waits out that interval just replace
 * the pending one.
 */
export class LatestFrameSlot implements FrameSink {
  private pendingFrame: Frame | undefined;
  private readonly waiters: Waiter[] = [];
  private minIntervalMs: number;
  private lastTakenAtMs = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private isClosed = false;
  private readonly nowMs: () => number;
  private readonly count: LatestFrameSlotCounters = { offered: 0, taken: 0, dropped: 0 };

  constructor(options: LatestFrameSlotOptions = {}) {
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.minIntervalMs = intervalMsFor(options.maxFps);
  }

  /** Replaces any pending frame with this one. Never blocks. */
  offer(frame: Frame): void {
    this.count.offered++;
    if (this.isClosed) {
      this.count.dropped++;
      return;
    }
    if (this.pendingFrame !== undefined) this.count.dropped++;
    this.pendingFrame = frame;
    this.pump();
  }

  /**
   * Waits for the next frame (no sooner than 1/maxFps after the previous one was taken).
   * Resolves undefined when the slot is closed or the signal aborts.
   */
  next(signal?: AbortSignal): Promise<Frame | undefined> {
    if (this.isClosed || signal?.aborted) return Promise.resolve(undefined);
    return new Promise<Frame | undefined>((resolve) => {
      const onAbort = (): void => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        if (this.waiters.length === 0) this.clearTimer();
        resolve(undefined);
      };
      const waiter: Waiter = {
        resolve,
        detach: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.pump();
    });
  }

  /** Changes the rate limit; applies from the next hand-out. */
  setMaxFps(maxFps: number | undefined): void {
    this.minIntervalMs = intervalMsFor(maxFps);
    this.clearTimer();
    this.pump();
  }

  get maxFps(): number | undefined {
    return this.minIntervalMs > 0 ? 1000 / this.minIntervalMs : undefined;
  }

  /** A snapshot of the counters. */
  get counters(): LatestFrameSlotCounters {
    return { ...this.count };
  }

  get hasPending(): boolean {
    return this.pendingFrame !== undefined;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Drops the pending frame (counted), resolves every waiting next() with undefined; later offers are dropped. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.clearTimer();
    if (this.pendingFrame !== undefined) {
      this.count.dropped++;
      this.pendingFrame = undefined;
    }
    for (const waiter of this.waiters.splice(0)) {
      waiter.detach();
      waiter.resolve(undefined);
    }
  }

  private pump(): void {
    if (this.isClosed || this.pendingFrame === undefined || this.waiters.length === 0) return;
    const waitMs = this.lastTakenAtMs + this.minIntervalMs - this.nowMs();
    if (waitMs > 0) {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, Math.ceil(waitMs));
      return;
    }
    const frame = this.pendingFrame;
    const waiter = this.waiters.shift() as Waiter;
    this.pendingFrame = undefined;
    this.lastTakenAtMs = this.nowMs();
    this.count.taken++;
    waiter.detach();
    waiter.resolve(frame);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}

function intervalMsFor(maxFps: number | undefined): number {
  if (maxFps === undefined || !Number.isFinite(maxFps) || maxFps <= 0) return 0;
  return 1000 / maxFps;
}
