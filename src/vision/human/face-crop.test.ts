import { describe, expect, it } from 'vitest';
import type { RgbImage } from '../../domain/types.ts';
import { cropFaceSquare } from './face-crop.ts';

/** R = x, G = y, B = 200: every pixel says where it is. */
function coordinateImage(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = x;
      data[i + 1] = y;
      data[i + 2] = 200;
    }
  }
  return { width, height, data };
}

const at = (crop: Float32Array, size: number, u: number, v: number) => {
  const i = (v * size + u) * 3;
  return [crop[i]! * 255, crop[i + 1]! * 255, crop[i + 2]! * 255];
};

describe('cropFaceSquare', () => {
  const image = coordinateImage(100, 80);

  it('maps the first and last output pixels onto the square edges, values in 0..1', () => {
    const crop = cropFaceSquare(image, { centerX: 50, centerY: 40, sidePx: 20 }, 11);
    expect(crop.length).toBe(11 * 11 * 3);
    expect(at(crop, 11, 0, 0)[0]).toBeCloseTo(40, 3);
    expect(at(crop, 11, 0, 0)[1]).toBeCloseTo(30, 3);
    expect(at(crop, 11, 10, 10)[0]).toBeCloseTo(60, 3);
    expect(at(crop, 11, 5, 5)).toEqual([expect.closeTo(50, 3), expect.closeTo(40, 3), expect.closeTo(200, 3)]);
    expect(Math.max(...crop)).toBeLessThanOrEqual(1);
  });

  it('interpolates between pixels', () => {
    const crop = cropFaceSquare(image, { centerX: 10.25, centerY: 20.5, sidePx: 2 }, 3);
    expect(at(crop, 3, 1, 1)[0]).toBeCloseTo(10.25, 3);
    expect(at(crop, 3, 1, 1)[1]).toBeCloseTo(20.5, 3);
  });

  it('fills what lies outside the image with zeros', () => {
    const crop = cropFaceSquare(image, { centerX: 0, centerY: 0, sidePx: 20 }, 5);
    expect(at(crop, 5, 0, 0)).toEqual([0, 0, 0]);
    expect(at(crop, 5, 4, 4)[0]).toBeCloseTo(10, 3);
  });

  it('turns the square clockwise for a positive angle', () => {
    // Turned by 90° clockwise, the crop's top-left corner samples the square's top-right corner.
    const crop = cropFaceSquare(image, { centerX: 50, centerY: 40, sidePx: 20 }, 3, Math.PI / 2);
    expect(at(crop, 3, 0, 0)[0]).toBeCloseTo(60, 3);
    expect(at(crop, 3, 0, 0)[1]).toBeCloseTo(30, 3);
  });
});
