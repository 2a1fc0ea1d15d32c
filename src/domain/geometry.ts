/** Plane geometry for face alignment and box handling. Pure: no I/O. */
import type { Box, Point } from './types.ts';

/**
 * A 2×3 affine matrix, row-major: [m00, m01, m02, m10, m11, m12] maps (x, y) to
 * (m00·x + m01·y + m02, m10·x + m11·y + m12).
 */
export type Affine2x3 = readonly [number, number, number, number, number, number];

/** A similarity transform (uniform scale, rotation, translation) and its inverse. */
export interface SimilarityTransform {
  /** Source → destination: [a, −b, tx; b, a, ty]. */
  matrix: Affine2x3;
  /** Destination → source (what an inverse-mapping warp needs). */
  inverse: Affine2x3;
  scale: number;
  /** Counter-clockwise in a y-up frame, i.e. clockwise as seen in an image (y grows downwards). */
  rotationRad: number;
}

/**
 * The ArcFace 112×112 reference positions of the five alignment points, in Landmarks5 order:
 * the image-left eye, the image-right eye, the nose tip, the image-left and image-right mouth corners.
 */
export const ARCFACE_112_TEMPLATE: readonly Point[] = [
  { x: 38.2946, y: 51.6963 },
  { x: 73.5318, y: 51.5014 },
  { x: 56.0252, y: 71.7366 },
  { x: 41.5493, y: 92.3655 },
  { x: 70.7299, y: 92.2041 },
];

/**
 * Least-squares similarity transform taking `source` points onto `destination` points (Umeyama 1991).
 * In two dimensions the optimum over scaled proper rotations has a closed form: treating points as
 * complex numbers, z = Σ conj(p)·q / Σ|p|² over the centred points. That parametrisation cannot
 * express a reflection, which is exactly Umeyama's reflection correction (det R = +1): a mirrored
 * face is fitted by the best rotation, never flipped back.
 * Throws a RangeError when fewer than two points are given, the counts differ, or all source points coincide.
 */
export function estimateSimilarity(source: readonly Point[], destination: readonly Point[]): SimilarityTransform {
  const n = source.length;
  if (n !== destination.length) throw new RangeError(`point counts differ: ${n} source, ${destination.length} destination`);
  if (n < 2) throw new RangeError(`a similarity transform needs at least 2 point pairs, got ${n}`);
  let meanSx = 0;
  let meanSy = 0;
  let meanDx = 0;
  let meanDy = 0;
  for (let i = 0; i < n; i++) {
    meanSx += source[i]!.x;
    meanSy += source[i]!.y;
    meanDx += destination[i]!.x;
    meanDy += destination[i]!.y;
  }
  meanSx /= n;
  meanSy /= n;
  meanDx /= n;
  meanDy /= n;
  let sourceVariance = 0;
  let dot = 0;
  let cross = 0;
  for (let i = 0; i < n; i++) {
    const px = source[i]!.x - meanSx;
    const py = source[i]!.y - meanSy;
    const qx = destination[i]!.x - meanDx;
    const qy = destination[i]!.y - meanDy;
    sourceVariance += px * px + py * py;
    dot += px * qx + py * qy;
    cross += px * qy - py * qx;
  }
  if (!(sourceVariance > 1e-12)) throw new RangeError('source points coincide: no similarity transform is defined');
  const a = dot / sourceVariance;
  const b = cross / sourceVariance;
  const tx = meanDx - (a * meanSx - b * meanSy);
  const ty = meanDy - (b * meanSx + a * meanSy);
  const matrix: Affine2x3 = [a, -b, tx, b, a, ty];
  return { matrix, inverse: invertAffine(matrix), scale: Math.hypot(a, b), rotationRad: Math.atan2(b, a) };
}

/** Inverse of an affine map; throws a RangeError for a singular one. */
export function invertAffine(m: Affine2x3): Affine2x3 {
  const [m00, m01, m02, m10, m11, m12] = m;
  const det = m00 * m11 - m01 * m10;
  if (Math.abs(det) < 1e-15) throw new RangeError('the affine matrix is singular');
  const i00 = m11 / det;
  const i01 = -m01 / det;
  const i10 = -m10 / det;
  const i11 = m00 / det;
  return [i00, i01, -(i00 * m02 + i01 * m12), i10, i11, -(i10 * m02 + i11 * m12)];
}

export function applyAffine(m: Affine2x3, p: Point): Point {
  return { x: m[0] * p.x + m[1] * p.y + m[2], y: m[3] * p.x + m[4] * p.y + m[5] };
}

export function applyAffineToPoints(m: Affine2x3, points: readonly Point[]): Point[] {
  return points.map((p) => applyAffine(m, p));
}

/** Root-mean-square distance between corresponding points (alignment residual). */
export function rmsDistance(a: readonly Point[], b: readonly Point[]): number {
  if (a.length !== b.length || a.length === 0) throw new RangeError('point sets must be non-empty and of equal length');
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i]!.x - b[i]!.x) ** 2 + (a[i]!.y - b[i]!.y) ** 2;
  return Math.sqrt(sum / a.length);
}

export function boxArea(box: Box): number {
  return Math.max(0, box.width) * Math.max(0, box.height);
}

/** Intersection over union of two boxes, 0 when they do not overlap. */
export function boxIoU(a: Box, b: Box): number {
  const ix = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const iy = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  if (ix <= 0 || iy <= 0) return 0;
  const intersection = ix * iy;
  const union = boxArea(a) + boxArea(b) - intersection;
  return union > 0 ? intersection / union : 0;
}

/** The part of a box inside a width×height image (may have zero size when the box lies outside). */
export function clampBox(box: Box, width: number, height: number): Box {
  const x1 = Math.min(Math.max(box.x, 0), width);
  const y1 = Math.min(Math.max(box.y, 0), height);
  const x2 = Math.min(Math.max(box.x + box.width, 0), width);
  const y2 = Math.min(Math.max(box.y + box.height, 0), height);
  return { x: x1, y: y1, width: x2 - x1, height: y2 - y1 };
}

/** The box scaled by `factor` about its centre. */
export function scaleBox(box: Box, factor: number): Box {
  const width = box.width * factor;
  const height = box.height * factor;
  return { x: box.x + (box.width - width) / 2, y: box.y + (box.height - height) / 2, width, height };
}

/** A square with the same centre; its side defaults to the box's larger side. */
export function squareBox(box: Box, sidePx: number = Math.max(box.width, box.height)): Box {
  return { x: box.x + (box.width - sidePx) / 2, y: box.y + (box.height - sidePx) / 2, width: sidePx, height: sidePx };
}

/**
 * Moves a box (without resizing it) so it lies inside a width×height image, then clamps whatever
 * still sticks out (a box larger than the image). Crops keep their scale near the borders this way.
 */
export function shiftBoxInside(box: Box, width: number, height: number): Box {
  const x = Math.min(Math.max(box.x, 0), Math.max(0, width - box.width));
  const y = Math.min(Math.max(box.y, 0), Math.max(0, height - box.height));
  return clampBox({ x, y, width: box.width, height: box.height }, width, height);
}

export function boxCenter(box: Box): Point {
  return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
}
