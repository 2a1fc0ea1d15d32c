import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.ts';
import { projectPath } from '../../src/config/paths.ts';
import { VisionError } from '../../src/vision/errors.ts';
import { createVisionPool, type VisionPool } from '../../src/vision/vision-pool.ts';

const demo = (n: number): Buffer => readFileSync(projectPath(`node_modules/@vladmandic/face-api/demo/sample${n}.jpg`));

describe('vision pool (real workers, real models)', () => {
  let pool: VisionPool;
  const config = parseConfig({ vision: { workers: 2, maxQueue: 4 } }).vision;

  beforeAll(async () => {
    pool = await createVisionPool(config, { allowCrashForTests: true });
  });
  afterAll(async () => {
    await pool.close();
  });

  it('analyses images on every worker at once and embeds only what is asked', async () => {
    const [a, b] = await Promise.all([
      pool.analyze(demo(1), { embed: 'all', liveness: true }),
      pool.analyze(demo(2), { embed: 'largest', liveness: false }),
    ]);
    expect(a.faces.length).toBeGreaterThan(1);
    expect(a.faces.every((f) => f.embedding?.vector.length === 512 && f.liveness !== undefined)).toBe(true);
    expect(b.faces.filter((f) => f.embedding)).toHaveLength(1);
    expect(b.faces.every((f) => f.liveness === undefined)).toBe(true);
    expect(a.timingsMs.decode).toBeGreaterThan(0);
    expect(a.timingsMs.embed).toBeGreaterThan(0);
  });

  it('embeds, on request, faces an earlier detection-only pass found (the tracker path)', async () => {
    const bytes = demo(1);
    const detectedOnly = await pool.analyze(bytes, { embed: 'none', liveness: false });
    const full = await pool.analyze(bytes, { embed: 'all', liveness: true });
    const second = detectedOnly.faces.slice(1, 3);
    const embedded = await pool.embedFaces(bytes, second, { liveness: true });
    expect(embedded.faces).toHaveLength(2);
    embedded.faces.forEach((face, k) => {
      const reference = full.faces[k + 1]!;
      let dot = 0;
      for (let i = 0; i < 512; i++) dot += face.embedding.vector[i]! * reference.embedding!.vector[i]!;
      expect(dot).toBeCloseTo(1, 4);
      expect(face.liveness).toBeCloseTo(reference.liveness!, 4);
    });
  });

  it("tracks with the fast landmark pose, close to the model's pose", async () => {
    const [fast, accurate] = await Promise.all([
      pool.analyze(demo(1), { embed: 'none', liveness: false, pose: 'fast' }),
      pool.analyze(demo(1), { embed: 'none', liveness: false }),
    ]);
    expect(fast.faces).toHaveLength(accurate.faces.length);
    fast.faces.forEach((face, k) => {
      expect(Math.abs(face.pose.yawDeg - accurate.faces[k]!.pose.yawDeg)).toBeLessThan(15);
      expect(Math.sign(face.pose.yawDeg) === Math.sign(accurate.faces[k]!.pose.yawDeg) || Math.abs(face.pose.yawDeg) < 8).toBe(true);
    });
    expect(fast.timingsMs.pose!).toBeLessThan(accurate.timingsMs.pose!);
  });

  it('answers bad bytes and a truncated JPEG with clear errors, and keeps serving', async () => {
    const garbage = Buffer.from('this is not an image at all');
    await expect(pool.analyze(garbage, { embed: 'none', liveness: false })).rejects.toMatchObject({ code: 'invalid_image', status: 400 });
    const jpeg = demo(3);
    const truncated = jpeg.subarray(0, Math.floor(jpeg.length / 3));
    await expect(pool.analyze(truncated, { embed: 'none', liveness: false })).rejects.toMatchObject({ code: 'invalid_image' });
    await expect(pool.analyze(new Uint8Array(0), { embed: 'none', liveness: false })).rejects.toThrow(/empty/);
    const ok = await pool.analyze(jpeg, { embed: 'none', liveness: false });
    expect(ok.faces.length).toBeGreaterThan(0);
  });

  it('replaces a worker that dies mid-job and answers that job with an error', async () => {
    const before = pool.stats().restarts;
    await expect(pool.analyze(demo(4), { embed: 'none', liveness: false, crash: true } as never)).rejects.toMatchObject({
      code: 'vision_worker_failed',
    });
    const after = await pool.analyze(demo(4), { embed: 'largest', liveness: false });
    expect(after.faces.length).toBeGreaterThan(0);
    await expect.poll(() => pool.stats().workers, { timeout: 60_000 }).toBe(2);
    expect(pool.stats().restarts).toBe(before + 1);
  });

  it('sheds load instead of queueing without bound', async () => {
    const jobs = Array.from({ length: 12 }, () => pool.analyze(demo(5), { embed: 'none', liveness: false }));
    const settled = await Promise.allSettled(jobs);
    const refused = settled.filter((s) => s.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((s) => (s as PromiseRejectedResult).reason instanceof VisionError)).toBe(true);
    expect((refused[0] as PromiseRejectedResult).reason.code).toBe('vision_overloaded');
    expect(settled.some((s) => s.status === 'fulfilled')).toBe(true);
  });
});

describe('vision pool start-up', () => {
  it('names a missing model file instead of starting', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'facegate-no-models-'));
    const config = parseConfig({ vision: { workers: 1, modelsDir: empty } }).vision;
    try {
      await expect(createVisionPool(config)).rejects.toMatchObject({ code: 'model_missing', message: expect.stringContaining('fr_detect.onnx') });
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
