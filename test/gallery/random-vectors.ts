/** Seeded random unit vectors for gallery tests (no datasets in tests). */

import { gaussian } from '../../src/domain/random.ts';

export { gaussian, seededRandom } from '../../src/domain/random.ts';

export function normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const inv = 1 / Math.sqrt(s);
  for (let i = 0; i < v.length; i++) v[i]! *= inv;
  return v;
}

/** n random unit vectors as one row-major matrix. */
export function randomUnitMatrix(random: () => number, n: number, dims: number): Float32Array {
  const m = new Float32Array(n * dims);
  for (let i = 0; i < n; i++) normalize(m.subarray(i * dims, (i + 1) * dims).map(() => gaussian(random))).forEach((x, j) => (m[i * dims + j] = x));
  return m;
}

/** normalize(v + noise · g/√d): cosine to v ≈ 1/√(1 + noise²). */
export function perturbed(random: () => number, v: Float32Array, noise: number): Float32Array {
  const scale = noise / Math.sqrt(v.length);
  return normalize(v.map((x) => x + scale * gaussian(random)));
}

export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Brute-force reference: ids sorted by cosine similarity to q, most similar first. */
export function bruteForce(ids: readonly string[], matrix: Float32Array, dims: number, q: Float32Array, k: number): { id: string; similarity: number }[] {
  const qn = normalize(q.slice());
  const all = ids.map((id, i) => ({ id, similarity: dot(normalize(matrix.slice(i * dims, (i + 1) * dims)), qn) }));
  return all.sort((a, b) => b.similarity - a.similarity).slice(0, k);
}
