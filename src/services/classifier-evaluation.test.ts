import { describe, expect, it } from 'vitest';
import { runToEnd } from '../domain/svm.ts';
import { compareClassifiers, formatClassifierComparison, ratesAtKnownAccept, type LabelledEmbedding } from './classifier-evaluation.ts';
import { seededRandom as random } from '../domain/random.ts';

/** identities × perIdentity unit vectors around random directions (cosine ≈ 0.75 to their own). */
function faces(identities: number, perIdentity: number, dims: number, seed: number): LabelledEmbedding[] {
  const r = random(seed);
  const gauss = (): number => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  const unit = (v: Float32Array): Float32Array => {
    let n = 0;
    for (const x of v) n += x * x;
    return v.map((x) => x / Math.sqrt(n));
  };
  const out: LabelledEmbedding[] = [];
  for (let i = 0; i < identities; i++) {
    const centre = unit(Float32Array.from({ length: dims }, gauss));
    for (let k = 0; k < perIdentity; k++) out.push({ identity: `id${i}`, vector: unit(centre.map((x) => x + (0.8 / Math.sqrt(dims)) * gauss())) });
  }
  return out;
}

describe('ratesAtKnownAccept', () => {
  it('takes the highest threshold that still accepts the asked share of knowns', () => {
    const probes = [
      { bestScore: 0.9, inGallery: true, correct: true },
      { bestScore: 0.7, inGallery: true, correct: true },
      { bestScore: 0.6, inGallery: true, correct: false },
      { bestScore: 0.5, inGallery: true, correct: true },
      { bestScore: 0.8, inGallery: false, correct: false },
      { bestScore: 0.4, inGallery: false, correct: false },
    ];
    expect(ratesAtKnownAccept(probes, 0.5)).toMatchObject({ threshold: 0.7, knownAccept: 0.5, unknownAccept: 0.5 });
    expect(ratesAtKnownAccept(probes, 0.75)).toMatchObject({ threshold: 0.5, knownAccept: 0.75, unknownAccept: 0.5 });
    expect(ratesAtKnownAccept(probes, 0.8)).toBeNull(); // one known is misidentified: 75% is the most
  });
});

describe('compareClassifiers', () => {
  it('measures cosine, SVM and SVM with fallback on the same split, closed and open set', () => {
    const samples = faces(12, 6, 32, 3);
    const c = runToEnd(compareClassifiers(samples, { searchThreshold: 0.5, verifyThreshold: 0.4, grid: { C: [1], gamma: [], rbfMaxSamples: 0 } }));
    expect(c).toMatchObject({ identities: 12, galleryImages: 36, probeImages: 36, svmIdentities: 12, knownProbes: 36 });
    // Every identity is held out once: all its 6 images probe as unknowns.
    expect(c.unknownProbes).toBe(72);
    for (const m of ['cosine', 'svm', 'svmWithFallback'] as const) {
      expect(c.methods[m].rank1).toBeGreaterThan(0.9);
      expect(c.methods[m].atUnknown1pct!.unknownAccept).toBeLessThanOrEqual(0.01);
    }
    expect(c.methods.cosine.atCosineKnownAccept!.knownAccept).toBeCloseTo(c.methods.cosine.atSearchThreshold!.knownAccept, 12);
    const table = formatClassifierComparison(c, 0.5);
    expect(table).toMatch(/rank-1 \(all known probes\)/);
    expect(table).toContain('svm + cosine fallback');
  });

  it('leaves identities with too few gallery images to cosine', () => {
    const samples = [...faces(4, 6, 16, 5), ...faces(1, 2, 16, 6).map((s) => ({ ...s, identity: 'few' }))];
    const c = runToEnd(compareClassifiers(samples, { searchThreshold: 0.5, verifyThreshold: 0.4, grid: { C: [1], gamma: [], rbfMaxSamples: 0 } }));
    expect(c.identities).toBe(5);
    expect(c.svmIdentities).toBe(4);
  });
});
