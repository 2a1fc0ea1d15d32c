import type { FollowAnchor, FollowState } from '../domain/tracker.ts';
import type { Box, Point, RgbImage } from '../domain/types.ts';
import { resizeRegionToTensor, ResizeScratch, type TensorFormat } from './align.ts';
import { FaceStatsScratch } from './face-stats.ts';
import type { PixelBuffers } from './image.ts';

/*
 * Following a face between detector runs (MediaPipe-style): the landmark model alone runs on the
 * box predicted from the previous frame, the face's box is re-derived from the landmarks it finds,
 * and a grey patch of that box is compared (normalised cross-correlation) with the patch taken when
 * the detector last placed the box. The landmark model has no face-presence output — on an empty
 * background it still returns a face-shaped set of points — so the patch comparison is what tells
 * a followed face from a face that left; a failed comparison sends the frame to the detector.
 *
 * And a cheap scene check for frames with no face tracked: a small grey thumbnail of the frame is
 * compared with the one of the last frame in which the detector found nobody; while nothing in the
 * picture changed, no new face can have appeared and the detector is not run.
 */

/** Side of the grey patch compared between frames (px). Enough detail to tell a face from a wall, cheap to sample. */
export const FOLLOW_PATCH_PX = 24;
/**
 * Lowest normalised cross-correlation between the patch of the followed box and the patch from the
 * last detection for the face to count as followed. A face that moved, turned ±15° or changed
 * expression scores ≥ 0.75 against itself (tests, Pointing'04 sequences); background where the face
 * was, or another face, scores far lower. A miss costs one detector run, so the bar is set high.
 */
export const FOLLOW_MIN_CORRELATION = 0.6;
/** A followed box may change size by at most this factor from the predicted one, else detect. */
const FOLLOW_MAX_SCALE_CHANGE = 1.35;

const GREY: TensorFormat = { channels: 'grey', mean: 0, scale: 1 };

/** Reusable buffers for one worker. */
export class FollowScratch {
  readonly resize = new ResizeScratch();
  /** For the quality statistics of every analysed face: a 112×112 crop and its taps, not made anew per face. */
  readonly faceStats = new FaceStatsScratch();
  private frameBuffer = new Uint8Array(0);
  private frameBufferHeld = false;

  /**
   * Runs fn with somewhere to decode a frame's pixels: one buffer, reused from frame to frame
   * while the size stays (a 640×480 frame is 0.9 MB, which would otherwise be garbage 30 times a
   * second). The pool gives a worker one job at a time; should runs overlap, the later ones
   * allocate their own.
   */
  async withFrameBuffer<T>(fn: (pixels: PixelBuffers | undefined) => Promise<T>): Promise<T> {
    if (this.frameBufferHeld) return fn(undefined);
    this.frameBufferHeld = true;
    try {
      return await fn((bytes) => (this.frameBuffer.length === bytes ? this.frameBuffer : (this.frameBuffer = new Uint8Array(bytes))));
    } finally {
      this.frameBufferHeld = false;
    }
  }
}

/** A zero-mean, unit-norm grey patch of the box (all zeros for a flat region). */
export function facePatch(image: RgbImage, box: Box, scratch: FollowScratch = new FollowScratch()): Float32Array {
  const out = new Float32Array(FOLLOW_PATCH_PX * FOLLOW_PATCH_PX);
  resizeRegionToTensor(image, box, FOLLOW_PATCH_PX, FOLLOW_PATCH_PX, GREY, out, scratch.resize, 2);
  let mean = 0;
  for (let i = 0; i < out.length; i++) mean += out[i]!;
  mean /= out.length;
  let norm = 0;
  for (let i = 0; i < out.length; i++) {
    const v = out[i]! - mean;
    out[i] = v;
    norm += v * v;
  }
  // A flat patch (a blank wall) has no texture to correlate: leave it zero, which correlates 0 with anything.
  const inv = norm > 1e-6 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < out.length; i++) out[i]! *= inv;
  return out;
}

/** Normalised cross-correlation of two patches made by facePatch (−1..1). */
export function patchCorrelation(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Centroid and RMS spread of the landmark points. */
function pointStats(points: readonly Point[]): { x: number; y: number; spread: number } {
  let x = 0;
  let y = 0;
  for (const p of points) {
    x += p.x;
    y += p.y;
  }
  x /= points.length;
  y /= points.length;
  let ss = 0;
  for (const p of points) ss += (p.x - x) ** 2 + (p.y - y) ** 2;
  return { x, y, spread: Math.sqrt(ss / points.length) };
}

/** Where the landmarks sit in the detector's box: kept so that a box re-derived from landmarks matches the detector's. */
export function anchorOf(box: Box, points: readonly Point[]): FollowAnchor {
  const s = pointStats(points);
  const side = Math.sqrt(box.width * box.height);
  return { cx: (s.x - box.x) / box.width, cy: (s.y - box.y) / box.height, spread: s.spread / side, aspect: box.width / box.height };
}

/** The box the detector would place around these landmarks, by the face's anchor (clipped to the image). */
export function boxFromLandmarks(points: readonly Point[], anchor: FollowAnchor, imageWidth: number, imageHeight: number): Box {
  const s = pointStats(points);
  const side = s.spread / anchor.spread;
  const width = side * Math.sqrt(anchor.aspect);
  const height = side / Math.sqrt(anchor.aspect);
  const x0 = Math.max(0, s.x - anchor.cx * width);
  const y0 = Math.max(0, s.y - anchor.cy * height);
  const x1 = Math.min(imageWidth, s.x - anchor.cx * width + width);
  const y1 = Math.min(imageHeight, s.y - anchor.cy * height + height);
  return { x: x0, y: y0, width: Math.max(0, x1 - x0), height: Math.max(0, y1 - y0) };
}

/** True when the re-derived box is plausibly the same face as the predicted one (size and place). */
export function plausibleFollow(predicted: Box, found: Box): boolean {
  if (!(found.width >= 8 && found.height >= 8)) return false;
  const scale = Math.sqrt((found.width * found.height) / (predicted.width * predicted.height));
  if (scale > FOLLOW_MAX_SCALE_CHANGE || scale < 1 / FOLLOW_MAX_SCALE_CHANGE) return false;
  const dx = found.x + found.width / 2 - (predicted.x + predicted.width / 2);
  const dy = found.y + found.height / 2 - (predicted.y + predicted.height / 2);
  return Math.hypot(dx, dy) <= 0.5 * Math.sqrt(predicted.width * predicted.height);
}

/** The follow state of a face the detector just placed. */
export function followStateOf(image: RgbImage, box: Box, points: readonly Point[], detectorScore: number, scratch?: FollowScratch): FollowState {
  return { patch: facePatch(image, box, scratch), anchor: anchorOf(box, points), detectorScore };
}

// ---- scene check ----

/** Scene thumbnail size: cells of 10 × 10 px on a 640 × 480 frame. */
export const SCENE_THUMB_WIDTH = 64;
export const SCENE_THUMB_HEIGHT = 48;
/** A cell whose mean grey level moved by more than this has changed (sensor noise averages far below it). */
const SCENE_CELL_CHANGE = 12;
/** This many changed cells mean something moved: a face entering at a frame's edge changes dozens. */
const SCENE_CHANGED_CELLS = 4;

/** Sampled column (x = step·j) → thumbnail cell, for the last image width and step seen (a camera's frames share them). */
let columnCells = new Uint16Array(0);
let columnCellsKey = '';

function columnCellsFor(width: number, step: number): Uint16Array {
  const key = `${width}/${step}`;
  if (key !== columnCellsKey) {
    columnCells = new Uint16Array(Math.ceil(width / step));
    for (let j = 0; j < columnCells.length; j++) columnCells[j] = Math.min(SCENE_THUMB_WIDTH - 1, Math.floor((step * j * SCENE_THUMB_WIDTH) / width));
    columnCellsKey = key;
  }
  return columnCells;
}

/**
 * Mean grey level per cell of a 64 × 48 grid over the frame, sampling every other pixel (every
 * pixel of an image under 4 pixels per cell). Integer arithmetic (grey × 1000 = 299·R + 587·G + 114·B,
 * exact) and a precomputed column → cell map.
 */
export function sceneThumbnail(image: RgbImage): Uint8Array {
  const { width, height, data } = image;
  const step = width >= 4 * SCENE_THUMB_WIDTH && height >= 4 * SCENE_THUMB_HEIGHT ? 2 : 1;
  const cells = SCENE_THUMB_WIDTH * SCENE_THUMB_HEIGHT;
  // Per cell at most ⌈30/2⌉² samples on a 1920-px image, × 255 000: far below 2³¹.
  const sums = new Int32Array(cells);
  const counts = new Int32Array(cells);
  const cellOf = columnCellsFor(width, step);
  const samples = cellOf.length;
  for (let y = 0; y < height; y += step) {
    const row = Math.min(SCENE_THUMB_HEIGHT - 1, Math.floor((y * SCENE_THUMB_HEIGHT) / height)) * SCENE_THUMB_WIDTH;
    for (let j = 0, i = y * width * 3; j < samples; j++, i += 3 * step) {
      const c = row + cellOf[j]!;
      sums[c]! += 299 * data[i]! + 587 * data[i + 1]! + 114 * data[i + 2]!;
      counts[c]!++;
    }
  }
  const out = new Uint8Array(cells);
  // Rounded mean (halves up): ⌊(sum + 500·n) / (1000·n)⌋.
  for (let c = 0; c < cells; c++) out[c] = counts[c]! > 0 ? Math.floor((sums[c]! + 500 * counts[c]!) / (1000 * counts[c]!)) : 0;
  return out;
}

/** True when the two thumbnails differ by more than sensor noise anywhere that matters. */
export function sceneChanged(reference: Uint8Array, current: Uint8Array): boolean {
  if (reference.length !== current.length) return true;
  let changed = 0;
  for (let c = 0; c < current.length; c++) {
    if (Math.abs(current[c]! - reference[c]!) > SCENE_CELL_CHANGE && ++changed >= SCENE_CHANGED_CELLS) return true;
  }
  return false;
}
