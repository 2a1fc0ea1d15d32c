import { describe, expect, it } from 'vitest';
import { livenessCrop } from './liveness.ts';

describe('livenessCrop', () => {
  it('enlarges the face box 2.7× about its centre', () => {
    const crop = livenessCrop({ x: 400, y: 300, width: 100, height: 100 }, 1000, 1000);
    expect(crop.width).toBeCloseTo(270, 9);
    expect(crop.height).toBeCloseTo(270, 9);
    expect(crop.x + crop.width / 2).toBeCloseTo(450, 9);
    expect(crop.y + crop.height / 2).toBeCloseTo(350, 9);
  });

  it('shifts the crop inside the image near a border instead of shrinking it', () => {
    const crop = livenessCrop({ x: 10, y: 900, width: 100, height: 100 }, 1000, 1000);
    expect(crop).toEqual({ x: 0, y: 730, width: 270, height: 270 });
  });

  it('caps the scale when the image is too small for 2.7×', () => {
    const crop = livenessCrop({ x: 50, y: 50, width: 100, height: 100 }, 201, 301);
    expect(crop.width).toBeCloseTo(200, 9);
    expect(crop.x).toBe(0);
    expect(crop.y).toBeGreaterThanOrEqual(0);
  });
});
