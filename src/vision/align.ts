/**
 * Pixel resampling for the face models: similarity-aligned warps (the ArcFace crop) and
 * axis-aligned crop-and-resize (detector, landmark and liveness inputs), each able to write
 * straight into the planar float32 tensor a model wants, so no pixel is looped over twice.
 *
 * Coordinates follow the OpenCV convention the models were trained with: pixel (i, j) has its
 * centre at (i, j), and a warp maps output pixel centres through the inverse transform.
 */
import { ARCFACE_112_TEMPLATE, estimateSimilarity, type Affine2x3, type SimilarityTransform } from '../domain/geometry.ts';
import type { Box, Landmarks5, RgbImage } from '../domain/types.ts';

/** Side of the ArcFace crop in pixels. */
export const ALIGNED_FACE_SIZE_PX = 112;

/** How pixels become tensor values: planar (NCHW, batch 1), value = (pixel − mean) × scale. */
export interface TensorFormat {
  /** Plane order; 'grey' writes one plane of 0.299·R + 0.587·G + 0.114·B. */
  channels: 'rgb' | 'bgr' | 'grey';
  mean: number;
  scale: number;
}

/** fr_feature's input: BGR, (v − 127) / 128. */
export const ARCFACE_TENSOR_FORMAT: TensorFormat = { channels: 'bgr', mean: 127, scale: 1 / 128 };

/** The similarity transform taking a face's five points onto the ArcFace 112×112 template. */
export function arcFaceTransform(landmarks5: Landmarks5): SimilarityTransform {
  return estimateSimilarity(landmarks5, ARCFACE_112_TEMPLATE);
}

/**
 * Warps an image with an affine map, bilinear, by inverse mapping: output pixel (x, y) samples the
 * source at inverse·(x, y). Source pixels outside the image read as 0 (black).
 */
export function warpAffine(image: RgbImage, inverse: Affine2x3, outWidth: number, outHeight: number): RgbImage {
  const data = new Uint8Array(outWidth * outHeight * 3);
  const sink = new Float32Array(3);
  const { width, height, data: src } = image;
  const [i00, i01, i02, i10, i11, i12] = inverse;
  let o = 0;
  for (let y = 0; y < outHeight; y++) {
    let sx = i01 * y + i02;
    let sy = i11 * y + i12;
    for (let x = 0; x < outWidth; x++, sx += i00, sy += i10, o += 3) {
      sampleBilinear(src, width, height, sx, sy, sink);
      // Rounding (not truncation) keeps an identity warp lossless.
      data[o] = sink[0]! + 0.5;
      data[o + 1] = sink[1]! + 0.5;
      data[o + 2] = sink[2]! + 0.5;
    }
  }
  return { width: outWidth, height: outHeight, data };
}

/**
 * Like warpAffine, but writes the warped pixels straight into a planar float32 tensor
 * (out.length ≥ planes × outWidth × outHeight).
 */
export function warpAffineToTensor(
  image: RgbImage,
  inverse: Affine2x3,
  outWidth: number,
  outHeight: number,
  format: TensorFormat,
  out: Float32Array,
): Float32Array {
  const plane = outWidth * outHeight;
  checkTensorLength(out, format, plane);
  const sink = new Float32Array(3);
  const { width, height, data: src } = image;
  const [i00, i01, i02, i10, i11, i12] = inverse;
  const { mean, scale } = format;
  const grey = format.channels === 'grey';
  const rPlane = format.channels === 'bgr' ? 2 * plane : 0;
  const bPlane = format.channels === 'bgr' ? 0 : 2 * plane;
  let p = 0;
  for (let y = 0; y < outHeight; y++) {
    let sx = i01 * y + i02;
    let sy = i11 * y + i12;
    for (let x = 0; x < outWidth; x++, sx += i00, sy += i10, p++) {
      sampleBilinear(src, width, height, sx, sy, sink);
      if (grey) {
        out[p] = (0.299 * sink[0]! + 0.587 * sink[1]! + 0.114 * sink[2]! - mean) * scale;
      } else {
        out[rPlane + p] = (sink[0]! - mean) * scale;
        out[plane + p] = (sink[1]! - mean) * scale;
        out[bPlane + p] = (sink[2]! - mean) * scale;
      }
    }
  }
  return out;
}

/**
 * Aligns a face to the ArcFace 112×112 crop. A face much larger than the crop is first box-filtered
 * down by an integer factor, so the bilinear warp does not alias.
 */
export function alignFace(image: RgbImage, landmarks5: Landmarks5): RgbImage {
  const { source, inverse } = prefilteredSource(image, arcFaceTransform(landmarks5));
  return warpAffine(source, inverse, ALIGNED_FACE_SIZE_PX, ALIGNED_FACE_SIZE_PX);
}

/**
 * Aligns a face to the ArcFace 112×112 crop and writes it into `out` (3×112×112) in the given
 * format (fr_feature's by default). Returns the transform used (image → crop).
 */
export function alignFaceToTensor(
  image: RgbImage,
  landmarks5: Landmarks5,
  out: Float32Array,
  format: TensorFormat = ARCFACE_TENSOR_FORMAT,
): SimilarityTransform {
  const transform = arcFaceTransform(landmarks5);
  const { source, inverse } = prefilteredSource(image, transform);
  warpAffineToTensor(source, inverse, ALIGNED_FACE_SIZE_PX, ALIGNED_FACE_SIZE_PX, format, out);
  return transform;
}

/**
 * When the warp shrinks by 2× or more, box-filters the part of the image the crop reads by the
 * integer factor first and returns the inverse map adjusted to that smaller source.
 */
function prefilteredSource(image: RgbImage, transform: SimilarityTransform): { source: RgbImage; inverse: Affine2x3 } {
  const factor = Math.floor(1 / transform.scale);
  if (factor < 2) return { source: image, inverse: transform.inverse };
  const inv = transform.inverse;
  // Bounding box (in source pixels) of the crop's corners, with a margin for the bilinear taps.
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const [x, y] of [
    [-1, -1],
    [ALIGNED_FACE_SIZE_PX, -1],
    [-1, ALIGNED_FACE_SIZE_PX],
    [ALIGNED_FACE_SIZE_PX, ALIGNED_FACE_SIZE_PX],
  ] as const) {
    const sx = inv[0] * x + inv[1] * y + inv[2];
    const sy = inv[3] * x + inv[4] * y + inv[5];
    minX = Math.min(minX, sx);
    maxX = Math.max(maxX, sx);
    minY = Math.min(minY, sy);
    maxY = Math.max(maxY, sy);
  }
  // Align the region to the factor grid so the reduced image keeps whole blocks.
  const x0 = Math.max(0, Math.floor(minX / factor) * factor);
  const y0 = Math.max(0, Math.floor(minY / factor) * factor);
  const x1 = Math.min(image.width, Math.ceil((maxX + 1) / factor) * factor);
  const y1 = Math.min(image.height, Math.ceil((maxY + 1) / factor) * factor);
  if (x1 - x0 < factor || y1 - y0 < factor) return { source: image, inverse: transform.inverse };
  const reduced = boxReduce(image, x0, y0, x1, y1, factor);
  // Reduced pixel (u, v) covers source pixels [x0 + u·f, x0 + (u+1)·f), whose centre is x0 + u·f + (f−1)/2.
  const k = 1 / factor;
  const offsetX = (-x0 - (factor - 1) / 2) * k;
  const offsetY = (-y0 - (factor - 1) / 2) * k;
  const inverse: Affine2x3 = [
    inv[0] * k,
    inv[1] * k,
    inv[2] * k + offsetX,
    inv[3] * k,
    inv[4] * k,
    inv[5] * k + offsetY,
  ];
  return { source: reduced, inverse };
}

/** Averages factor×factor blocks of the region [x0, x1) × [y0, y1); a partial last block averages what it has. */
function boxReduce(image: RgbImage, x0: number, y0: number, x1: number, y1: number, factor: number): RgbImage {
  const outWidth = Math.ceil((x1 - x0) / factor);
  const outHeight = Math.ceil((y1 - y0) / factor);
  const sums = new Float32Array(outWidth * 3);
  const counts = new Float32Array(outWidth);
  const data = new Uint8Array(outWidth * outHeight * 3);
  const src = image.data;
  const stride = image.width * 3;
  for (let v = 0; v < outHeight; v++) {
    sums.fill(0);
    counts.fill(0);
    const rowEnd = Math.min(y1, y0 + (v + 1) * factor);
    for (let y = y0 + v * factor; y < rowEnd; y++) {
      let s = y * stride + x0 * 3;
      for (let x = x0; x < x1; x++, s += 3) {
        const u = ((x - x0) / factor) | 0;
        sums[u * 3] += src[s]!;
        sums[u * 3 + 1] += src[s + 1]!;
        sums[u * 3 + 2] += src[s + 2]!;
        counts[u]! += 1;
      }
    }
    let o = v * outWidth * 3;
    for (let u = 0; u < outWidth; u++, o += 3) {
      const n = counts[u]!;
      data[o] = sums[u * 3]! / n + 0.5;
      data[o + 1] = sums[u * 3 + 1]! / n + 0.5;
      data[o + 2] = sums[u * 3 + 2]! / n + 0.5;
    }
  }
  return { width: outWidth, height: outHeight, data };
}

/** Bilinear sample of an RGB image at (sx, sy) into sink[0..2]; taps outside the image read 0. */
function sampleBilinear(src: Uint8Array, width: number, height: number, sx: number, sy: number, sink: Float32Array): void {
  const x0 = Math.floor(sx);
  const y0 = Math.floor(sy);
  const fx = sx - x0;
  const fy = sy - y0;
  const w00 = (1 - fx) * (1 - fy);
  const w01 = fx * (1 - fy);
  const w10 = (1 - fx) * fy;
  const w11 = fx * fy;
  if (x0 >= 0 && y0 >= 0 && x0 + 1 < width && y0 + 1 < height) {
    const i00 = (y0 * width + x0) * 3;
    const i10 = i00 + width * 3;
    sink[0] = w00 * src[i00]! + w01 * src[i00 + 3]! + w10 * src[i10]! + w11 * src[i10 + 3]!;
    sink[1] = w00 * src[i00 + 1]! + w01 * src[i00 + 4]! + w10 * src[i10 + 1]! + w11 * src[i10 + 4]!;
    sink[2] = w00 * src[i00 + 2]! + w01 * src[i00 + 5]! + w10 * src[i10 + 2]! + w11 * src[i10 + 5]!;
    return;
  }
  sink[0] = 0;
  sink[1] = 0;
  sink[2] = 0;
  if (x0 + 1 < 0 || y0 + 1 < 0 || x0 >= width || y0 >= height) return;
  addTap(src, width, height, x0, y0, w00, sink);
  addTap(src, width, height, x0 + 1, y0, w01, sink);
  addTap(src, width, height, x0, y0 + 1, w10, sink);
  addTap(src, width, height, x0 + 1, y0 + 1, w11, sink);
}

function addTap(src: Uint8Array, width: number, height: number, x: number, y: number, weight: number, sink: Float32Array): void {
  if (x < 0 || y < 0 || x >= width || y >= height || weight === 0) return;
  const i = (y * width + x) * 3;
  sink[0]! += weight * src[i]!;
  sink[1]! += weight * src[i + 1]!;
  sink[2]! += weight * src[i + 2]!;
}

/**
 * Separable resampling weights for one axis: output index o reads `count[o]` source indices from
 * `start[o]` with weights `weights[o·maxTaps …]` that sum to 1 over the image (taps outside read 0).
 */
interface AxisWeights {
  start: Int32Array;
  count: Int32Array;
  weights: Float32Array;
  maxTaps: number;
}

/**
 * Weights mapping source coordinates [regionStart, regionStart + regionSize) onto outSize samples:
 * an area (box) filter when shrinking, as OpenCV's INTER_AREA, and plain bilinear when enlarging.
 */
function axisWeights(regionStart: number, regionSize: number, outSize: number, sourceSize: number): AxisWeights {
  const step = regionSize / outSize;
  const shrinking = step > 1;
  const maxTaps = shrinking ? Math.ceil(step) + 2 : 2;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * maxTaps);
  for (let o = 0; o < outSize; o++) {
    const base = o * maxTaps;
    if (shrinking) {
      // Output pixel o covers the continuous source span [lo, hi); source pixel i covers [i − ½, i + ½).
      const lo = regionStart + o * step - 0.5;
      const hi = lo + step;
      const first = Math.floor(lo + 0.5);
      const last = Math.ceil(hi + 0.5) - 1;
      let n = 0;
      for (let i = first; i <= last && n < maxTaps; i++) {
        const overlap = Math.min(hi, i + 0.5) - Math.max(lo, i - 0.5);
        if (overlap <= 0) continue;
        if (n === 0) start[o] = i;
        weights[base + (i - start[o]!)] = i >= 0 && i < sourceSize ? overlap / step : 0;
        n = i - start[o]! + 1;
      }
      count[o] = n;
    } else {
      const centre = regionStart + (o + 0.5) * step - 0.5;
      const i0 = Math.floor(centre);
      const f = centre - i0;
      start[o] = i0;
      count[o] = 2;
      weights[base] = i0 >= 0 && i0 < sourceSize ? 1 - f : 0;
      weights[base + 1] = i0 + 1 >= 0 && i0 + 1 < sourceSize ? f : 0;
    }
  }
  return { start, count, weights, maxTaps };
}

/** Reusable scratch memory for resizeRegionToTensor, so repeated calls (every frame) allocate nothing. */
export class ResizeScratch {
  private buffer = new Float32Array(0);
  rows(length: number): Float32Array {
    if (this.buffer.length < length) this.buffer = new Float32Array(length);
    return this.buffer;
  }
}

/**
 * Crops `region` (source pixels, may extend past the image: outside reads 0) and resizes it to
 * outWidth×outHeight, writing the planar tensor directly. Shrinking uses an area filter (no
 * aliasing of small faces), enlarging uses bilinear. Two separable passes over typed arrays.
 */
export function resizeRegionToTensor(
  image: RgbImage,
  region: Box,
  outWidth: number,
  outHeight: number,
  format: TensorFormat,
  out: Float32Array,
  scratch: ResizeScratch = new ResizeScratch(),
): Float32Array {
  const plane = outWidth * outHeight;
  checkTensorLength(out, format, plane);
  const { width, height, data: src } = image;
  const xs = axisWeights(region.x, region.width, outWidth, width);
  const ys = axisWeights(region.y, region.height, outHeight, height);
  // Only the source rows some output row reads are filtered horizontally.
  const rowFirst = Math.max(0, ys.start[0]!);
  const rowLast = Math.min(height - 1, ys.start[outHeight - 1]! + ys.count[outHeight - 1]! - 1);
  const rowCount = Math.max(0, rowLast - rowFirst + 1);
  const rowStride = outWidth * 3;
  const rows = scratch.rows(rowCount * rowStride);
  const xStart = xs.start;
  const xCount = xs.count;
  const xWeights = xs.weights;
  const xTaps = xs.maxTaps;
  for (let y = rowFirst; y <= rowLast; y++) {
    const srcRow = y * width * 3;
    let t = (y - rowFirst) * rowStride;
    for (let o = 0; o < outWidth; o++, t += 3) {
      let r = 0;
      let g = 0;
      let b = 0;
      const first = xStart[o]!;
      const n = xCount[o]!;
      const wBase = o * xTaps;
      for (let k = 0; k < n; k++) {
        const x = first + k;
        if (x < 0 || x >= width) continue;
        const w = xWeights[wBase + k]!;
        const s = srcRow + x * 3;
        r += w * src[s]!;
        g += w * src[s + 1]!;
        b += w * src[s + 2]!;
      }
      rows[t] = r;
      rows[t + 1] = g;
      rows[t + 2] = b;
    }
  }
  const { mean, scale } = format;
  const grey = format.channels === 'grey';
  const rPlane = format.channels === 'bgr' ? 2 * plane : 0;
  const bPlane = format.channels === 'bgr' ? 0 : 2 * plane;
  for (let oy = 0; oy < outHeight; oy++) {
    const first = ys.start[oy]!;
    const n = ys.count[oy]!;
    const wBase = oy * ys.maxTaps;
    const p0 = oy * outWidth;
    for (let ox = 0; ox < outWidth; ox++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = 0; k < n; k++) {
        const y = first + k;
        if (y < rowFirst || y > rowLast) continue;
        const w = ys.weights[wBase + k]!;
        const t = (y - rowFirst) * rowStride + ox * 3;
        r += w * rows[t]!;
        g += w * rows[t + 1]!;
        b += w * rows[t + 2]!;
      }
      const p = p0 + ox;
      if (grey) {
        out[p] = (0.299 * r + 0.587 * g + 0.114 * b - mean) * scale;
      } else {
        out[rPlane + p] = (r - mean) * scale;
        out[plane + p] = (g - mean) * scale;
        out[bPlane + p] = (b - mean) * scale;
      }
    }
  }
  return out;
}

function checkTensorLength(out: Float32Array, format: TensorFormat, plane: number): void {
  const needed = (format.channels === 'grey' ? 1 : 3) * plane;
  if (out.length < needed) throw new RangeError(`tensor buffer holds ${out.length} values; ${needed} needed`);
}
