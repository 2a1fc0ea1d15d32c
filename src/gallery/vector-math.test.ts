import { describe, expect, it } from 'vitest';
import { dotRow, normalized, quantizeI8Into } from './vector-math.ts';

function randomUnit(dims: number, random: () => number): Float32Array {
  return normalized(Float32Array.from({ length: dims }, () => random() * 2 - 1));
}

function cosineI8(a: Int8Array, b: Int8Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

describe('vector math', () => {
  it('normalises to unit length and refuses zero or non-finite vectors', () => {
    const v = normalized(new Float32Array([3, 4]));
    expect(Array.from(v)).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    expect(() => normalized(new Float32Array(3))).toThrow(RangeError);
    expect(() => normalized(new Float32Array([1, Number.NaN]))).toThrow(RangeError);
    expect(() => normalized(new Float32Array([Number.POSITIVE_INFINITY, 1]))).toThrow(RangeError);
  });

  it('quantises each vector to the full int8 range with its own scale', () => {
    const codes = new Int8Array(4);
    quantizeI8Into(new Float32Array([0.1, -0.04, 0.02, 0]), 0, 4, codes, 0);
    expect(Array.from(codes)).toEqual([127, -51, 25, 0]);
  });

  it('bounds the int8 cosine error by the sum of the two vectors’ quantisation errors', () => {
    let seed = 1;
    const random = (): number => ((seed = (Math.imul(seed, 48271) >>> 0) % 2147483647) / 2147483647);
    const dims = 512;
    const a = new Int8Array(dims);
    const b = new Int8Array(dims);
    let worstSlack = Infinity;
    for (let trial = 0; trial < 300; trial++) {
      const x = randomUnit(dims, random);
      const y = trial % 2 ? randomUnit(dims, random) : normalized(x.map((v) => v + 0.02 * (random() - 0.5)));
      const ex = quantizeI8Into(x, 0, dims, a, 0);
      const ey = quantizeI8Into(y, 0, dims, b, 0);
      expect(ex).toBeLessThan(0.02);
      const error = Math.abs(dotRow(x, 0, dims, y) - cosineI8(a, b));
      worstSlack = Math.min(worstSlack, ex + ey - error);
    }
    expect(worstSlack).toBeGreaterThanOrEqual(0);
  });

  it('takes the dot product of one matrix row, for any length', () => {
    const m = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(dotRow(m, 1, 5, new Float32Array([1, 1, 1, 1, 1]))).toBe(40);
    expect(dotRow(m, 3, 2, new Float32Array([1, -1]))).toBe(-1);
  });
});
