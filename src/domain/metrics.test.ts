import { describe, expect, it } from 'vitest';
import {
  accuracyAt,
  allPairScores,
  areaUnderCurve,
  assignFolds,
  bestThresholdAccuracy,
  cosineSimilarity,
  crossValidatedAccuracy,
  dot,
  EmbeddingMismatchError,
  identify,
  kFoldAccuracy,
  l2Normalize,
  lfwAccuracy,
  lfwImagePath,
  LfwPairsFormatError,
  nextUp,
  openSetRates,
  openSetThreshold,
  parseLfwPairs,
  recommendThresholds,
  rocAuc,
  rocCurve,
  selectHeldOutIdentities,
  tarAtFar,
  type LabelledVector,
  type OpenSetProbe,
} from './metrics.ts';

/** Seeded generator for property tests (not the one under test). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Scores on a coarse grid so that ties are frequent. */
function randomScores(random: () => number, count: number, shift: number): number[] {
  return Array.from({ length: count }, () => Math.round((random() + shift) * 20) / 20);
}

const MODEL = 'test-model';
const v = (identity: string, values: number[], modelId = MODEL): LabelledVector => ({ identity, vector: l2Normalize(values), modelId });

describe('similarity', () => {
  it('normalises to unit length and leaves a zero vector at zero', () => {
    expect(Array.from(l2Normalize([3, 4]))).toEqual([expect.closeTo(0.6, 6), expect.closeTo(0.8, 6)]);
    expect(Array.from(l2Normalize([0, 0]))).toEqual([0, 0]);
  });

  it('gives the cosine of normalised vectors', () => {
    const a = { vector: l2Normalize([1, 0]), modelId: MODEL };
    const b = { vector: l2Normalize([0, 1]), modelId: MODEL };
    const c = { vector: l2Normalize([3, 4]), modelId: MODEL };
    const d = { vector: l2Normalize([4, 3]), modelId: MODEL };
    expect(cosineSimilarity(a, b)).toBeCloseTo(0, 6);
    expect(cosineSimilarity(a, a)).toBeCloseTo(1, 6);
    expect(cosineSimilarity(c, d)).toBeCloseTo(0.96, 6);
    expect(cosineSimilarity(c, d, MODEL)).toBeCloseTo(0.96, 6);
  });

  it('refuses vectors of different models or dimensions', () => {
    const a = { vector: l2Normalize([1, 0]), modelId: 'm1' };
    const b = { vector: l2Normalize([1, 0]), modelId: 'm2' };
    expect(() => cosineSimilarity(a, b)).toThrow(EmbeddingMismatchError);
    expect(() => cosineSimilarity(a, a, 'm2')).toThrow(/expected embeddings of model m2/);
    expect(() => cosineSimilarity(a, { vector: new Float32Array(3), modelId: 'm1' })).toThrow(/2 and 3 dimensions/);
    expect(() => dot(new Float32Array(2), new Float32Array(3))).toThrow(EmbeddingMismatchError);
  });

  it('scores every pair once, split into genuine and impostor', () => {
    const samples = [v('a', [1, 0]), v('a', [0.6, 0.8]), v('b', [0, 1]), v('b', [-1, 0])];
    const { genuine, impostor } = allPairScores(samples, MODEL);
    expect(Array.from(genuine).map((x) => Number(x.toFixed(4)))).toEqual([0.6, 0]);
    expect(
      Array.from(impostor)
        .map((x) => Number(x.toFixed(4)))
        .sort(),
    ).toEqual([-0.6, -1, 0, 0.8].sort());
    expect(() => allPairScores([...samples, v('c', [1, 0], 'other')], MODEL)).toThrow(EmbeddingMismatchError);
  });
});

describe('ROC and AUC', () => {
  it('is 1 when separable, 0 when reversed, 0.5 when all tied', () => {
    expect(rocAuc([0.8, 0.9], [0.1, 0.2])).toBe(1);
    expect(rocAuc([0.1, 0.2], [0.8, 0.9])).toBe(0);
    expect(rocAuc([0.5, 0.5], [0.5, 0.5, 0.5])).toBe(0.5);
  });

  it('counts a tie as one half (Mann–Whitney)', () => {
    // pairs (g, i): (.9,.5)=1 (.9,.2)=1 (.5,.5)=½ (.5,.2)=1 (.3,.5)=0 (.3,.2)=1 → 4.5/6
    expect(rocAuc([0.9, 0.5, 0.3], [0.5, 0.2])).toBeCloseTo(0.75, 12);
  });

  it('has one point per distinct score, tied scores in one step', () => {
    expect(rocCurve([0.9, 0.5, 0.3], [0.5, 0.2])).toEqual([
      { threshold: Infinity, far: 0, tar: 0 },
      { threshold: 0.9, far: 0, tar: 1 / 3 },
      { threshold: 0.5, far: 0.5, tar: 2 / 3 },
      { threshold: 0.3, far: 0.5, tar: 1 },
      { threshold: 0.2, far: 1, tar: 1 },
    ]);
  });

  it('agrees with a brute-force count and with the area under its curve, ties and all', () => {
    const random = lcg(7);
    for (let trial = 0; trial < 50; trial++) {
      const genuine = randomScores(random, 1 + Math.floor(random() * 40), 0.3);
      const impostor = randomScores(random, 1 + Math.floor(random() * 60), 0);
      let wins = 0;
      for (const g of genuine) for (const i of impostor) wins += g > i ? 1 : g === i ? 0.5 : 0;
      const expected = wins / (genuine.length * impostor.length);
      expect(rocAuc(genuine, impostor)).toBeCloseTo(expected, 12);
      expect(areaUnderCurve(rocCurve(genuine, impostor))).toBeCloseTo(expected, 12);
    }
  });

  it('rejects NaN scores', () => {
    expect(() => rocAuc([Number.NaN], [0])).toThrow(RangeError);
  });
});

describe('best-threshold accuracy', () => {
  it('puts the threshold midway between the classes when they separate', () => {
    expect(bestThresholdAccuracy([0.8, 0.9], [0.1, 0.2])).toEqual({ threshold: 0.5, accuracy: 1, tar: 1, far: 0 });
  });

  it('weighs the classes equally when balanced, where plain accuracy would reject everything', () => {
    const genuine = [0.6];
    const impostor = [0.1, 0.7, 0.8];
    expect(bestThresholdAccuracy(genuine, impostor)).toMatchObject({ threshold: Infinity, accuracy: 0.75 });
    const balanced = bestThresholdAccuracy(genuine, impostor, { balanced: true });
    expect(balanced.threshold).toBeCloseTo(0.35, 12);
    expect(balanced.accuracy).toBeCloseTo(2 / 3, 12);
  });

  it('takes the stricter of the middle candidates on a plateau of equal accuracy', () => {
    // accept {3} and accept {3,2,1} both give 3/4
    expect(bestThresholdAccuracy([3, 1], [2, 0])).toMatchObject({ threshold: 2.5, accuracy: 0.75 });
  });

  it('finds the best accuracy any threshold can give (brute force)', () => {
    const random = lcg(11);
    for (let trial = 0; trial < 50; trial++) {
      const genuine = randomScores(random, 1 + Math.floor(random() * 30), 0.4);
      const impostor = randomScores(random, 1 + Math.floor(random() * 30), 0);
      for (const balanced of [false, true]) {
        const candidates = [Infinity, ...genuine, ...impostor];
        const bruteBest = Math.max(...candidates.map((t) => accuracyAt(genuine, impostor, t, { balanced }).accuracy));
        const best = bestThresholdAccuracy(genuine, impostor, { balanced });
        expect(best.accuracy).toBeCloseTo(bruteBest, 12);
        expect(accuracyAt(genuine, impostor, best.threshold, { balanced }).accuracy).toBeCloseTo(bruteBest, 12);
      }
    }
  });
});

describe('cross-validated accuracy', () => {
  it('assigns folds deterministically, sizes differing by at most one', () => {
    const a = assignFolds(103, 10, 5);
    expect(Array.from(assignFolds(103, 10, 5))).toEqual(Array.from(a));
    const sizes = Array.from({ length: 10 }, (_, k) => a.filter((f) => f === k).length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(sizes.reduce((s, x) => s + x, 0)).toBe(103);
    expect(Array.from(assignFolds(103, 10, 6))).not.toEqual(Array.from(a));
  });

  it('chooses each threshold on the other folds and tests it on the held-out one', () => {
    // fold 0: g .9, i .1; fold 1: g .4, i .3. Fold 0 uses t=.35 from fold 1 → 1; fold 1 uses t=.5 from fold 0 → 1/2.
    const result = kFoldAccuracy([0.9, 0.4], [0.1, 0.3], [0, 1], [0, 1], 2);
    expect(result.folds.map((f) => f.threshold)).toEqual([expect.closeTo(0.35, 12), 0.5]);
    expect(result.folds.map((f) => f.accuracy)).toEqual([1, 0.5]);
    expect(result.mean).toBeCloseTo(0.75, 12);
    expect(result.std).toBeCloseTo(0.25, 12);
  });

  it('matches choosing each threshold on the other folds the plain way, ties and all', () => {
    const random = lcg(23);
    for (let trial = 0; trial < 20; trial++) {
      const genuine = randomScores(random, 5 + Math.floor(random() * 40), 0.3);
      const impostor = randomScores(random, 5 + Math.floor(random() * 80), 0);
      const gFold = assignFolds(genuine.length, 5, trial);
      const mFold = assignFolds(impostor.length, 5, trial + 100);
      for (const balanced of [false, true]) {
        const result = kFoldAccuracy(genuine, impostor, gFold, mFold, 5, { balanced });
        const expected = [0, 1, 2, 3, 4].map((k) => {
          const t = bestThresholdAccuracy(
            genuine.filter((_, i) => gFold[i] !== k),
            impostor.filter((_, i) => mFold[i] !== k),
            { balanced },
          ).threshold;
          return accuracyAt(
            genuine.filter((_, i) => gFold[i] === k),
            impostor.filter((_, i) => mFold[i] === k),
            t,
            { balanced },
          ).accuracy;
        });
        expect(result.folds.map((f) => f.accuracy)).toEqual(expected);
      }
    }
    expect(() => kFoldAccuracy([0.5], [0.1], [3], [0], 2)).toThrow(/outside 0..1/);
  });

  it('is perfect on separable scores and repeatable', () => {
    const random = lcg(3);
    const genuine = Array.from({ length: 50 }, () => 0.6 + random() * 0.4);
    const impostor = Array.from({ length: 500 }, () => random() * 0.5);
    const result = crossValidatedAccuracy(genuine, impostor, { folds: 10, balanced: true });
    expect(result).toMatchObject({ mean: 1, std: 0 });
    expect(result.folds).toHaveLength(10);
    expect(result.folds.every((f) => f.genuine === 5 && f.impostor === 50)).toBe(true);
    expect(crossValidatedAccuracy(genuine, impostor, { folds: 10, balanced: true })).toEqual(result);
  });
});

describe('TAR at FAR', () => {
  const impostor = Array.from({ length: 1000 }, (_, i) => i / 1000);
  const genuine = [0.9985, 0.9995, 0.5, 1.5];

  it('takes the smallest observed score whose impostor accept rate is within the target', () => {
    expect(tarAtFar(genuine, impostor, 0.001)).toEqual({ far: 0.001, threshold: 0.9985, tar: 0.75, achievedFar: 0.001 });
    expect(tarAtFar(genuine, impostor, 0.01)).toEqual({ far: 0.01, threshold: 0.99, tar: 0.75, achievedFar: 0.01 });
  });

  it('moves above a whole tie of impostors that would exceed the target', () => {
    const tied = [0.5, 0.5, 0.5, ...Array<number>(97).fill(0.1)];
    expect(tarAtFar([0.5, 0.7], tied, 0.02)).toEqual({ far: 0.02, threshold: 0.7, tar: 0.5, achievedFar: 0 });
    // at 3% the whole tie fits, and the threshold drops onto it
    expect(tarAtFar([0.5, 0.7], tied, 0.03)).toEqual({ far: 0.03, threshold: 0.5, tar: 1, achievedFar: 0.03 });
  });

  it('sits just above the top impostor when no observed score qualifies, and accepts all at FAR 1', () => {
    const zero = tarAtFar([0.2], [0.1, 0.9], 0);
    expect(zero.threshold).toBe(nextUp(0.9));
    expect(zero).toMatchObject({ tar: 0, achievedFar: 0 });
    expect(tarAtFar([0.2], [0.1, 0.9], 1)).toEqual({ far: 1, threshold: 0.1, tar: 1, achievedFar: 1 });
  });

  it('always meets the target and is the smallest observed score that does (brute force)', () => {
    const random = lcg(19);
    for (let trial = 0; trial < 50; trial++) {
      const g = randomScores(random, 1 + Math.floor(random() * 50), 0.4);
      const m = randomScores(random, 1 + Math.floor(random() * 300), 0);
      for (const far of [0, 0.001, 0.01, 0.1, 0.5]) {
        const r = tarAtFar(g, m, far);
        const farAt = (t: number): number => m.filter((x) => x >= t).length / m.length;
        expect(farAt(r.threshold)).toBeLessThanOrEqual(far);
        expect(r.achievedFar).toBe(farAt(r.threshold));
        expect(r.tar).toBe(g.filter((x) => x >= r.threshold).length / g.length);
        for (const x of [...g, ...m]) if (x < r.threshold) expect(farAt(x)).toBeGreaterThan(far);
      }
    }
  });

  it('finds the next double up', () => {
    expect(nextUp(1)).toBe(1 + Number.EPSILON);
    expect(nextUp(0)).toBe(Number.MIN_VALUE);
    expect(nextUp(-1)).toBeGreaterThan(-1);
    expect(nextUp(-1) - -1).toBeLessThan(1e-15);
  });
});

describe('identification', () => {
  const gallery = [v('a', [1, 0, 0]), v('b', [0, 1, 0])];

  it('counts a probe correct when its own identity scores strictly highest', () => {
    const probes = [v('a', [0.9, 0.1, 0.1]), v('b', [0.8, 0.3, 0]), v('c', [0, 0, 1]), v('a', [1, 1, 0])];
    const result = identify(gallery, probes, MODEL);
    expect(result.probes.map((p) => [p.bestIdentity, p.inGallery, p.correct])).toEqual([
      ['a', true, true],
      ['a', true, false],
      ['a', false, false], // tie between a and b at 0: the first in gallery order is reported
      ['a', true, false], // a tie between a and b is not a correct identification
    ]);
    expect(result).toMatchObject({ rank1: 1 / 3, correct: 1, knownProbes: 3 });
  });

  it('scores an identity by its best template', () => {
    const result = identify([...gallery, v('b', [0.7, 0.7, 0.1])], [v('b', [0.6, 0.8, 0])], MODEL);
    expect(result.probes[0]).toMatchObject({ bestIdentity: 'b', correct: true });
    expect(result.probes[0]!.bestScore).toBeCloseTo(0.98, 2);
  });

  it('refuses a probe of another model', () => {
    expect(() => identify(gallery, [v('a', [1, 0, 0], 'other')], MODEL)).toThrow(EmbeddingMismatchError);
  });
});

describe('open set', () => {
  const unknowns: OpenSetProbe[] = Array.from({ length: 100 }, (_, i) => ({ bestScore: i / 100, inGallery: false, correct: false }));
  const knowns: OpenSetProbe[] = [
    { bestScore: 0.995, inGallery: true, correct: true },
    { bestScore: 0.985, inGallery: true, correct: true },
    { bestScore: 0.999, inGallery: true, correct: false },
    { bestScore: 0.5, inGallery: true, correct: true },
  ];
  const probes = [...unknowns, ...knowns];

  it('counts unknowns accepted and knowns named correctly at a threshold', () => {
    expect(openSetRates(probes, 0.9)).toEqual({
      threshold: 0.9,
      unknownAccept: 0.1,
      knownAccept: 0.5,
      knownMisidentified: 0.25,
      unknowns: 100,
      knowns: 4,
    });
  });

  it('finds the smallest threshold that holds unknown accepts to 1%', () => {
    // 1% of 100 unknowns = 1 may pass: .98 must be rejected, so the threshold is the next observed score, .985
    expect(openSetThreshold(probes, 0.01)).toMatchObject({ threshold: 0.985, unknownAccept: 0.01, knownAccept: 0.5 });
    expect(() => openSetThreshold(knowns)).toThrow(/no negative scores/);
  });

  it('holds out a deterministic fifth of identities, whatever the listing order', () => {
    const names = Array.from({ length: 23 }, (_, i) => `id${i}`);
    const held = selectHeldOutIdentities(names);
    expect(held.size).toBe(5);
    expect(selectHeldOutIdentities([...names].reverse())).toEqual(held);
    expect(selectHeldOutIdentities(['x', 'y']).size).toBe(1);
    expect(selectHeldOutIdentities(['x']).size).toBe(0);
  });
});

describe('LFW protocol', () => {
  const pairsText = ['2\t2', 'Ann 1 2', 'Ann 1 3', 'Bob 1 Cid 1', 'Ann 2 Bob 2', 'Dee 1 4', 'Eve 2 3', 'Dee 1 Eve 1', 'Cid 1 Dee 2', ''].join('\n');

  it('parses folds of matched then mismatched pairs', () => {
    const parsed = parseLfwPairs(pairsText);
    expect(parsed).toMatchObject({ folds: 2, pairsPerFold: 2 });
    expect(parsed.pairs).toHaveLength(8);
    expect(parsed.pairs[0]).toEqual({ first: { name: 'Ann', index: 1 }, second: { name: 'Ann', index: 2 }, same: true, fold: 0 });
    expect(parsed.pairs[2]).toEqual({ first: { name: 'Bob', index: 1 }, second: { name: 'Cid', index: 1 }, same: false, fold: 0 });
    expect(parsed.pairs[4]).toMatchObject({ same: true, fold: 1 });
    expect(parsed.pairs.map((p) => p.same)).toEqual([true, true, false, false, true, true, false, false]);
  });

  it('names the line of a malformed pair', () => {
    expect(() => parseLfwPairs('1 1\nAnn 1 Bob 2\nAnn 1 2')).toThrow(/line 2: a matched pair/);
    expect(() => parseLfwPairs('1 1\nAnn 1 x\nAnn 1 Bob 2')).toThrow(/line 2: "x" is not an image number/);
    expect(() => parseLfwPairs('ten 300')).toThrow(LfwPairsFormatError);
    expect(() => parseLfwPairs('2 2\nAnn 1 2')).toThrow(/expected 8 pair lines/);
    expect(() => parseLfwPairs('')).toThrow(/empty/);
  });

  it('reads a single-count header as one fold', () => {
    expect(parseLfwPairs('1\nAnn 1 2\nAnn 1 Bob 1')).toMatchObject({ folds: 1, pairsPerFold: 1 });
  });

  it('maps an image to its file', () => {
    expect(lfwImagePath({ name: 'Aaron_Peirsol', index: 1 })).toBe('Aaron_Peirsol/Aaron_Peirsol_0001.jpg');
    expect(lfwImagePath({ name: 'George_W_Bush', index: 530 })).toBe('George_W_Bush/George_W_Bush_0530.jpg');
  });

  it('runs 10-fold accuracy with thresholds from the other nine folds', () => {
    const lines = ['10 300'];
    const scores: number[] = [];
    for (let fold = 0; fold < 10; fold++) {
      for (let i = 0; i < 300; i++) {
        lines.push(`P${fold}_${i} 1 2`);
        // one matched pair per fold scores low: 299/300 matched right, every mismatched right
        scores.push(i === 0 ? 0.1 : 0.7);
      }
      for (let i = 0; i < 300; i++) {
        lines.push(`P${fold}_${i} 1 Q${fold}_${i} 1`);
        scores.push(0.2);
      }
    }
    const pairs = parseLfwPairs(lines.join('\n'));
    const result = lfwAccuracy(pairs, scores);
    expect(result.folds).toHaveLength(10);
    expect(result.folds.every((f) => f.genuine === 300 && f.impostor === 300)).toBe(true);
    expect(result.mean).toBeCloseTo(599 / 600, 12);
    expect(result.std).toBeCloseTo(0, 12);
    expect(() => lfwAccuracy(pairs, scores.slice(1))).toThrow(RangeError);
  });
});

describe('recommended thresholds', () => {
  it('uses the FAR 0.1% threshold for verification when enough impostors define it', () => {
    expect(
      recommendThresholds({ bestAccuracy: { threshold: 0.3 }, tarAtFar0001: { threshold: 0.4 }, impostorCount: 5000, openSet: { threshold: 0.5 } }),
    ).toEqual({ verify: 0.4, verifyBasis: 'far_0.001', search: 0.5, searchBasis: 'open_set_unknown_1pct' });
  });

  it('falls back to best accuracy with few impostors, or when it is the stricter', () => {
    expect(recommendThresholds({ bestAccuracy: { threshold: 0.3 }, tarAtFar0001: { threshold: 0.4 }, impostorCount: 999 })).toEqual({
      verify: 0.3,
      verifyBasis: 'best_accuracy',
      search: null,
      searchBasis: null,
    });
    expect(recommendThresholds({ bestAccuracy: { threshold: 0.45 }, tarAtFar0001: { threshold: 0.4 }, impostorCount: 5000 })).toMatchObject({
      verify: 0.45,
      verifyBasis: 'best_accuracy',
    });
  });

  it('never makes search laxer than verification', () => {
    expect(
      recommendThresholds({ bestAccuracy: { threshold: 0.3 }, tarAtFar0001: { threshold: 0.4 }, impostorCount: 5000, openSet: { threshold: 0.35 } }),
    ).toMatchObject({ search: 0.4, searchBasis: 'verify' });
  });
});
