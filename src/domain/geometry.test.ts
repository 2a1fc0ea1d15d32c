import { describe, expect, it } from 'vitest';
import {
  ARCFACE_112_TEMPLATE,
  applyAffine,
  applyAffineToPoints,
  boxIoU,
  clampBox,
  estimateSimilarity,
  invertAffine,
  rmsDistance,
  scaleBox,
  shiftBoxInside,
  squareBox,
  type Affine2x3,
} from './geometry.ts';
import type { Point } from './types.ts';

function similarity(scale: number, angleRad: number, tx: number, ty: number): Affine2x3 {
  const a = scale * Math.cos(angleRad);
  const b = scale * Math.sin(angleRad);
  return [a, -b, tx, b, a, ty];
}

/** Deterministic pseudo-random numbers in [-1, 1) (a linear congruential generator). */
function makeNoise(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  };
}

describe('estimateSimilarity', () => {
  it('recovers a known scale, rotation and translation exactly from clean points', () => {
    const truth = similarity(2.5, (17 * Math.PI) / 180, -40.25, 13.5);
    const source = [
      { x: 10, y: 20 },
      { x: 95, y: 18 },
      { x: 50, y: 60 },
      { x: 25, y: 90 },
      { x: 80, y: 88 },
    ];
    const destination = applyAffineToPoints(truth, source);
    const fit = estimateSimilarity(source, destination);
    for (let i = 0; i < 6; i++) expect(fit.matrix[i]).toBeCloseTo(truth[i]!, 10);
    expect(fit.scale).toBeCloseTo(2.5, 10);
    expect(fit.rotationRad).toBeCloseTo((17 * Math.PI) / 180, 10);
    expect(rmsDistance(applyAffineToPoints(fit.matrix, source), destination)).toBeLessThan(1e-9);
  });

  it('recovers rotations in every quadrant', () => {
    const source = ARCFACE_112_TEMPLATE;
    for (const deg of [-170, -95, -30, 0, 45, 120, 179]) {
      const truth = similarity(0.7, (deg * Math.PI) / 180, 300, -5);
      const fit = estimateSimilarity(source, applyAffineToPoints(truth, source));
      expect(fit.rotationRad).toBeCloseTo((deg * Math.PI) / 180, 9);
      expect(fit.scale).toBeCloseTo(0.7, 9);
    }
  });

  it('gives the least-squares fit under noise: no better than the truth would be impossible, and close to it', () => {
    const truth = similarity(1.8, 0.3, 120, 80);
    const noise = makeNoise(42);
    const source: Point[] = [];
    const destination: Point[] = [];
    for (let i = 0; i < 200; i++) {
      const p = { x: noise() * 100, y: noise() * 100 };
      const q = applyAffine(truth, p);
      source.push(p);
      destination.push({ x: q.x + noise() * 2, y: q.y + noise() * 2 });
    }
    const fit = estimateSimilarity(source, destination);
    const fitResidual = rmsDistance(applyAffineToPoints(fit.matrix, source), destination);
    const truthResidual = rmsDistance(applyAffineToPoints(truth, source), destination);
    // The fit minimises the squared error, so it is at least as good as the true transform on these points.
    expect(fitResidual).toBeLessThanOrEqual(truthResidual + 1e-12);
    expect(fit.scale).toBeCloseTo(1.8, 2);
    expect(fit.rotationRad).toBeCloseTo(0.3, 2);
    expect(fit.matrix[2]).toBeCloseTo(120, 0);
    expect(fit.matrix[5]).toBeCloseTo(80, 0);
    // Any perturbation of the fitted parameters makes the error worse (it is a minimum).
    for (const [k, delta] of [
      [0, 1e-3],
      [3, -1e-3],
      [2, 0.05],
      [5, -0.05],
    ] as const) {
      const moved = [...fit.matrix] as number[];
      moved[k]! += delta;
      if (k === 0) moved[4]! += delta;
      if (k === 3) moved[1]! -= delta;
      const movedResidual = rmsDistance(applyAffineToPoints(moved as unknown as Affine2x3, source), destination);
      expect(movedResidual).toBeGreaterThan(fitResidual);
    }
  });

  it('never fits a reflection: a mirrored point set gets a proper rotation', () => {
    const source = ARCFACE_112_TEMPLATE;
    const mirrored = source.map((p) => ({ x: 112 - p.x, y: p.y }));
    const fit = estimateSimilarity(source, mirrored);
    const [a, b, , c, d] = fit.matrix;
    expect(a * d - b * c).toBeGreaterThan(0);
  });

  it('rejects degenerate input', () => {
    expect(() => estimateSimilarity([{ x: 1, y: 1 }], [{ x: 2, y: 2 }])).toThrow(RangeError);
    expect(() =>
      estimateSimilarity(
        [
          { x: 1, y: 1 },
          { x: 1, y: 1 },
        ],
        [
          { x: 0, y: 0 },
          { x: 5, y: 5 },
        ],
      ),
    ).toThrow(RangeError);
    expect(() => estimateSimilarity(ARCFACE_112_TEMPLATE, ARCFACE_112_TEMPLATE.slice(0, 4))).toThrow(RangeError);
  });

  it('returns an inverse that maps destination points back to the source', () => {
    const truth = similarity(0.31, -1.1, 7, 900);
    const source = ARCFACE_112_TEMPLATE.map((p) => ({ x: p.x * 4 + 100, y: p.y * 3 + 50 }));
    const fit = estimateSimilarity(source, applyAffineToPoints(truth, source));
    for (const p of source) {
      const back = applyAffine(fit.inverse, applyAffine(fit.matrix, p));
      expect(back.x).toBeCloseTo(p.x, 9);
      expect(back.y).toBeCloseTo(p.y, 9);
    }
  });
});

describe('invertAffine', () => {
  it('round-trips a general affine map and rejects a singular one', () => {
    const m: Affine2x3 = [1.5, 0.2, -3, -0.4, 0.9, 11];
    const inv = invertAffine(m);
    const p = { x: 17.25, y: -4.5 };
    const back = applyAffine(inv, applyAffine(m, p));
    expect(back.x).toBeCloseTo(p.x, 12);
    expect(back.y).toBeCloseTo(p.y, 12);
    expect(() => invertAffine([1, 2, 0, 2, 4, 0])).toThrow(RangeError);
  });
});

describe('box helpers', () => {
  it('computes IoU', () => {
    const a = { x: 0, y: 0, width: 10, height: 10 };
    expect(boxIoU(a, a)).toBe(1);
    expect(boxIoU(a, { x: 5, y: 0, width: 10, height: 10 })).toBeCloseTo(50 / 150, 12);
    expect(boxIoU(a, { x: 10, y: 10, width: 5, height: 5 })).toBe(0);
    expect(boxIoU(a, { x: 2, y: 2, width: 5, height: 5 })).toBeCloseTo(25 / 100, 12);
  });

  it('clamps, scales, squares and shifts boxes', () => {
    expect(clampBox({ x: -5, y: 10, width: 20, height: 100 }, 50, 60)).toEqual({ x: 0, y: 10, width: 15, height: 50 });
    expect(scaleBox({ x: 10, y: 10, width: 20, height: 40 }, 2)).toEqual({ x: 0, y: -10, width: 40, height: 80 });
    expect(squareBox({ x: 10, y: 10, width: 20, height: 40 })).toEqual({ x: 0, y: 10, width: 40, height: 40 });
    expect(squareBox({ x: 10, y: 10, width: 20, height: 40 }, 30)).toEqual({ x: 5, y: 15, width: 30, height: 30 });
    expect(shiftBoxInside({ x: -10, y: 90, width: 30, height: 30 }, 100, 100)).toEqual({ x: 0, y: 70, width: 30, height: 30 });
    expect(shiftBoxInside({ x: -10, y: -10, width: 300, height: 30 }, 100, 100)).toEqual({ x: 0, y: 0, width: 100, height: 30 });
  });
});
