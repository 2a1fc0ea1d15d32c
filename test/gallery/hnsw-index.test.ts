import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HnswIndex, type HnswQuantization } from '../../src/gallery/hnsw-index.ts';
import { DimensionMismatchError, IndexLoadError } from '../../src/gallery/vector-index.ts';
import { perturbed, randomUnitMatrix, seededRandom } from './random-vectors.ts';

const dims = 64;
const tmp = await mkdtemp(join(tmpdir(), 'facegate-hnsw-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

function fill(index: HnswIndex, n: number, seed: number): { ids: string[]; matrix: Float32Array } {
  const matrix = randomUnitMatrix(seededRandom(seed), n, dims);
  const ids = Array.from({ length: n }, (_, i) => `h${seed}-${i}`);
  index.addMany(ids, matrix);
  return { ids, matrix };
}

const row = (matrix: Float32Array, i: number): Float32Array => matrix.slice(i * dims, (i + 1) * dims);

describe('HnswIndex', () => {
  for (const quantization of ['f16', 'i8'] satisfies HnswQuantization[]) {
    it(`finds stored vectors by their own value and by a noisy copy (${quantization})`, () => {
      const index = new HnswIndex(dims, { quantization });
      const { ids, matrix } = fill(index, 2000, 1);
      expect(index.size).toBe(2000);
      const random = seededRandom(2);
      // Uniformly random vectors are HNSW's hardest case (no structure to route by) and a threaded
      // build differs from run to run, so a rare miss is allowed.
      let ownHits = 0;
      let noisyHits = 0;
      for (let i = 0; i < 200; i++) {
        const own = index.search(row(matrix, i * 7), 3);
        if (own[0]!.id === ids[i * 7]) {
          ownHits++;
          expect(own[0]!.similarity).toBeCloseTo(1, 2);
        }
        if (index.search(perturbed(random, row(matrix, i * 7), 0.7), 1)[0]!.id === ids[i * 7]) noisyHits++;
      }
      expect(ownHits).toBeGreaterThanOrEqual(196);
      expect(noisyHits).toBeGreaterThanOrEqual(194);
    });
  }

  it('never returns a removed id, and finds a removed-then-re-added one again', () => {
    const index = new HnswIndex(dims);
    const { ids, matrix } = fill(index, 1000, 3);
    const removed = ids.filter((_, i) => i % 2 === 0);
    for (const id of removed) expect(index.remove(id)).toBe(true);
    expect(index.remove(removed[0]!)).toBe(false);
    expect(index.size).toBe(500);
    const removedSet = new Set(removed);
    for (let i = 0; i < ids.length; i += 5) {
      const got = index.search(row(matrix, i), 10);
      expect(got.length).toBe(10);
      expect(got.some((m) => removedSet.has(m.id))).toBe(false);
    }
    // Re-add half of the removed ids (reusing their usearch keys) and new ones.
    for (let i = 0; i < 1000; i += 4) index.add(ids[i]!, row(matrix, i));
    index.add('fresh', row(matrix, 2));
    expect(index.size).toBe(750 + 1);
    expect(index.search(row(matrix, 0), 1)[0]!.id).toBe(ids[0]);
    expect(index.search(row(matrix, 8), 1)[0]!.id).toBe(ids[8]);
    const near2 = index.search(row(matrix, 2), 2).map((m) => m.id);
    expect(near2).toContain('fresh');
    expect(near2).not.toContain(ids[2]);
  });

  it('replaces the vector of an id added again, in add and in addMany', () => {
    const index = new HnswIndex(4);
    index.add('x', new Float32Array([1, 0, 0, 0]));
    index.add('x', new Float32Array([0, 1, 0, 0]));
    index.addMany(['y', 'x', 'y'], new Float32Array([0, 0, 1, 0, 0, 0, 0, 1, 0, 0, -1, 0]));
    expect(index.size).toBe(2);
    expect(index.search(new Float32Array([0, 0, 0, 1]), 1)[0]!.id).toBe('x');
    expect(index.search(new Float32Array([0, 0, -1, 0]), 1)[0]!.id).toBe('y');
    expect(index.search(new Float32Array([0, 0, 1, 0]), 2).map((m) => m.id)).not.toContain(undefined);
  });

  it('rejects vectors of the wrong length or zero length', () => {
    const index = new HnswIndex(8);
    expect(() => index.add('a', new Float32Array(7))).toThrow(DimensionMismatchError);
    expect(() => index.addMany(['a', 'b'], new Float32Array(15))).toThrow(DimensionMismatchError);
    expect(() => index.search(new Float32Array(9), 1)).toThrow(DimensionMismatchError);
    expect(index.size).toBe(0);
    expect(index.search(new Float32Array(8).fill(1), 3)).toEqual([]);
    // A zero vector is refused without touching what the id held.
    index.add('a', new Float32Array(8).fill(1));
    expect(() => index.add('a', new Float32Array(8))).toThrow(RangeError);
    expect(() => index.addMany(['b', 'c'], new Float32Array(16).fill(1, 0, 8))).toThrow(RangeError);
    expect(index.size).toBe(1);
    expect(index.search(new Float32Array(8).fill(1), 3).map((m) => m.id)).toEqual(['a']);
  });

  it('round-trips through save and load, and keeps working after', async () => {
    const index = new HnswIndex(dims, { quantization: 'i8', connectivity: 12 });
    const { ids, matrix } = fill(index, 1500, 4);
    for (let i = 0; i < 100; i++) index.remove(ids[i]!);
    const dir = join(tmp, 'round-trip');
    await index.save(dir);
    const loaded = await HnswIndex.load(dir);
    expect(loaded.size).toBe(1400);
    expect(loaded.params).toEqual(index.params);
    expect([...loaded.ids()].sort()).toEqual([...index.ids()].sort());
    for (let i = 100; i < 300; i += 3) expect(loaded.search(row(matrix, i), 5)).toEqual(index.search(row(matrix, i), 5));
    // Keys freed before the save are reused after the load without clashing.
    for (let i = 0; i < 100; i++) loaded.add(`again-${i}`, row(matrix, i));
    expect(loaded.size).toBe(1500);
    expect(loaded.search(row(matrix, 42), 1)[0]!.id).toBe('again-42');
    expect(loaded.search(row(matrix, 742), 1)[0]!.id).toBe(ids[742]);
  });

  it('saves and loads an empty index', async () => {
    const dir = join(tmp, 'empty');
    await new HnswIndex(8).save(dir);
    const loaded = await HnswIndex.load(dir);
    expect(loaded.size).toBe(0);
    loaded.add('a', new Float32Array(8).fill(1));
    expect(loaded.search(new Float32Array(8).fill(1), 3).map((m) => m.id)).toEqual(['a']);
  });

  it('refuses a missing save, or a graph that does not match its id map', async () => {
    await expect(HnswIndex.load(join(tmp, 'nothing-here'))).rejects.toThrow(IndexLoadError);
    const index = new HnswIndex(dims);
    fill(index, 50, 5);
    const dir = join(tmp, 'damaged');
    await index.save(dir);
    await writeFile(join(dir, 'graph.usearch'), new Uint8Array(100));
    await expect(HnswIndex.load(dir)).rejects.toThrow(IndexLoadError);
  });

  it('estimates under 1 KiB a 512-d int8 template and about 1.2 KiB a float16 one (M = 16)', () => {
    const n = 1000;
    for (const [quantization, low, high] of [['i8', 600, 900], ['f16', 1100, 1450]] as const) {
      const index = new HnswIndex(512, { quantization, connectivity: 16 });
      index.addMany(Array.from({ length: n }, (_, i) => `m${i}`), randomUnitMatrix(seededRandom(6), n, 512));
      const perTemplate = index.memoryBytes() / n;
      expect(perTemplate).toBeGreaterThan(low);
      expect(perTemplate).toBeLessThan(high);
    }
  });
});
