import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HnswIndex } from '../../src/gallery/hnsw-index.ts';
import { learnSubspace, projectInto } from '../../src/gallery/subspace.ts';
import { bruteForce, dot, gaussian, normalize, randomUnitMatrix, seededRandom } from './random-vectors.ts';

const dims = 128;
const tmp = await mkdtemp(join(tmpdir(), 'facegate-subspace-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

/** n unit vectors that lie in a random `rank`-dimensional subspace of R^dims, plus `leak` of noise outside it. */
function lowRank(seed: number, n: number, rank: number, leak = 0): Float32Array {
  const random = seededRandom(seed);
  const directions = randomUnitMatrix(seededRandom(1000 + rank), rank, dims);
  const out = new Float32Array(n * dims);
  for (let i = 0; i < n; i++) {
    const v = new Float32Array(dims);
    for (let r = 0; r < rank; r++) {
      const w = gaussian(random);
      for (let j = 0; j < dims; j++) v[j]! += w * directions[r * dims + j]!;
    }
    normalize(v);
    for (let j = 0; j < dims; j++) v[j]! += (leak / Math.sqrt(dims)) * gaussian(random);
    out.set(normalize(v), i * dims);
  }
  return out;
}

const row = (matrix: Float32Array, i: number): Float32Array => matrix.slice(i * dims, (i + 1) * dims);

describe('learnSubspace', () => {
  it('finds the rank of low-rank vectors, with an orthonormal basis that keeps their dot products', async () => {
    const samples = lowRank(1, 600, 20);
    const subspace = (await learnSubspace(samples, dims))!;
    expect(subspace.rank).toBe(20);
    for (let a = 0; a < subspace.rank; a++) {
      for (let b = 0; b <= a; b++) {
        const d = dot(subspace.basis.subarray(a * dims, (a + 1) * dims), subspace.basis.subarray(b * dims, (b + 1) * dims));
        expect(d).toBeCloseTo(a === b ? 1 : 0, 5);
      }
    }
    // New vectors from the same subspace: coordinates keep every dot product, nothing is left outside.
    const fresh = lowRank(2, 50, 20);
    const coordinates = new Float32Array(50 * subspace.rank);
    for (let i = 0; i < 50; i++) expect(projectInto(subspace, row(fresh, i), coordinates, i * subspace.rank)).toBeLessThan(1e-6);
    const coordinateRow = (i: number) => coordinates.subarray(i * subspace.rank, (i + 1) * subspace.rank);
    for (let i = 1; i < 50; i++) expect(dot(coordinateRow(i), coordinateRow(0))).toBeCloseTo(dot(row(fresh, i), row(fresh, 0)), 5);
  });

  it('stops at the residual asked for when the vectors leak a little outside, and says how much a vector leaks', async () => {
    const samples = lowRank(3, 800, 24, 0.003);
    const subspace = (await learnSubspace(samples, dims, { maxResidual: 0.01 }))!;
    expect(subspace.rank).toBe(24);
    const outside = lowRank(4, 1, 24, 0.5);
    const coordinates = new Float32Array(subspace.rank);
    expect(projectInto(subspace, row(outside, 0), coordinates)).toBeGreaterThan(0.1);
  });

  it('gives none for vectors that are not low-rank, or for no vectors', async () => {
    expect(await learnSubspace(randomUnitMatrix(seededRandom(5), 400, dims), dims)).toBeNull();
    expect(await learnSubspace(new Float32Array(0), dims)).toBeNull();
  });
});

describe('HnswIndex over a subspace', () => {
  it('answers as the whole-vector search does, stores fewer bytes, counts vectors added outside, and saves and loads its subspace', async () => {
    const n = 3000;
    const rank = 32;
    const matrix = lowRank(6, n, rank);
    const ids = Array.from({ length: n }, (_, i) => `s${i}`);
    const subspace = (await learnSubspace(matrix.subarray(0, 1000 * dims), dims))!;
    expect(subspace.rank).toBe(rank);
    const projected = new HnswIndex(dims, { quantization: 'f32', subspace });
    const whole = new HnswIndex(dims, { quantization: 'f32' });
    projected.addMany(ids, matrix);
    whole.addMany(ids, matrix);
    expect(projected.memoryBytes()).toBeLessThan(whole.memoryBytes());

    const queries = lowRank(7, 100, rank);
    let agree = 0;
    for (let q = 0; q < 100; q++) {
      const query = row(queries, q);
      const got = projected.search(query, 5);
      const truth = bruteForce(ids, matrix, dims, query, 5);
      if (got[0]!.id === truth[0]!.id) agree++;
      // Similarities are the full cosines, not rescaled ones.
      const exact = dot(normalize(query.slice()), row(matrix, Number(got[0]!.id.slice(1))));
      expect(got[0]!.similarity).toBeCloseTo(exact, 4);
    }
    expect(agree).toBeGreaterThanOrEqual(98);
    expect(projected.subspaceStatus()).toEqual({ rank, outside: 0 });
    expect(whole.subspaceStatus()).toBeNull();

    projected.add('stranger', row(lowRank(8, 1, rank, 1), 0));
    expect(projected.subspaceStatus()!.outside).toBe(1);

    const dir = join(tmp, 'projected');
    await projected.save(dir);
    const loaded = await HnswIndex.load(dir);
    expect(loaded.subspaceStatus()).toEqual({ rank, outside: 1 });
    expect(loaded.search(row(matrix, 42), 1)[0]!.id).toBe('s42');
    expect(loaded.size).toBe(n + 1);
  });
});
