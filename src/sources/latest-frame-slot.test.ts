import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Frame } from './frame.ts';
import { LatestFrameSlot } from './latest-frame-slot.ts';

function frame(seq: number): Frame {
  return { cameraId: 'cam', seq, receivedAtMs: seq, bytes: new Uint8Array([seq & 0xff]) };
}

describe('LatestFrameSlot', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('hands out a pending frame at once', async () => {
    const slot = new LatestFrameSlot();
    slot.offer(frame(1));
    expect(slot.hasPending).toBe(true);
    expect((await slot.next())?.seq).toBe(1);
    expect(slot.hasPending).toBe(false);
    expect(slot.counters).toEqual({ offered: 1, taken: 1, dropped: 0 });
  });

  it('waits for a frame when none is pending', async () => {
    const slot = new LatestFrameSlot();
    const pending = slot.next();
    slot.offer(frame(7));
    expect((await pending)?.seq).toBe(7);
  });

  it('keeps only the newest frame and counts the replaced ones as dropped', async () => {
    const slot = new LatestFrameSlot();
    for (let seq = 1; seq <= 1000; seq++) slot.offer(frame(seq));
    expect((await slot.next())?.seq).toBe(1000);
    expect(slot.counters).toEqual({ offered: 1000, taken: 1, dropped: 999 });
  });

  it('serves concurrent waiters in order, one frame each', async () => {
    const slot = new LatestFrameSlot();
    const first = slot.next();
    const second = slot.next();
    slot.offer(frame(1));
    slot.offer(frame(2));
    expect((await first)?.seq).toBe(1);
    expect((await second)?.seq).toBe(2);
  });

  it('hands frames out no sooner than 1/maxFps after the previous one, newest wins meanwhile', async () => {
    vi.useFakeTimers();
    let clockMs = 0;
    const slot = new LatestFrameSlot({ maxFps: 10, nowMs: () => clockMs });
    slot.offer(frame(1));
    expect((await slot.next())?.seq).toBe(1);

    let received: Frame | undefined;
    void slot.next().then((f) => (received = f));
    slot.offer(frame(2));
    clockMs = 40;
    slot.offer(frame(3));
    await vi.advanceTimersByTimeAsync(40);
    expect(received).toBeUndefined();

    clockMs = 100;
    await vi.advanceTimersByTimeAsync(60);
    expect(received?.seq).toBe(3);
    expect(slot.counters).toEqual({ offered: 3, taken: 2, dropped: 1 });
  });

  it('does not delay a frame that arrives after the interval has passed', async () => {
    let clockMs = 0;
    const slot = new LatestFrameSlot({ maxFps: 5, nowMs: () => clockMs });
    slot.offer(frame(1));
    await slot.next();
    clockMs = 500;
    slot.offer(frame(2));
    expect((await slot.next())?.seq).toBe(2);
  });

  it('setMaxFps changes the interval', async () => {
    vi.useFakeTimers();
    let clockMs = 0;
    const slot = new LatestFrameSlot({ maxFps: 1, nowMs: () => clockMs });
    expect(slot.maxFps).toBe(1);
    slot.offer(frame(1));
    await slot.next();
    let received: Frame | undefined;
    void slot.next().then((f) => (received = f));
    slot.offer(frame(2));
    clockMs = 100;
    slot.setMaxFps(undefined);
    await vi.advanceTimersByTimeAsync(0);
    expect(received?.seq).toBe(2);
    expect(slot.maxFps).toBeUndefined();
  });

  it('rate-limits with real timers too', async () => {
    const slot = new LatestFrameSlot({ maxFps: 20 });
    const startMs = performance.now();
    for (let i = 1; i <= 3; i++) {
      slot.offer(frame(i));
      await slot.next();
    }
    // Three frames at ≤ 20 fps: at least two 50 ms intervals.
    expect(performance.now() - startMs).toBeGreaterThanOrEqual(95);
  });

  it('resolves undefined on abort and leaves the frame for the next taker', async () => {
    const slot = new LatestFrameSlot();
    const controller = new AbortController();
    const waiting = slot.next(controller.signal);
    controller.abort();
    expect(await waiting).toBeUndefined();
    expect(await slot.next(controller.signal)).toBeUndefined();
    slot.offer(frame(5));
    expect((await slot.next())?.seq).toBe(5);
    expect(slot.counters.taken).toBe(1);
  });

  it('close resolves waiters, drops the pending frame and every later offer', async () => {
    const slot = new LatestFrameSlot();
    const waiting = slot.next();
    slot.close();
    expect(await waiting).toBeUndefined();
    expect(slot.closed).toBe(true);

    const other = new LatestFrameSlot();
    other.offer(frame(1));
    other.close();
    other.offer(frame(2));
    expect(await other.next()).toBeUndefined();
    expect(other.counters).toEqual({ offered: 2, taken: 0, dropped: 2 });
    other.close();
  });

  it('close cancels a rate-limit wait', async () => {
    let clockMs = 0;
    const slot = new LatestFrameSlot({ maxFps: 0.001, nowMs: () => clockMs });
    slot.offer(frame(1));
    await slot.next();
    slot.offer(frame(2));
    const waiting = slot.next();
    clockMs = 10;
    slot.close();
    expect(await waiting).toBeUndefined();
  });
});
