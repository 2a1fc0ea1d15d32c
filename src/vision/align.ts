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
      for (let u = 0; u < outWidth; u++) {
        const blockEnd = Math.min(x1, x0 + (u + 1) * factor);
        let r = 0;
        let g = 0;
        let b = 0;
        for (let x = x0 + u * factor; x < blockEnd; x++, s += 3) {
          r += src[s]!;
          g += src[s + 1]!;
          b += src[s + 2]!;
        }
        sums[u * 3]! += r;
        sums[u * 3 + 1]! += g;
        sums[u * 3 + 2]! += b;
        counts[u]! += blockEnd - (x0 + u * factor);
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
 * Separable resampling taps for one axis: output index o reads `count[o]` source indices
 * `index[o·maxTaps …]` with weights `weights[o·maxTaps …]`. Weights of indices outside the image
 * are 0 (border = black) and such indices are clamped into it, so the loops need no bounds checks.
 */
interface AxisTaps {
  index: Int32Array;
  weights: Float32Array;
  count: Int32Array;
  maxTaps: number;
  /** Every output reads exactly two taps (bilinear, or an area sampled at two points). */
  twoTaps: boolean;
  /** Lowest and highest source index read. */
  first: number;
  last: number;
  /** The taps read at least as many values as the span [first, last] holds (most pixels, some twice). */
  dense: boolean;
}

/**
 * Taps mapping source coordinates [regionStart, regionStart + regionSize) onto outSize samples.
 * Enlarging is bilinear. Shrinking is an area (box) filter, like OpenCV's INTER_AREA, while a cell
 * spans at most maxAreaTaps source pixels; beyond that the cell is averaged at maxAreaTaps evenly
 * spaced pixels, which keeps the cost of a 1920-px photo near that of a 640-px frame.
 */
function axisTaps(
  regionStart: number,
  regionSize: number,
  outSize: number,
  sourceSize: number,
  maxAreaTaps: number,
  reuse?: AxisTaps,
): AxisTaps {
  const step = regionSize / outSize;
  const mode = step <= 1 ? 'bilinear' : Math.ceil(step) + 1 <= maxAreaTaps ? 'area' : 'sampled';
  const maxTaps = mode === 'bilinear' ? 2 : mode === 'area' ? Math.ceil(step) + 2 : maxAreaTaps;
  // The arrays of an evicted entry are reused when they are large enough (a followed face's box
  // moves every frame, so its taps are recomputed every frame; they need not be reallocated).
  const fits = reuse !== undefined && reuse.index.length >= outSize * maxTaps && reuse.count.length >= outSize;
  const index = fits ? reuse.index : new Int32Array(outSize * maxTaps);
  const weights = fits ? reuse.weights : new Float32Array(outSize * maxTaps);
  const count = fits ? reuse.count : new Int32Array(outSize);
  const last = sourceSize - 1;
  for (let o = 0; o < outSize; o++) {
    const base = o * maxTaps;
    let n = 0;
    if (mode === 'bilinear') {
      const centre = regionStart + (o + 0.5) * step - 0.5;
      const i0 = Math.floor(centre);
      const f = centre - i0;
      index[base] = i0 < 0 ? 0 : i0 > last ? last : i0;
      weights[base] = i0 >= 0 && i0 <= last ? 1 - f : 0;
      index[base + 1] = i0 + 1 < 0 ? 0 : i0 + 1 > last ? last : i0 + 1;
      weights[base + 1] = i0 + 1 >= 0 && i0 + 1 <= last ? f : 0;
      n = 2;
    } else if (mode === 'area') {
      // Output pixel o covers the source span [lo, hi); source pixel i covers [i − ½, i + ½).
      const lo = regionStart + o * step - 0.5;
      const hi = lo + step;
      for (let i = Math.floor(lo + 0.5); i <= Math.ceil(hi + 0.5) - 1 && n < maxTaps; i++) {
        const overlap = Math.min(hi, i + 0.5) - Math.max(lo, i - 0.5);
        if (overlap <= 0) continue;
        index[base + n] = i < 0 ? 0 : i > last ? last : i;
        weights[base + n] = i >= 0 && i <= last ? overlap / step : 0;
        n++;
      }
    } else {
      const lo = regionStart + o * step - 0.5;
      for (let j = 0; j < maxAreaTaps; j++) {
        const i = Math.round(lo + ((j + 0.5) * step) / maxAreaTaps);
        index[base + n] = i < 0 ? 0 : i > last ? last : i;
        weights[base + n] = i >= 0 && i <= last ? 1 / maxAreaTaps : 0;
        n++;
      }
    }
    count[o] = n;
  }
  let twoTaps = maxTaps === 2;
  let first = last;
  let lastRead = 0;
  let reads = 0;
  for (let o = 0; o < outSize; o++) {
    if (count[o] !== 2) twoTaps = false;
    reads += count[o]!;
    for (let k = o * maxTaps, end = k + count[o]!; k < end; k++) {
      first = Math.min(first, index[k]!);
      lastRead = Math.max(lastRead, index[k]!);
    }
  }
  return { index, weights, count, maxTaps, twoTaps, first, last: lastRead, dense: reads >= lastRead - first + 1 };
}

interface TapsEntry {
  regionStart: number;
  regionSize: number;
  outSize: number;
  sourceSize: number;
  maxAreaTaps: number;
  taps: AxisTaps;
}

/**
 * Reusable memory for resizeRegionToTensor: the intermediate rows, and the taps of the last few
 * geometries (a camera sends frames of one size, so after the first frame they cost nothing).
 */
export class ResizeScratch {
  private rowBuffer = new Float32Array(0);
  private slotBuffer = new Int32Array(0);
  private greyBuffer = new Float32Array(0);
  private accBuffer = new Float64Array(0);
  /** Most recently used first; looked up by exact geometry (no string keys: this runs several times a frame). */
  private readonly taps: TapsEntry[] = [];

  rows(length: number): Float32Array {
    if (this.rowBuffer.length < length) this.rowBuffer = new Float32Array(length);
    return this.rowBuffer;
  }

  accumulator(length: number): Float64Array {
    if (this.accBuffer.length < length) this.accBuffer = new Float64Array(length);
    return this.accBuffer;
  }

  greyRow(length: number): Float32Array {
    if (this.greyBuffer.length < length) this.greyBuffer = new Float32Array(length);
    return this.greyBuffer;
  }

  slots(length: number): Int32Array {
    if (this.slotBuffer.length < length) this.slotBuffer = new Int32Array(length);
    return this.slotBuffer;
  }

  axisTaps(regionStart: number, regionSize: number, outSize: number, sourceSize: number, maxAreaTaps: number): AxisTaps {
    const list = this.taps;
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      if (
        e.regionStart === regionStart &&
        e.regionSize === regionSize &&
        e.outSize === outSize &&
        e.sourceSize === sourceSize &&
        e.maxAreaTaps === maxAreaTaps
      ) {
        if (i > 0) {
          list.splice(i, 1);
          list.unshift(e);
        }
        return e.taps;
      }
    }
    // The least recently used entry is evicted; the taps returned by the call before this one
    // (the other axis of the same resize) are the most recently used, so they are never reused here.
    const evicted = list.length >= ResizeScratch.CACHED_TAPS ? list.pop() : undefined;
    const taps = axisTaps(regionStart, regionSize, outSize, sourceSize, maxAreaTaps, evicted?.taps);
    list.unshift({ regionStart, regionSize, outSize, sourceSize, maxAreaTaps, taps });
    return taps;
  }

  private static readonly CACHED_TAPS = 16;
}

/** Default cap on source pixels averaged per output pixel and axis when shrinking (see axisTaps). */
export const DEFAULT_MAX_AREA_TAPS = 4;

/**
 * Crops `region` (source pixels, edges as a Box has them: pixel i spans [i, i + 1); parts outside
 * the image read 0) and resizes it to outWidth×outHeight, writing the planar tensor directly. Shrinking averages areas (no aliasing of
 * small faces), enlarging is bilinear. Two separable passes over typed arrays; the horizontal pass
 * only visits the source rows the vertical taps read.
 */
export function resizeRegionToTensor(
  image: RgbImage,
  region: Box,
  outWidth: number,
  outHeight: number,
  format: TensorFormat,
  out: Float32Array,
  scratch: ResizeScratch = new ResizeScratch(),
  maxAreaTaps: number = DEFAULT_MAX_AREA_TAPS,
): Float32Array {
  const plane = outWidth * outHeight;
  checkTensorLength(out, format, plane);
  const { width, height, data: src } = image;
  if (format.channels !== 'grey' && maxAreaTaps >= 2 && region.x === 0 && region.y === 0 && region.width === width && region.height === height && width === 2 * outWidth && height === 2 * outHeight) {
    // A whole frame at half size (a 640×480 camera frame for the 320×240 detector): every output
    // pixel is the mean of a 2 × 2 block, as the separable taps give, in one integer pass.
    halveToTensor(src, width, outWidth, outHeight, format, out);
    return out;
  }
  const xs = scratch.axisTaps(region.x, region.width, outWidth, width, maxAreaTaps);
  const ys = scratch.axisTaps(region.y, region.height, outHeight, height, maxAreaTaps);
  // slot[y] = row of the intermediate buffer holding source row y, or −1 when no tap reads it.
  const slot = scratch.slots(height);
  slot.fill(-1, 0, height);
  let rowCount = 0;
  for (let o = 0; o < outHeight; o++) {
    for (let k = o * ys.maxTaps, end = k + ys.count[o]!; k < end; k++) {
      const y = ys.index[k]!;
      if (slot[y] === -1) slot[y] = rowCount++;
    }
  }
  const { mean, scale } = format;
  const grey = format.channels === 'grey';
  // Grey is computed in the horizontal pass (it is linear, so the order does not matter): the
  // intermediate rows and the vertical pass then carry one channel instead of three.
  const rowStride = grey ? outWidth : outWidth * 3;
  const rows = scratch.rows(rowCount * rowStride);
  const greyRow = grey ? scratch.greyRow(xs.last - xs.first + 1) : rows;
  for (let y = 0; y < height; y++) {
    const s0 = slot[y]!;
    if (s0 < 0) continue;
    if (grey) filterRowGrey(src, y * width * 3, xs, outWidth, rows, s0 * rowStride, greyRow);
    else filterRow(src, y * width * 3, xs, outWidth, rows, s0 * rowStride);
  }
  if (grey) {
    verticalGrey(rows, rowStride, slot, ys, outWidth, outHeight, mean, scale, out, scratch.accumulator(outWidth));
    return out;
  }
  const rPlane = format.channels === 'bgr' ? 2 * plane : 0;
  const bPlane = format.channels === 'bgr' ? 0 : 2 * plane;
  const yTaps = ys.maxTaps;
  const yIndex = ys.index;
  const yWeights = ys.weights;
  const yCount = ys.count;
  for (let oy = 0; oy < outHeight; oy++) {
    const kStart = oy * yTaps;
    const kEnd = kStart + yCount[oy]!;
    const p0 = oy * outWidth;
    if (ys.twoTaps) {
      // The common case (camera frames, bilinear crops), unrolled.
      const w0 = yWeights[kStart]!;
      const w1 = yWeights[kStart + 1]!;
      let t0 = slot[yIndex[kStart]!]! * rowStride;
      let t1 = slot[yIndex[kStart + 1]!]! * rowStride;
      for (let ox = 0; ox < outWidth; ox++, t0 += 3, t1 += 3) {
        const p = p0 + ox;
        out[rPlane + p] = (w0 * rows[t0]! + w1 * rows[t1]! - mean) * scale;
        out[plane + p] = (w0 * rows[t0 + 1]! + w1 * rows[t1 + 1]! - mean) * scale;
        out[bPlane + p] = (w0 * rows[t0 + 2]! + w1 * rows[t1 + 2]! - mean) * scale;
      }
      continue;
    }
    for (let ox = 0; ox < outWidth; ox++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = kStart; k < kEnd; k++) {
        const w = yWeights[k]!;
        const t = slot[yIndex[k]!]! * rowStride + ox * 3;
        r += w * rows[t]!;
        g += w * rows[t + 1]!;
        b += w * rows[t + 2]!;
      }
      const p = p0 + ox;
      out[rPlane + p] = (r - mean) * scale;
      out[plane + p] = (g - mean) * scale;
      out[bPlane + p] = (b - mean) * scale;
    }
  }
  return out;
}

/** Each 2 × 2 block of an RGB image (width = 2 · outWidth) averaged into the planar tensor. */
function halveToTensor(src: Uint8Array, width: number, outWidth: number, outHeight: number, format: TensorFormat, out: Float32Array): void {
  const plane = outWidth * outHeight;
  const rPlane = format.channels === 'bgr' ? 2 * plane : 0;
  const bPlane = format.channels === 'bgr' ? 0 : 2 * plane;
  const quarter = format.scale / 4;
  const offset = format.mean * format.scale;
  const stride = width * 3;
  for (let oy = 0; oy < outHeight; oy++) {
    let a = 2 * oy * stride;
    let b = a + stride;
    const p0 = oy * outWidth;
    for (let ox = 0; ox < outWidth; ox++, a += 6, b += 6) {
      const p = p0 + ox;
      out[rPlane + p] = (src[a]! + src[a + 3]! + src[b]! + src[b + 3]!) * quarter - offset;
      out[plane + p] = (src[a + 1]! + src[a + 4]! + src[b + 1]! + src[b + 4]!) * quarter - offset;
      out[bPlane + p] = (src[a + 2]! + src[a + 5]! + src[b + 2]! + src[b + 5]!) * quarter - offset;
    }
  }
}

/** One source row through the horizontal taps into rows[t …] (interleaved RGB floats). */
function filterRow(src: Uint8Array, srcRow: number, xs: AxisTaps, outWidth: number, rows: Float32Array, t: number): void {
  const { index, weights } = xs;
  if (xs.twoTaps) {
    for (let o = 0, k = 0; o < outWidth; o++, k += 2, t += 3) {
      const w0 = weights[k]!;
      const w1 = weights[k + 1]!;
      const s0 = srcRow + index[k]! * 3;
      const s1 = srcRow + index[k + 1]! * 3;
      rows[t] = w0 * src[s0]! + w1 * src[s1]!;
      rows[t + 1] = w0 * src[s0 + 1]! + w1 * src[s1 + 1]!;
      rows[t + 2] = w0 * src[s0 + 2]! + w1 * src[s1 + 2]!;
    }
    return;
  }
  filterRowTaps(src, srcRow, xs, outWidth, rows, t, false);
}

/**
 * One source row through the horizontal taps into rows[t …] as grey (0.299·R + 0.587·G + 0.114·B)
 * floats. The row's pixels are made grey once (into greyRow) and the taps then read one channel:
 * neighbouring outputs share source pixels, so this does the colour conversion once per pixel.
 */
function filterRowGrey(src: Uint8Array, srcRow: number, xs: AxisTaps, outWidth: number, rows: Float32Array, t: number, greyRow: Float32Array): void {
  const { index, weights, count, maxTaps, first, last } = xs;
  if (!xs.dense) {
    filterRowTaps(src, srcRow, xs, outWidth, rows, t, true);
    return;
  }
  for (let i = first, s = srcRow + first * 3, g = 0; i <= last; i++, s += 3, g++) {
    greyRow[g] = 0.299 * src[s]! + 0.587 * src[s + 1]! + 0.114 * src[s + 2]!;
  }
  if (xs.twoTaps) {
    for (let o = 0, k = 0; o < outWidth; o++, k += 2, t++) {
      rows[t] = weights[k]! * greyRow[index[k]! - first]! + weights[k + 1]! * greyRow[index[k + 1]! - first]!;
    }
    return;
  }
  for (let o = 0; o < outWidth; o++, t++) {
    let v = 0;
    for (let k = o * maxTaps, end = k + count[o]!; k < end; k++) v += weights[k]! * greyRow[index[k]! - first]!;
    rows[t] = v;
  }
}

/**
 * Any taps, colour per tap: RGB into rows[t …] (interleaved), or grey (0.299·R + 0.587·G + 0.114·B)
 * one float per output — filterRowGrey's way for taps that skip most source pixels (a small patch
 * of a large box), where making the whole row grey first would cost more.
 */
function filterRowTaps(src: Uint8Array, srcRow: number, xs: AxisTaps, outWidth: number, rows: Float32Array, t: number, grey: boolean): void {
  const { index, weights, count, maxTaps } = xs;
  for (let o = 0; o < outWidth; o++) {
    let r = 0;
    let g = 0;
    let b = 0;
    for (let k = o * maxTaps, end = k + count[o]!; k < end; k++) {
      const w = weights[k]!;
      const s = srcRow + index[k]! * 3;
      r += w * src[s]!;
      g += w * src[s + 1]!;
      b += w * src[s + 2]!;
    }
    if (grey) rows[t++] = 0.299 * r + 0.587 * g + 0.114 * b;
    else {
      rows[t] = r;
      rows[t + 1] = g;
      rows[t + 2] = b;
      t += 3;
    }
  }
}

/** The vertical pass over grey rows (one float per output column) into the single tensor plane. */
function verticalGrey(
  rows: Float32Array,
  rowStride: number,
  slot: Int32Array,
  ys: AxisTaps,
  outWidth: number,
  outHeight: number,
  mean: number,
  scale: number,
  out: Float32Array,
  acc: Float64Array,
): void {
  const { index, weights, count, maxTaps } = ys;
  for (let oy = 0; oy < outHeight; oy++) {
    const kStart = oy * maxTaps;
    const p0 = oy * outWidth;
    if (ys.twoTaps) {
      const w0 = weights[kStart]!;
      const w1 = weights[kStart + 1]!;
      const t0 = slot[index[kStart]!]! * rowStride;
      const t1 = slot[index[kStart + 1]!]! * rowStride;
      for (let ox = 0; ox < outWidth; ox++) out[p0 + ox] = (w0 * rows[t0 + ox]! + w1 * rows[t1 + ox]! - mean) * scale;
      continue;
    }
    // Row by row (one tap's row at a time) so the inner loop is a plain multiply-add over columns.
    const kEnd = kStart + count[oy]!;
    const w0 = weights[kStart]!;
    const t0 = slot[index[kStart]!]! * rowStride;
    for (let ox = 0; ox < outWidth; ox++) acc[ox] = w0 * rows[t0 + ox]!;
    for (let k = kStart + 1; k < kEnd; k++) {
      const w = weights[k]!;
      const t = slot[index[k]!]! * rowStride;
      for (let ox = 0; ox < outWidth; ox++) acc[ox]! += w * rows[t + ox]!;
    }
    for (let ox = 0; ox < outWidth; ox++) out[p0 + ox] = (acc[ox]! - mean) * scale;
  }
}

function checkTensorLength(out: Float32Array, format: TensorFormat, plane: number): void {
  const needed = (format.channels === 'grey' ? 1 : 3) * plane;
  if (out.length < needed) throw new RangeError(`tensor buffer holds ${out.length} values; ${needed} needed`);
}
