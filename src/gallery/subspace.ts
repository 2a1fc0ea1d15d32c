import { dotRow } from './vector-math.ts';

/*
 * A face model's embeddings do not fill their dimensions. fr_feature's 512-d vectors lie, to
 * within 0.4 % of their length, in a subspace of ≈200 dimensions (over 2,068 photos of 54 people
 * at every pose: 150 principal directions hold 99.96 % of the variance; `npx tsx
 * bench/gallery.ts --spectrum`). Storing each vector's coordinates in that subspace instead of its
 * 512 components keeps every dot product (to ±1e-4) at ≈40 % of the memory and distance work,
 * which the HNSW index spends on a denser graph and a wider search (FAISS calls this a PCA
 * pre-transform). The subspace is learnt from the gallery's own vectors, so it fits whatever model
 * made them; vectors that do not lie in a low-rank subspace get none, and the index stores them whole.
 */

/** An orthonormal basis of a subspace of R^dims: `rank` rows of `dims` components. */
export interface Subspace {
  dims: number;
  rank: number;
  basis: Float32Array;
}

/**
 * Samples whose residuals are updated between pauses: a step over 10,000 samples of 512
 * dimensions takes ≈10–40 ms, which the server should not spend in one piece.
 */
const PAUSE_EVERY_SAMPLES = 2048;

export interface LearnSubspaceOptions {
  /**
   * Largest distance from the subspace left to any sample unit vector (default 0.01). Dot
   * products between vectors this close to the subspace change by at most ≈ its square (1e-4),
   * far below the gaps between people's similarities.
   */
  maxResidual?: number;
  /** Give up (no subspace) when more directions than this are needed (default dims / 2). */
  maxRank?: number;
  /** Called within and between steps, so a long learning run can yield to the event loop. */
  pause?: () => Promise<void>;
}

/**
 * Learns a subspace holding every sample vector (after normalising) to within maxResidual, by
 * Gram–Schmidt with pivoting: each step adds the direction of the sample farthest from the
 * subspace so far. Null when the samples need more than maxRank directions (they are not low-rank
 * and projecting would save little) or there are none.
 */
export async function learnSubspace(samples: Float32Array, dims: number, options: LearnSubspaceOptions = {}): Promise<Subspace | null> {
  const maxResidual = options.maxResidual ?? 0.01;
  const maxRank = options.maxRank ?? Math.floor(dims / 2);
  const n = Math.floor(samples.length / dims);
  if (n === 0) return null;
  // Residuals of the unit samples (projection onto the basis so far removed), updated in place.
  const residual = new Float32Array(n * dims);
  const energy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < dims; j++) s += samples[i * dims + j]! ** 2;
    const inv = s > 0 && Number.isFinite(s) ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < dims; j++) residual[i * dims + j] = samples[i * dims + j]! * inv;
    energy[i] = inv > 0 ? 1 : 0;
  }
  const basis = new Float32Array(maxRank * dims);
  const direction = new Float32Array(dims);
  let rank = 0;
  for (;;) {
    let worst = 0;
    for (let i = 1; i < n; i++) if (energy[i]! > energy[worst]!) worst = i;
    if (Math.sqrt(Math.max(0, energy[worst]!)) <= maxResidual) break;
    if (rank === maxRank) return null;
    let norm = 0;
    for (let j = 0; j < dims; j++) norm += residual[worst * dims + j]! ** 2;
    const inv = 1 / Math.sqrt(norm);
    for (let j = 0; j < dims; j++) direction[j] = residual[worst * dims + j]! * inv;
    // Re-orthogonalise against the basis once more: residuals drift from it by rounding.
    for (let r = 0; r < rank; r++) {
      const c = dotRow(basis, r, dims, direction);
      for (let j = 0; j < dims; j++) direction[j]! -= c * basis[r * dims + j]!;
    }
    let norm2 = 0;
    for (let j = 0; j < dims; j++) norm2 += direction[j]! ** 2;
    const inv2 = 1 / Math.sqrt(norm2);
    for (let j = 0; j < dims; j++) basis[rank * dims + j] = direction[j]! * inv2;
    const added = basis.subarray(rank * dims, (rank + 1) * dims);
    for (let from = 0; from < n; from += PAUSE_EVERY_SAMPLES) {
      const to = Math.min(n, from + PAUSE_EVERY_SAMPLES);
      for (let i = from; i < to; i++) {
        const c = dotRow(residual, i, dims, added);
        let e = 0;
        for (let j = 0; j < dims; j++) {
          const v = residual[i * dims + j]! - c * added[j]!;
          residual[i * dims + j] = v;
          e += v * v;
        }
        energy[i] = e;
      }
      if (options.pause) await options.pause();
    }
    rank++;
  }
  return { dims, rank, basis: basis.slice(0, rank * dims) };
}

/**
 * Coordinates of v in the subspace, into out at offset (rank values); returns the squared length
 * of the part of v outside it (|v|² − |coordinates|²).
 */
export function projectInto(subspace: Subspace, v: Float32Array, out: Float32Array, offset = 0): number {
  const { rank, dims, basis } = subspace;
  let inside = 0;
  let total = 0;
  for (let j = 0; j < dims; j++) total += v[j]! * v[j]!;
  for (let r = 0; r < rank; r++) {
    const c = dotRow(basis, r, dims, v);
    out[offset + r] = c;
    inside += c * c;
  }
  return Math.max(0, total - inside);
}
