import type { Box, FaceImageStats, RgbImage } from '../domain/types.ts';
import { resizeRegionToTensor, ResizeScratch, type TensorFormat } from './align.ts';

/** Side of the grey crop the statistics are taken on: a fixed size makes sharpness independent of face size. */
export const FACE_STATS_SIZE_PX = 112;

/**
 * The part of the face box measured: the central 70 % of each side. The engine's box reaches
 * from the hairline to the chin and past the cheeks; its rim is hair and background, whose edges
 * and brightness say nothing about the face.
 */
const INSET = 0.15;

const GREY: TensorFormat = { channels: 'grey', mean: 0, scale: 1 };

// Shrinking a large face averages up to 8 source pixels per axis, so a 900-px face is not aliased into false sharpness.
const MAX_AREA_TAPS = 8;

/**
 * Sharpness, brightness and contrast of a face: the central part of its box as a grey image
 * resampled to 112×112, the variance of its 3×3 Laplacian (4-neighbour), its mean and its
 * standard deviation (grey levels 0..255).
 */
export function measureFaceStats(image: RgbImage, box: Box, scratch: FaceStatsScratch = new FaceStatsScratch()): FaceImageStats {
  const size = FACE_STATS_SIZE_PX;
  const region: Box = {
    x: box.x + box.width * INSET,
    y: box.y + box.height * INSET,
    width: Math.max(1, box.width * (1 - 2 * INSET)),
    height: Math.max(1, box.height * (1 - 2 * INSET)),
  };
  const grey = scratch.grey;
  resizeRegionToTensor(image, region, size, size, GREY, grey, scratch.resize, MAX_AREA_TAPS);
  return statsOfGrey(grey, size, size);
}

/** Reusable buffers for measureFaceStats (one per worker) so that every frame does not allocate. */
export class FaceStatsScratch {
  readonly grey = new Float32Array(FACE_STATS_SIZE_PX * FACE_STATS_SIZE_PX);
  readonly resize = new ResizeScratch();
}

/** The same statistics of a grey image given as floats (row-major, width × height); exported for tests. */
export function statsOfGrey(grey: Float32Array, width: number, height: number): FaceImageStats {
  const n = width * height;
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < n; i++) {
    const v = grey[i]!;
    sum += v;
    sumSq += v * v;
  }
  const mean = sum / n;
  const variance = Math.max(0, sumSq / n - mean * mean);

  // Laplacian over the interior pixels: the border has no full neighbourhood.
  let lapSum = 0;
  let lapSq = 0;
  let count = 0;
  for (let y = 1; y < height - 1; y++) {
    const row = y * width;
    for (let x = 1; x < width - 1; x++) {
      const i = row + x;
      const lap = grey[i - 1]! + grey[i + 1]! + grey[i - width]! + grey[i + width]! - 4 * grey[i]!;
      lapSum += lap;
      lapSq += lap * lap;
      count++;
    }
  }
  const lapMean = count > 0 ? lapSum / count : 0;
  const sharpness = count > 0 ? Math.max(0, lapSq / count - lapMean * lapMean) : 0;
  return { sharpness, brightness: mean, contrast: Math.sqrt(variance) };
}
