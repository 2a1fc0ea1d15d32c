import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AnalyzeResult } from '../vision/analysis.ts';
import { EmbeddingCache } from '../vision/embedding-cache.ts';
import { embedImages, evaluateDataset, listDataset, type EvalVisionPool } from './evaluation.service.ts';

/**
 * A stand-in for the vision pool (the orchestration is under test here, not the engine; the real
 * pool is exercised in test/cli/eval.test.ts): a file whose first byte is 0 has no face, otherwise
 * its embedding is the unit vector along axis (first byte % 4).
 */
function standInPool(modelId: string, size = 2) {
  const stats = { opened: 0, analyzed: 0, inFlight: 0, maxInFlight: 0 };
  const openPool = async (): Promise<EvalVisionPool> => {
    stats.opened++;
    return {
      size,
      async analyze(bytes): Promise<AnalyzeResult> {
        stats.analyzed++;
        stats.inFlight++;
        stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
        await new Promise((r) => setTimeout(r, 2));
        stats.inFlight--;
        if (bytes[0] === 0) return { width: 1, height: 1, faces: [], timingsMs: {} };
        const vector = new Float32Array(4);
        vector[bytes[0]! % 4] = 1;
        const face = { box: { x: 0, y: 0, width: 1, height: 1 }, score: 1, landmarks5: [], pose: { yawDeg: 0, pitchDeg: 0, rollDeg: 0 } };
        return { width: 1, height: 1, faces: [{ ...face, quality: {}, embedding: { vector, modelId } } as never], timingsMs: {} };
      },
      close: async () => {},
    };
  };
  return { stats, openPool };
}

describe('embedImages', () => {
  let dir: string;
  let paths: string[];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'facegate-embed-'));
    paths = [];
    for (let i = 0; i < 12; i++) {
      const path = join(dir, `${i}.bin`);
      await writeFile(path, Uint8Array.of(i % 6, i)); // first byte 0 → no face
      paths.push(path);
    }
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps pool.size × 2 images in flight and reports every outcome in input order', async () => {
    const { stats, openPool } = standInPool('m1', 3);
    const progress: number[] = [];
    const result = await embedImages([...paths, join(dir, 'missing.bin')], { openPool, onProgress: (p) => progress.push(p.done) });
    expect(stats.maxInFlight).toBe(6);
    expect(result.engineCalls).toBe(12);
    expect(result.modelId).toBe('m1');
    expect(result.outcomes.map((o) => o.status)).toEqual([...Array.from({ length: 12 }, (_, i) => (i % 6 === 0 ? 'no_face' : 'face')), 'error']);
    expect(result.outcomes[12]).toMatchObject({ status: 'error', reason: expect.stringMatching(/cannot read the file/) });
    expect(progress.at(-1)).toBe(13);
  });

  it('does not start the engine when every image is cached, and redoes entries of another model', async () => {
    const cache = await EmbeddingCache.open(join(dir, 'cache'), { engine: 'x', modelId: '', pipelineVersion: 'v' });
    const first = standInPool('m1');
    await embedImages(paths, { openPool: first.openPool, store: cache });
    const second = standInPool('m1');
    const hit = await embedImages(paths, { openPool: second.openPool, store: cache });
    expect(second.stats).toMatchObject({ opened: 0, analyzed: 0 });
    expect(hit.outcomes.every((o) => o.status !== 'error' && o.cached)).toBe(true);

    // One new image forces the engine to run; it reports model m2, so every cached m1 vector is redone.
    await writeFile(join(dir, 'new.bin'), Uint8Array.of(3, 99));
    const third = standInPool('m2');
    const redone = await embedImages([...paths, join(dir, 'new.bin')], { openPool: third.openPool, store: cache });
    expect(third.stats.opened).toBe(1);
    expect(third.stats.analyzed).toBe(1 + 10); // the new image and the ten cached faces; no-face entries stand
    expect(redone.outcomes.filter((o) => o.status === 'face').every((o) => o.status === 'face' && o.modelId === 'm2')).toBe(true);
  });
});

describe('evaluateDataset', () => {
  it('lists identity folders in file-name order and measures them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'facegate-ds-'));
    try {
      // identity k has images whose embedding is axis k: perfect separation for 4 identities
      for (let k = 1; k <= 4; k++) {
        await writeFile(join(dir, `readme-${k}.txt`), 'ignored');
        await mkdir(join(dir, `id${k}`));
        for (const name of ['10.jpg', '2.jpg', '1.jpg']) await writeFile(join(dir, `id${k}`, name), Uint8Array.of(k, name.length));
      }
      const images = await listDataset(dir);
      expect(images.slice(0, 3).map((i) => i.path.slice(dir.length + 1))).toEqual(['id1/1.jpg', 'id1/2.jpg', 'id1/10.jpg']);
      const { openPool } = standInPool('m1');
      const embedded = await embedImages(
        images.map((i) => i.path),
        { openPool },
      );
      const report = evaluateDataset(images, embedded, { searchThreshold: 0.5 });
      expect(report.counts).toMatchObject({ identities: 4, images: 12, embedded: 12, genuinePairs: 12, impostorPairs: 54 });
      expect(report.auc).toBe(1);
      expect(report.accuracy?.cv?.mean).toBe(1);
      expect(report.rank1).toMatchObject({ rate: 1, correct: 8, probes: 8 });
      expect(report.openSet?.heldOutIdentities).toHaveLength(1);
      expect(report.openSet?.atConfig).toMatchObject({ unknownAccept: 0, knownAccept: 1, unknowns: 3, knowns: 6 });
      expect(report.thresholds?.verifyBasis).toBe('best_accuracy');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
