import { describe, expect, it } from 'vitest';
import type { Point } from '../../domain/types.ts';
import { landmarks5From68 } from './landmarks.ts';

describe('landmarks5From68', () => {
  it('averages the eyelid points, takes the nose tip and averages outer and inner mouth corners', () => {
    const points: Point[] = Array.from({ length: 68 }, (_, i) => ({ x: 1000 + i, y: -i }));
    // Image-left eye: 37, 38 above, 40, 41 below; the corners 36 and 39 must not count.
    points[36] = { x: 0, y: 0 };
    points[39] = { x: 999, y: 999 };
    points[37] = { x: 10, y: 20 };
    points[38] = { x: 14, y: 20 };
    points[40] = { x: 14, y: 24 };
    points[41] = { x: 10, y: 24 };
    points[43] = { x: 50, y: 18 };
    points[44] = { x: 54, y: 18 };
    points[46] = { x: 54, y: 22 };
    points[47] = { x: 50, y: 22 };
    points[30] = { x: 33, y: 40 };
    points[48] = { x: 16, y: 60 };
    points[60] = { x: 20, y: 58 };
    points[54] = { x: 50, y: 60 };
    points[64] = { x: 46, y: 62 };
    expect(landmarks5From68(points)).toEqual([
      { x: 12, y: 22 },
      { x: 52, y: 20 },
      { x: 33, y: 40 },
      { x: 18, y: 59 },
      { x: 48, y: 61 },
    ]);
  });

  it('rejects a point set of another size', () => {
    expect(() => landmarks5From68([{ x: 0, y: 0 }])).toThrow(RangeError);
  });
});
