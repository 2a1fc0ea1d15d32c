import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExactIndex } from '../../src/gallery/exact-index.ts';
import { DimensionMismatchError, IndexLoadError } from '../../src/gallery/vector-index.ts';
import { bruteForce, gaussian, perturbed, randomUnitMatrix, seededRandom } from './random-vectors.ts';

const dims = 64;
const tmp = await mkdtemp(join(tmpdir(), 'facegate-exact-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

function fill(index: ExactIndex, n: number, seed: number): { ids: string[]; matrix: Float32Array } {
  const matrix = randomUnitMatrix(seededRandom(seed), n, dims);
  const ids = Array.from({ length: n }, (_, i) => `t${seed}-${i}`);
  index.addMany(ids, matrix);
  return { ids, matrix };
}

function expectSameRanking(actual: { id: string; similarity: number }[], expected: { id: string; similarity: number }[]): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i]!.similarity).toBeCloseTo(expected[i]!.similarity, 5);
  expect(actual[0]!.id).toBe(expected[0]!.id);
}

describe('ExactIndex', () => {
  it('returns the exact top k on the direct path and on the int8 + re-score path', () => {
    const random = seededRandom(7);
    for (const directScanMax of [1_000_000, 64]) {
      const index = new ExactIndex(dims, { directScanMax });
      const { ids, matrix } = fill(index, 1500, 1);
      for (let q = 0; q < 40; q++) {
        const query = perturbed(random, matrix.slice((q * 37) * dims, (q * 37 + 1) * dims), 0.8);
        const k = 1 + (q % 12);
        const got = index.search(query, k);
        expectSameRanking(got, bruteForce(ids, matrix, dims, query, k));
        expect(got[0]!.id).toBe(ids[q * 37]);
      }
      // The two-step path settles spread-out data without the full float32 scan.
      if (directScanMax === 64) expect(index.fallbackScans).toBeLessThan(4);
    }
  });

  it('stays exact when the int8 bound cannot decide (a crowd of near-identical vectors)', () => {
    const random = seededRandom(11);
    const base = randomUnitMatrix(random, 1, dims);
    const n = 600;
    const matrix = new Float32Array(n * dims);
    for (let i = 0; i < n; i++) matrix.set(perturbed(random, base, 0.01), i * dims);
    const ids = Array.from({ length: n }, (_, i) => `crowd-${i}`);
    const index = new ExactIndex(dims, { directScanMax: 16 });
    index.addMany(ids, matrix);
    for (let q = 0; q < 10; q++) {
      const query = perturbed(random, base, 0.01);
      expectSameRanking(index.search(query, 5), bruteForce(ids, matrix, dims, query, 5));
    }
    expect(index.fallbackScans).toBeGreaterThan(0);
  });

  it('normalises what it is given, and answers k larger than its size with everything', () => {
    const index = new ExactIndex(3);
    index.add('a', new Float32Array([2, 0, 0]));
    index.add('b', new Float32Array([0, 5, 0]));
    const got = index.search(new Float32Array([10, 10, 0]), 10);
    expect(got.map((m) => m.id).sort()).toEqual(['a', 'b']);
    for (const m of got) expect(m.similarity).toBeCloseTo(Math.SQRT1_2, 6);
    expect(index.search(new Float32Array([1, 0, 0]), 0)).toEqual([]);
    expect(new ExactIndex(3).search(new Float32Array([1, 0, 0]), 5)).toEqual([]);
  });

  it('never returns a removed id, and keeps the others findable after swap-removes', () => {
    const index = new ExactIndex(dims, { directScanMax: 64 });
    const { ids, matrix } = fill(index, 800, 2);
    const removed = new Set(ids.filter((_, i) => i % 3 === 0));
    for (const id of removed) expect(index.remove(id)).toBe(true);
    expect(index.remove(ids[0]!)).toBe(false);
    expect(index.size).toBe(800 - removed.size);
    for (let i = 0; i < ids.length; i++) {
      const row = matrix.slice(i * dims, (i + 1) * dims);
      const got = index.search(row, 5);
      expect(got.some((m) => removed.has(m.id))).toBe(false);
      if (!removed.has(ids[i]!)) {
        expect(got[0]!.id).toBe(ids[i]);
        expect(got[0]!.similarity).toBeCloseTo(1, 5);
      }
    }
    // Re-adding a removed id makes it findable again.
    index.add(ids[0]!, matrix.slice(0, dims));
    expect(index.search(matrix.slice(0, dims), 1)[0]!.id).toBe(ids[0]);
  });

  it('replaces the vector when an id is added again', () => {
    const index = new ExactIndex(2);
    index.add('x', new Float32Array([1, 0]));
    index.add('x', new Float32Array([0, 1]));
    expect(index.size).toBe(1);
    expect(index.search(new Float32Array([0, 1]), 1)[0]).toEqual({ id: 'x', similarity: 1 });
  });

  it('rejects vectors of the wrong length and zero vectors', () => {
    const index = new ExactIndex(4);
    expect(() => index.add('a', new Float32Array(3))).toThrow(DimensionMismatchError);
    expect(() => index.search(new Float32Array(5), 1)).toThrow(DimensionMismatchError);
    expect(() => index.add('z', new Float32Array(4))).toThrow(RangeError);
    expect(index.size).toBe(0);
  });

  it('round-trips through save and load', async () => {
    const index = new ExactIndex(dims);
    const { ids, matrix } = fill(index, 300, 3);
    index.remove(ids[5]!);
    const dir = join(tmp, 'round-trip');
    await index.save(dir);
    await index.save(dir); // replacing an existing save
    const loaded = await ExactIndex.load(dir);
    expect(loaded.size).toBe(299);
    expect([...loaded.ids()].sort()).toEqual([...index.ids()].sort());
    const random = seededRandom(5);
    for (let i = 0; i < 20; i++) {
      const query = perturbed(random, matrix.slice(i * dims, (i + 1) * dims), 0.5);
      expect(loaded.search(query, 3)).toEqual(index.search(query, 3));
    }
  });

  it('refuses a missing or damaged save', async () => {
    await expect(ExactIndex.load(join(tmp, 'nothing-here'))).rejects.toThrow(IndexLoadError);
    const index = new ExactIndex(dims);
    fill(index, 10, 4);
    const dir = join(tmp, 'damaged');
    await index.save(dir);
    await writeFile(join(dir, 'vectors.f32'), new Uint8Array(10));
    await expect(ExactIndex.load(dir)).rejects.toThrow(IndexLoadError);
  });

  it('reports memory for its matrices', () => {
    const index = new ExactIndex(512);
    const v = new Float32Array(512).map(() => gaussian(Math.random));
    index.add('a', v);
    expect(index.memoryBytes()).toBeGreaterThanOrEqual(1024 * 512 * 5);
  });
});
