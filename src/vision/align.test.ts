import { describe, expect, it } from 'vitest';
import { ARCFACE_112_TEMPLATE, applyAffine, type Affine2x3 } from '../domain/geometry.ts';
import type { Landmarks5, Point, RgbImage } from '../domain/types.ts';
import {
  ALIGNED_FACE_SIZE_PX,
  alignFace,
  alignFaceToTensor,
  ARCFACE_TENSOR_FORMAT,
  resizeRegionToTensor,
  ResizeScratch,
  warpAffine,
  warpAffineToTensor,
} from './align.ts';

function makeImage(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(x, y);
      const i = (y * width + x) * 3;
      data[i] = r;
      data[i + 1] = g;
      data[i + 2] = b;
    }
  }
  return { width, height, data };
}

function rgbAt(image: RgbImage, x: number, y: number): [number, number, number] {
  const i = (y * image.width + x) * 3;
  return [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!];
}

const IDENTITY: Affine2x3 = [1, 0, 0, 0, 1, 0];

/** A similarity: scale s, rotation by `deg` (clockwise in the image), then translation. */
function similarity(s: number, deg: number, tx: number, ty: number): Affine2x3 {
  const a = s * Math.cos((deg * Math.PI) / 180);
  const b = s * Math.sin((deg * Math.PI) / 180);
  return [a, -b, tx, b, a, ty];
}

/** The five template points mapped into an image by `toImage`, as Landmarks5. */
function templateIn(toImage: Affine2x3): Landmarks5 {
  return ARCFACE_112_TEMPLATE.map((p) => applyAffine(toImage, p)) as Landmarks5;
}

const DOT_COLOURS: [number, number, number][] = [
  [255, 0, 0],
  [0, 255, 0],
  [0, 0, 255],
  [255, 255, 0],
  [0, 255, 255],
];

/** A grey image with a coloured disc at each of the five points. */
function dotsImage(width: number, height: number, points: readonly Point[], radiusPx: number): RgbImage {
  return makeImage(width, height, (x, y) => {
    for (let k = 0; k < points.length; k++) {
      if (Math.hypot(x - points[k]!.x, y - points[k]!.y) <= radiusPx) return DOT_COLOURS[k]!;
    }
    return [90, 90, 90];
  });
}

describe('warpAffine', () => {
  const image = makeImage(17, 11, (x, y) => [x * 13, y * 20, (x * y) % 256]);

  it('reproduces the image under the identity', () => {
    const out = warpAffine(image, IDENTITY, 17, 11);
    expect(out.data).toEqual(image.data);
  });

  it('shifts by whole pixels and reads 0 outside the image', () => {
    // Output (x, y) samples source (x + 3, y − 2).
    const out = warpAffine(image, [1, 0, 3, 0, 1, -2], 17, 11);
    expect(rgbAt(out, 0, 2)).toEqual(rgbAt(image, 3, 0));
    expect(rgbAt(out, 13, 10)).toEqual(rgbAt(image, 16, 8));
    expect(rgbAt(out, 14, 5)).toEqual([0, 0, 0]);
    expect(rgbAt(out, 5, 0)).toEqual([0, 0, 0]);
  });

  it('interpolates bilinearly between pixels', () => {
    const ramp = makeImage(4, 4, (x, y) => [x * 40, y * 40, 100]);
    const out = warpAffine(ramp, [1, 0, 0.25, 0, 1, 0.5], 3, 3);
    expect(rgbAt(out, 1, 1)).toEqual([50, 60, 100]);
  });
});

describe('alignFace', () => {
  it('puts the five points on the ArcFace template', () => {
    // A face 2.2× the template size, turned 20° and moved: its points must land on the template.
    const toImage = similarity(2.2, 20, 180, 60);
    const image = dotsImage(480, 400, templateIn(toImage), 5);
    const aligned = alignFace(image, templateIn(toImage));
    expect(aligned.width).toBe(ALIGNED_FACE_SIZE_PX);
    ARCFACE_112_TEMPLATE.forEach((p, k) => {
      const [r, g, b] = rgbAt(aligned, Math.round(p.x), Math.round(p.y));
      const [er, eg, eb] = DOT_COLOURS[k]!;
      expect(Math.abs(r - er) + Math.abs(g - eg) + Math.abs(b - eb)).toBeLessThan(40);
    });
    // Away from the dots the crop shows the grey background, not a border.
    expect(rgbAt(aligned, 56, 20)).toEqual([90, 90, 90]);
  });

  it('box-filters a face much larger than the crop instead of aliasing it', () => {
    // One-pixel stripes at 6× the crop scale: point sampling would pick stripes, an area average is grey.
    const toImage = similarity(6, 0, 40, 30);
    const stripes = makeImage(800, 760, (x) => (x % 2 === 0 ? [255, 255, 255] : [0, 0, 0]));
    const aligned = alignFace(stripes, templateIn(toImage));
    let min = 255;
    let max = 0;
    for (let y = 10; y < 100; y++) {
      for (let x = 10; x < 100; x++) {
        const [r] = rgbAt(aligned, x, y);
        min = Math.min(min, r);
        max = Math.max(max, r);
      }
    }
    expect(min).toBeGreaterThan(100);
    expect(max).toBeLessThan(155);
  });
});

describe('alignFaceToTensor', () => {
  it('writes the aligned crop as BGR planes of (v − 127) / 128', () => {
    const toImage = similarity(1.3, -8, 30, 25);
    const image = makeImage(220, 200, (x, y) => [(x * 7) % 256, (y * 5) % 256, (x + y) % 256]);
    const landmarks = templateIn(toImage);
    const crop = alignFace(image, landmarks);
    const tensor = new Float32Array(3 * 112 * 112);
    const transform = alignFaceToTensor(image, landmarks, tensor);
    expect(transform.scale).toBeCloseTo(1 / 1.3, 9);
    const plane = 112 * 112;
    for (const [x, y] of [
      [0, 0],
      [56, 56],
      [100, 17],
      [111, 111],
    ] as const) {
      const [r, g, b] = rgbAt(crop, x, y);
      const p = y * 112 + x;
      // The crop rounds to bytes, the tensor does not: they agree to half a grey level.
      expect(tensor[p]! * 128 + 127).toBeCloseTo(b, 0);
      expect(tensor[plane + p]! * 128 + 127).toBeCloseTo(g, 0);
      expect(tensor[2 * plane + p]! * 128 + 127).toBeCloseTo(r, 0);
    }
  });

  it('rejects a buffer too small for the crop', () => {
    const image = makeImage(8, 8, () => [0, 0, 0]);
    expect(() => warpAffineToTensor(image, IDENTITY, 112, 112, ARCFACE_TENSOR_FORMAT, new Float32Array(100))).toThrow(RangeError);
  });
});

describe('resizeRegionToTensor', () => {
  const rgbFormat = { channels: 'rgb' as const, mean: 0, scale: 1 };

  it('averages 2×2 blocks when halving', () => {
    const image = makeImage(4, 2, (x, y) => [x * 10 + y * 100, 50, 200 - x]);
    const out = resizeRegionToTensor(image, { x: 0, y: 0, width: 4, height: 2 }, 2, 1, rgbFormat, new Float32Array(6));
    // Output pixel 0 averages x 0–1, y 0–1: R (0 + 10 + 100 + 110) / 4 = 55.
    expect(Array.from(out)).toEqual([55, 75, 50, 50, 199.5, 197.5]);
  });

  it('halves a whole frame (the detector fast path) exactly as the separable taps do', () => {
    const pixel = (x: number, y: number): [number, number, number] => [(x * 37 + y * 11) % 256, (x * 5 + y * 53) % 256, (x * y) % 256];
    const frame = makeImage(64, 48, pixel);
    // The same pixels inside a wider image: the region is then not the whole image and takes the general path.
    const wider = makeImage(70, 48, (x, y) => (x < 64 ? pixel(x, y) : [0, 0, 0]));
    const format = { channels: 'bgr' as const, mean: 127.5, scale: 1 / 128 };
    const region = { x: 0, y: 0, width: 64, height: 48 };
    const fast = resizeRegionToTensor(frame, region, 32, 24, format, new Float32Array(3 * 768), new ResizeScratch(), 2);
    const general = resizeRegionToTensor(wider, region, 32, 24, format, new Float32Array(3 * 768), new ResizeScratch(), 2);
    for (let i = 0; i < fast.length; i++) expect(fast[i]).toBeCloseTo(general[i]!, 5);
  });

  it('keeps a constant image constant at any scale and tap budget', () => {
    const image = makeImage(1920, 1080, () => [200, 100, 50]);
    for (const taps of [2, 4, 100]) {
      const whole = { x: 0, y: 0, width: 1920, height: 1080 };
      const out = resizeRegionToTensor(image, whole, 320, 240, rgbFormat, new Float32Array(3 * 320 * 240), new ResizeScratch(), taps);
      for (const p of [0, 5000, 76799]) {
        expect(out[p]).toBeCloseTo(200, 3);
        expect(out[76800 + p]).toBeCloseTo(100, 3);
        expect(out[2 * 76800 + p]).toBeCloseTo(50, 3);
      }
    }
  });

  it('enlarges bilinearly (a linear ramp stays linear)', () => {
    const ramp = makeImage(8, 8, (x) => [x * 30, 0, 0]);
    const out = resizeRegionToTensor(ramp, { x: 2, y: 2, width: 4, height: 4 }, 8, 8, rgbFormat, new Float32Array(3 * 64));
    // A region starts at the left edge of its first pixel (x = 2 − ½ in pixel-centre terms), so
    // output column o samples x = 1.5 + (o + ½)·½: columns step by 15 grey levels from 1.75 × 30.
    for (let o = 1; o < 8; o++) expect(out[3 * 8 + o]! - out[3 * 8 + o - 1]!).toBeCloseTo(15, 4);
    expect(out[3 * 8]).toBeCloseTo(1.75 * 30, 4);
  });

  it('reads 0 outside the image and writes grey as 0.299 R + 0.587 G + 0.114 B', () => {
    const image = makeImage(10, 10, () => [100, 200, 50]);
    const greyFormat = { channels: 'grey' as const, mean: 0, scale: 1 / 256 };
    const out = resizeRegionToTensor(image, { x: -10, y: 0, width: 20, height: 10 }, 2, 1, greyFormat, new Float32Array(2));
    expect(out[0]).toBeCloseTo(0, 6);
    expect(out[1]).toBeCloseTo((0.299 * 100 + 0.587 * 200 + 0.114 * 50) / 256, 5);
  });

  it('gives the same result when the scratch is reused for another geometry', () => {
    const image = makeImage(64, 48, (x, y) => [(x * 9) % 256, (y * 11) % 256, 7]);
    const scratch = new ResizeScratch();
    const fresh = (region: { x: number; y: number; width: number; height: number }) =>
      resizeRegionToTensor(image, region, 16, 12, ARCFACE_TENSOR_FORMAT, new Float32Array(3 * 192));
    const reused = (region: { x: number; y: number; width: number; height: number }) =>
      resizeRegionToTensor(image, region, 16, 12, ARCFACE_TENSOR_FORMAT, new Float32Array(3 * 192), scratch);
    const a = { x: 0, y: 0, width: 64, height: 48 };
    const b = { x: 5, y: 3, width: 30, height: 20 };
    expect(reused(a)).toEqual(fresh(a));
    expect(reused(b)).toEqual(fresh(b));
    expect(reused(a)).toEqual(fresh(a));
  });
});
