import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.ts';
import { projectPath } from '../../src/config/paths.ts';
import { createVisionPool, type VisionPool } from '../../src/vision/vision-pool.ts';

const demo = (n: number): Buffer => readFileSync(projectPath(`node_modules/@vladmandic/face-api/demo/sample${n}.jpg`));

/*
 * A job that overruns jobTimeoutMs is answered at once (504 vision_timeout) and a fresh worker
 * takes over, but the stuck worker is not terminated mid-run (which can abort the process from
 * ONNX's native code): it is stopped once its run ends.
 */
describe('vision pool: a stuck job times out without killing a busy worker', () => {
  let pool: VisionPool;
  const messages: string[] = [];

  beforeAll(async () => {
    pool = await createVisionPool(parseConfig({ vision: { workers: 1, jobTimeoutMs: 1500 } }).vision, { allowCrashForTests: true, onWorkerError: (m) => messages.push(m) });
  });
  afterAll(async () => {
    await pool?.close();
  });

  it('answers the stuck job with vision_timeout, serves the next job on a fresh worker, stops the stuck one when it finishes', async () => {
    const t0 = Date.now();
    const stuck = pool.analyze(demo(4), { embed: 'none', liveness: false, stallMs: 8000 } as never);
    await expect(stuck).rejects.toMatchObject({ code: 'vision_timeout', status: 504 });
    expect(Date.now() - t0).toBeLessThan(4000);
    expect(messages.join('\n')).toMatch(/timed out after 1500 ms; a fresh worker takes over/);
    // The replacement loads its models and serves while the stuck worker is still in its run.
    const next = await pool.analyze(demo(4), { embed: 'largest', liveness: false });
    expect(next.faces.length).toBeGreaterThan(0);
    expect(pool.stats()).toMatchObject({ workers: 1, restarts: 1 });
    // The process is alive throughout, and the stuck worker goes once its stall ends.
    await expect.poll(() => (pool as unknown as { slots: unknown[] }).slots.length, { timeout: 15_000, interval: 200 }).toBe(1);
    expect((await pool.analyze(demo(4), { embed: 'none', liveness: false })).faces.length).toBeGreaterThan(0);
  }, 60_000);
});

describe('vision pool: interactive calls go before camera frames', () => {
  it('a REST job queued after background frames is served first', async () => {
    const pool = await createVisionPool(parseConfig({ vision: { workers: 1 } }).vision, { allowCrashForTests: true });
    try {
      const order: string[] = [];
      const busy = pool.analyze(demo(4), { embed: 'none', liveness: false, stallMs: 800 } as never);
      const frames = [1, 2, 3].map((i) => pool.analyze(demo(4), { embed: 'none', liveness: false, background: true }).then(() => order.push(`frame ${i}`)));
      const rest = pool.analyze(demo(4), { embed: 'none', liveness: false }).then(() => order.push('rest'));
      await Promise.all([busy, ...frames, rest]);
      expect(order[0]).toBe('rest');
    } finally {
      await pool.close();
    }
  }, 60_000);
});
