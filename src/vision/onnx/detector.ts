/**
 * Face detection with fr_detect.onnx (an Ultra-Light-Fast-Generic-Face-Detector RFB-320 export:
 * input 1×3×240×320 RGB, (v − 127) / 128; outputs `scores` 1×4420×2, already softmaxed
 * [background, face], and `boxes` 1×4420×4, already decoded to corners (x1, y1, x2, y2) as
 * fractions of the input, so no priors are needed here).
 */
import { clampBox, squareBox } from '../../domain/geometry.ts';
import type { Box, RgbImage } from '../../domain/types.ts';
import { resizeRegionToTensor, ResizeScratch, type TensorFormat } from '../align.ts';
import { timed, type StageProfiler } from '../face-engine.ts';
import { OnnxModel } from './onnx-model.ts';

const INPUT_WIDTH = 320;
const INPUT_HEIGHT = 240;
const PRIOR_COUNT = 4420;
const DETECT_FORMAT: TensorFormat = { channels: 'rgb', mean: 127, scale: 1 / 128 };
/**
 * Source pixels averaged per input pixel and axis. 2 found the same faces with the same scores as
 * an exact area filter on the demo photos and on composites of small faces, at a third of its cost.
 */
const DETECT_AREA_TAPS = 2;

/** The package's demo threshold. */
export const DEFAULT_MIN_FACE_SCORE = 0.65;
export const DEFAULT_NMS_IOU = 0.4;

/**
 * Faces up to this height, in 320×240 input pixels of the full-frame pass, are left to the tiled
 * pass when it runs; larger ones it finds reliably itself (its smallest prior is 10 px).
 */
const TILE_PASS_MAX_FACE_INPUT_PX = 32;

export interface FaceDetectorOptions {
  /** Default minimum detector score, 0..1, when a call gives none. */
  minScore?: number;
  /** Overlap (IoU) above which the less confident of two boxes is dropped. */
  nmsIoU?: number;
  /**
   * When the image's larger side exceeds this many pixels, also scan overlapping tiles (two across
   * the larger side) for faces too small for the 320×240 full-frame pass, on calls that ask for it
   * (findSmallFaces). 0 (default) = never.
   */
  tiledPassAboveSidePx?: number;
}

export interface FaceBox {
  /**
   * A square of side = the detector box's height around the detector box's centre, clipped to the
   * image: the crop the landmark, pose and liveness models were fed in the package they come from.
   */
  box: Box;
  /** The detector's own box, in source pixels, clipped to the image. */
  rawBox: Box;
  score: number;
}

export interface DetectCallOptions {
  maxFaces: number;
  minScore?: number;
  /** Run the tiled pass for small faces (when the image is larger than tiledPassAboveSidePx). */
  findSmallFaces?: boolean;
}

/** Candidate boxes in source pixels, as parallel arrays. */
export interface Candidates {
  x1: number[];
  y1: number[];
  x2: number[];
  y2: number[];
  score: number[];
  /** True for candidates of the tiled pass, which must not sit inside a full-frame face. */
  fromTile: boolean[];
}

export function emptyCandidates(): Candidates {
  return { x1: [], y1: [], x2: [], y2: [], score: [], fromTile: [] };
}

export class OnnxFaceDetector {
  private readonly model: OnnxModel;
  private readonly scratch = new ResizeScratch();
  private readonly minScore: number;
  private readonly nmsIoU: number;
  private readonly tiledPassAboveSidePx: number;

  constructor(modelPath: string, options: FaceDetectorOptions = {}) {
    this.model = new OnnxModel(modelPath, [1, 3, INPUT_HEIGHT, INPUT_WIDTH]);
    this.minScore = options.minScore ?? DEFAULT_MIN_FACE_SCORE;
    this.nmsIoU = options.nmsIoU ?? DEFAULT_NMS_IOU;
    this.tiledPassAboveSidePx = options.tiledPassAboveSidePx ?? 0;
  }

  load(): Promise<void> {
    return this.model.load();
  }

  /** Faces in the image, the most confident first, at most maxFaces. */
  async detect(image: RgbImage, options: DetectCallOptions, profiler?: StageProfiler): Promise<FaceBox[]> {
    const minScore = options.minScore ?? this.minScore;
    return this.model.exclusive(() => timed(profiler, 'detect', async () => {
      const candidates = emptyCandidates();
      const full = { x: 0, y: 0, width: image.width, height: image.height };
      await this.scanRegion(image, full, minScore, candidates, undefined);
      if (options.findSmallFaces && this.tiledPassAboveSidePx > 0 && Math.max(image.width, image.height) > this.tiledPassAboveSidePx) {
        const maxFacePx = TILE_PASS_MAX_FACE_INPUT_PX * Math.max(image.width / INPUT_WIDTH, image.height / INPUT_HEIGHT);
        // Its false positives (hands, blinds) scored 0.69–0.74 on composites of the demo photos while
        // the small faces it found scored ≥ 0.9: it asks for more evidence than the full pass.
        const tileMinScore = minScore + (1 - minScore) / 2;
        for (const tile of tileGrid(image.width, image.height, maxFacePx)) {
          await this.scanRegion(image, tile, minScore, candidates, { image: full, maxFacePx, minScore: tileMinScore });
        }
      }
      const kept = nonMaximumSuppression(candidates, this.nmsIoU, options.maxFaces);
      return kept.map((i) => toFaceBox(candidates, i, image.width, image.height));
    }));
  }

  dispose(): Promise<void> {
    return this.model.dispose();
  }

  /**
   * Runs the model over one region of the image (resized to 320×240) and appends its candidates.
   * For a tile, only faces small enough to be the tiled pass's business and clear of the tile's
   * inner edges (where a larger face would be cut) are kept.
   */
  private async scanRegion(
    image: RgbImage,
    region: Box,
    minScore: number,
    into: Candidates,
    tile: { image: Box; maxFacePx: number; minScore: number } | undefined,
  ): Promise<void> {
    resizeRegionToTensor(image, region, INPUT_WIDTH, INPUT_HEIGHT, DETECT_FORMAT, this.model.input, this.scratch, DETECT_AREA_TAPS);
    const { scores, boxes } = await this.runModel();
    const edgeMarginPx = 2 * (region.width / INPUT_WIDTH);
    for (let k = 0; k < PRIOR_COUNT; k++) {
      const score = scores[2 * k + 1]!;
      if (score < minScore) continue;
      const x1 = region.x + boxes[4 * k]! * region.width;
      const y1 = region.y + boxes[4 * k + 1]! * region.height;
      const x2 = region.x + boxes[4 * k + 2]! * region.width;
      const y2 = region.y + boxes[4 * k + 3]! * region.height;
      if (!(x2 > x1 && y2 > y1)) continue;
      if (tile) {
        if (score < tile.minScore || y2 - y1 > tile.maxFacePx) continue;
        const touchesInnerEdge =
          (x1 < region.x + edgeMarginPx && region.x > 0) ||
          (y1 < region.y + edgeMarginPx && region.y > 0) ||
          (x2 > region.x + region.width - edgeMarginPx && region.x + region.width < tile.image.width) ||
          (y2 > region.y + region.height - edgeMarginPx && region.y + region.height < tile.image.height);
        if (touchesInnerEdge) continue;
      }
      into.x1.push(x1);
      into.y1.push(y1);
      into.x2.push(x2);
      into.y2.push(y2);
      into.score.push(score);
      into.fromTile.push(tile !== undefined);
    }
  }

  private async runModel(): Promise<{ scores: Float32Array; boxes: Float32Array }> {
    const result = await this.model.infer();
    return { scores: result.scores!.data as Float32Array, boxes: result.boxes!.data as Float32Array };
  }
}

function toFaceBox(c: Candidates, i: number, width: number, height: number): FaceBox {
  const raw = { x: c.x1[i]!, y: c.y1[i]!, width: c.x2[i]! - c.x1[i]!, height: c.y2[i]! - c.y1[i]! };
  return {
    box: clampBox(squareBox(raw, raw.height), width, height),
    rawBox: clampBox(raw, width, height),
    score: c.score[i]!,
  };
}

/**
 * Greedy non-maximum suppression by score: returns the indices kept, the most confident first.
 * A candidate is dropped when its IoU with a kept box exceeds iouThreshold, and a tiled-pass
 * candidate also when most of it (over half its area) lies inside a kept box (a face part seen
 * up close).
 */
export function nonMaximumSuppression(candidates: Candidates, iouThreshold: number, maxKept: number): number[] {
  const { x1, y1, x2, y2, score, fromTile } = candidates;
  const order = score.map((_, i) => i).sort((a, b) => score[b]! - score[a]!);
  const kept: number[] = [];
  for (const i of order) {
    if (kept.length >= maxKept) break;
    const area = (x2[i]! - x1[i]!) * (y2[i]! - y1[i]!);
    let suppressed = false;
    for (const k of kept) {
      const iw = Math.min(x2[i]!, x2[k]!) - Math.max(x1[i]!, x1[k]!);
      const ih = Math.min(y2[i]!, y2[k]!) - Math.max(y1[i]!, y1[k]!);
      if (iw <= 0 || ih <= 0) continue;
      const intersection = iw * ih;
      const keptArea = (x2[k]! - x1[k]!) * (y2[k]! - y1[k]!);
      const iou = intersection / (area + keptArea - intersection);
      if (iou > iouThreshold || ((fromTile[i] || fromTile[k]) && intersection > 0.5 * Math.min(area, keptArea))) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) kept.push(i);
  }
  return kept;
}

/**
 * Tiles for the small-face pass: two across the image's larger side, 4:3 (the model's own aspect,
 * so faces are not stretched), overlapping by at least overlapPx so every face up to that size
 * lies whole inside some tile.
 */
export function tileGrid(width: number, height: number, overlapPx: number): Box[] {
  const landscape = width * 3 >= height * 4;
  let tileWidth: number;
  let tileHeight: number;
  if (landscape) {
    tileWidth = Math.min(width, (width + overlapPx) / 2);
    tileHeight = Math.min(height, (tileWidth * 3) / 4);
  } else {
    tileHeight = Math.min(height, (height + overlapPx) / 2);
    tileWidth = Math.min(width, (tileHeight * 4) / 3);
  }
  const positions = (size: number, tile: number): number[] => {
    if (tile >= size) return [0];
    const count = Math.ceil((size - overlapPx) / (tile - overlapPx));
    const stride = (size - tile) / (count - 1);
    return Array.from({ length: count }, (_, i) => i * stride);
  };
  const tiles: Box[] = [];
  for (const y of positions(height, tileHeight)) {
    for (const x of positions(width, tileWidth)) tiles.push({ x, y, width: tileWidth, height: tileHeight });
  }
  return tiles;
}
