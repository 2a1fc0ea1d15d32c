import { describe, expect, it } from 'vitest';
import { ExactIndex } from '../../src/gallery/exact-index.ts';
import { HnswIndex } from '../../src/gallery/hnsw-index.ts';
import { perturbed, randomUnitMatrix, seededRandom } from './random-vectors.ts';

describe('exact and HNSW indexes', () => {
  it('agree on the top-1 for noisy re-captures of a few thousand 512-d vectors', () => {
    const dims = 512;
    const n = 4000;
    const random = seededRandom(42);
    // Clustered like faces: 400 "sources", 10 look-alikes each (≈0.45–0.7 cosine to the source).
    const sources = randomUnitMatrix(random, 400, dims);
    const matrix = new Float32Array(n * dims);
    for (let i = 0; i < n; i++) matrix.set(perturbed(random, sources.subarray((i % 400) * dims, (i % 400 + 1) * dims), 1 + random()), i * dims);
    const ids = Array.from({ length: n }, (_, i) => `v${i}`);
    const exact = new ExactIndex(dims);
    const hnsw = new HnswIndex(dims);
    exact.addMany(ids, matrix);
    hnsw.addMany(ids, matrix);

    const queries = 500;
    let agree = 0;
    for (let q = 0; q < queries; q++) {
      const target = Math.floor(random() * n);
      const query = perturbed(random, matrix.subarray(target * dims, (target + 1) * dims), 0.5 + 0.7 * random());
      const e = exact.search(query, 1)[0]!;
      const h = hnsw.search(query, 1)[0]!;
      if (e.id === h.id) {
        agree++;
        // int8 HNSW similarities are within the int8 error bound (≈0.016 at 512-d) of the float ones.
        expect(Math.abs(e.similarity - h.similarity)).toBeLessThan(0.02);
      }
    }
    expect(agree / queries).toBeGreaterThanOrEqual(0.99);
  });
});
