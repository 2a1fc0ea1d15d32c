import { describe, expect, it } from 'vitest';
import type { Box, RgbImage } from '../domain/types.ts';
import { FaceStatsScratch, measureFaceStats, statsOfGrey } from './face-stats.ts';

/** An RGB image whose every pixel is grey level f(x, y). */
function greyImage(width: number, height: number, f: (x: number, y: number) => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.fill(Math.round(f(x, y)), (y * width + x) * 3, (y * width + x) * 3 + 3);
  }
  return { width, height, data };
}

/** A (2r+1)² box blur, clamped at the borders. */
function boxBlur(image: RgbImage, r: number): RgbImage {
  const { width, height, data } = image;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let dy = -r; dy <= r; dy++) {
          for (let dx = -r; dx <= r; dx++) {
            const sx = Math.min(width - 1, Math.max(0, x + dx));
            const sy = Math.min(height - 1, Math.max(0, y + dy));
            sum += data[(sy * width + sx) * 3 + c]!;
          }
        }
        out[(y * width + x) * 3 + c] = Math.round(sum / (2 * r + 1) ** 2);
      }
    }
  }
  return { width, height, data: out };
}

const whole = (image: RgbImage): Box => ({ x: 0, y: 0, width: image.width, height: image.height });
const checkerboard = (side: number, cell: number): RgbImage =>
  greyImage(side, side, (x, y) => ((Math.floor(x / cell) + Math.floor(y / cell)) % 2 ? 200 : 40));

describe('measureFaceStats', () => {
  it('a sharp checkerboard is sharper than its blurred copy', () => {
    const sharp = checkerboard(224, 16);
    const stats = measureFaceStats(sharp, whole(sharp));
    const blurred = measureFaceStats(boxBlur(sharp, 3), whole(sharp));
    expect(stats.sharpness).toBeGreaterThan(4 * blurred.sharpness);
    expect(blurred.sharpness).toBeGreaterThan(0);
    // Blurring moves no mean and lowers the spread.
    expect(blurred.brightness).toBeCloseTo(stats.brightness, 0);
    expect(blurred.contrast).toBeLessThan(stats.contrast);
  });

  it('a flat image has its grey level as brightness, and no contrast or sharpness', () => {
    const flat = greyImage(150, 150, () => 128);
    expect(measureFaceStats(flat, { x: 20, y: 10, width: 100, height: 120 })).toEqual({ sharpness: 0, brightness: 128, contrast: 0 });
  });

  it('a two-tone image has the mean of its tones as brightness and half their gap as contrast', () => {
    const twoTone = greyImage(200, 200, (x) => (x < 100 ? 60 : 180));
    const stats = measureFaceStats(twoTone, whole(twoTone));
    expect(stats.brightness).toBeCloseTo(120, 0);
    expect(Math.abs(stats.contrast - 60)).toBeLessThan(2);
  });

  it('measures the grey level of colour pixels with the luma weights', () => {
    const red: RgbImage = { width: 40, height: 40, data: new Uint8Array(40 * 40 * 3).map((_, i) => (i % 3 === 0 ? 200 : 0)) };
    expect(measureFaceStats(red, whole(red)).brightness).toBeCloseTo(0.299 * 200, 3);
  });

  it('gives about the same sharpness for the same face at two sizes', () => {
    // The same smooth pattern drawn on a 120-px and on a 360-px face box.
    const pattern = (side: number) => greyImage(side, side, (x, y) => 128 + 60 * Math.sin((x / side) * 40) * Math.cos((y / side) * 30));
    const small = pattern(120);
    const large = pattern(360);
    const a = measureFaceStats(small, whole(small)).sharpness;
    const b = measureFaceStats(large, whole(large)).sharpness;
    expect(a).toBeGreaterThan(1);
    expect(Math.abs(a - b) / b).toBeLessThan(0.15);
  });

  it('reads only the central part of the box, ignoring its rim', () => {
    // A bright frame of 10 % of the side around a flat mid-grey centre.
    const framed = greyImage(200, 200, (x, y) => (x < 20 || y < 20 || x >= 180 || y >= 180 ? 255 : 100));
    expect(measureFaceStats(framed, whole(framed))).toEqual({ sharpness: 0, brightness: 100, contrast: 0 });
  });

  it('gives the same result with a reused scratch', () => {
    const scratch = new FaceStatsScratch();
    const board = checkerboard(160, 10);
    const first = measureFaceStats(board, whole(board), scratch);
    measureFaceStats(greyImage(50, 50, () => 3), { x: 0, y: 0, width: 50, height: 50 }, scratch);
    expect(measureFaceStats(board, whole(board), scratch)).toEqual(first);
  });
});

describe('statsOfGrey', () => {
  it('computes the Laplacian variance over interior pixels', () => {
    // A single bright pixel in the middle of a 3×3 patch: one interior Laplacian value, −4·9.
    const grey = Float32Array.from([0, 0, 0, 0, 9, 0, 0, 0, 0]);
    const stats = statsOfGrey(grey, 3, 3);
    expect(stats.sharpness).toBe(0); // one value has no variance
    expect(stats.brightness).toBe(1);
    expect(stats.contrast).toBeCloseTo(Math.sqrt(81 / 9 - 1), 9);
    // 4×3: interior pixels (1,1) = −36 and (2,1) = 9; variance of {−36, 9} = 506.25.
    expect(statsOfGrey(Float32Array.from([0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0]), 4, 3).sharpness).toBeCloseTo(506.25, 9);
  });
});
