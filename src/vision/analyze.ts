import type { VisionConfig } from '../config/config.ts';
import { boxIoU } from '../domain/geometry.ts';
import { assessQuality } from '../domain/quality.ts';
import type { FrameLocation, FramePlan } from '../domain/tracker.ts';
import type { Box, DetectedFace, RgbImage } from '../domain/types.ts';
import { alignFace } from './align.ts';
import type { AnalyzeOptions, AnalyzedFace, AnalyzeResult, EmbeddedFace, EmbedFacesOptions, EmbedFacesResult } from './analysis.ts';
import type { FaceEngine, StageProfiler, VisionStage } from './face-engine.ts';
import { timed } from './face-engine.ts';
import { measureFaceStats } from './face-stats.ts';
import { boxFromLandmarks, facePatch, FOLLOW_MIN_CORRELATION, FollowScratch, followStateOf, patchCorrelation, plausibleFollow, SCENE_THUMB_HEIGHT, SCENE_THUMB_WIDTH, sceneChanged, sceneThumbnail } from './follow.ts';
import { decodeJpegEighth, decodeJpegRect, encodeJpeg, readJpegHeader, type PixelRect } from './image.ts';

/** Adds up wall-clock milliseconds per stage; inside a worker with single-threaded sessions this tracks CPU time. */
export class WallClockProfiler implements StageProfiler {
  readonly totalsMs: Partial<Record<VisionStage, number>> = {};

  async measure<T>(stage: VisionStage, fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.totalsMs[stage] = (this.totalsMs[stage] ?? 0) + performance.now() - start;
    }
  }
}

function area(face: DetectedFace): number {
  return face.box.width * face.box.height;
}

/** The face as the embedder sees it (ArcFace 112×112 alignment), JPEG-encoded: the template thumbnail. */
async function alignedJpeg(image: RgbImage, face: DetectedFace, profiler: WallClockProfiler): Promise<Uint8Array> {
  const jpeg = await timed(profiler, 'align', async () => encodeJpeg(alignFace(image, face.landmarks5), 85));
  // An exact-size copy: posting a view to the main thread would clone its whole underlying buffer.
  return new Uint8Array(jpeg);
}

/**
 * The second half of the pipeline for faces found earlier in the same image: a tracker detects
 * every frame but embeds a face only when its identity is uncertain or a better view arrives.
 */
export async function embedDetectedFaces(
  engine: FaceEngine,
  image: RgbImage,
  faces: readonly DetectedFace[],
  options: EmbedFacesOptions,
  profiler: WallClockProfiler = new WallClockProfiler(),
): Promise<EmbedFacesResult> {
  const out: EmbeddedFace[] = [];
  for (const face of faces) {
    const embedded: EmbeddedFace = { embedding: await engine.embed(image, face, profiler) };
    if (options.liveness) embedded.liveness = await engine.liveness(image, face, profiler);
    if (options.alignedThumbnails) embedded.alignedJpeg = await alignedJpeg(image, face, profiler);
    out.push(embedded);
  }
  return { faces: out, timingsMs: profiler.totalsMs };
}

/**
 * The per-image pipeline: detect (with landmarks and pose) → quality → liveness → embedding for
 * the faces the caller asked for. Embedding is the expensive step, so only selected faces pay it.
 */
export async function analyzeImage(
  engine: FaceEngine,
  image: RgbImage,
  options: AnalyzeOptions,
  config: Pick<VisionConfig, 'maxFaces' | 'minFaceScore' | 'quality'>,
  profiler: WallClockProfiler = new WallClockProfiler(),
  scratch: FollowScratch = new FollowScratch(),
  thumbnailOf: () => Promise<Uint8Array> = async () => sceneThumbnail(image),
): Promise<AnalyzeResult> {
  const plan = options.follow;
  let detected: DetectedFace[] | null = null;
  let location: FrameLocation | undefined;
  if (plan?.mode === 'follow') {
    detected = await followFaces(engine, image, plan.faces, options, scratch, profiler);
    if (detected) location = { located: 'followed' };
  } else if (plan?.sceneReference) {
    const thumbnail = await timed(profiler, 'detect', thumbnailOf);
    if (!sceneChanged(plan.sceneReference, thumbnail)) {
      detected = [];
      location = { located: 'static' };
    }
  }
  if (!detected) {
    detected = await engine.detect(
      image,
      { maxFaces: options.maxFaces ?? config.maxFaces, minScore: config.minFaceScore, findSmallFaces: options.findSmallFaces, pose: options.pose },
      profiler,
    );
    if (plan) location = { located: 'detected', ...(detected.length === 0 ? { sceneThumbnail: await thumbnailOf() } : {}) };
  }
  return describeFaces(engine, image, detected, location, options, config, profiler, scratch);
}

/** Quality, follow state, liveness and embeddings of the faces found in an image. */
async function describeFaces(
  engine: FaceEngine,
  image: RgbImage,
  detected: DetectedFace[],
  location: FrameLocation | undefined,
  options: AnalyzeOptions,
  config: Pick<VisionConfig, 'quality'>,
  profiler: WallClockProfiler,
  scratch: FollowScratch,
): Promise<AnalyzeResult> {
  const plan = options.follow;
  const followed = location?.located === 'followed';
  const largest = detected.reduce<DetectedFace | undefined>((best, f) => (!best || area(f) > area(best) ? f : best), undefined);
  const faces: AnalyzedFace[] = [];
  for (const [i, face] of detected.entries()) {
    const stats = await timed(profiler, 'quality', async () => measureFaceStats(image, face.box, scratch.faceStats));
    const analyzed: AnalyzedFace = { ...face, quality: assessQuality(face, stats, config.quality) };
    if (plan && engine.landmarksAt && face.landmarks?.length) {
      // A followed face keeps the state of its last detection; a detected one starts afresh.
      analyzed.follow = followed && plan.mode === 'follow' ? plan.faces[i]!.follow : followStateOf(image, face.box, face.landmarks, face.score, scratch);
    }
    if (options.liveness) analyzed.liveness = await engine.liveness(image, face, profiler);
    if (options.embed === 'all' || (options.embed === 'largest' && face === largest)) {
      analyzed.embedding = await engine.embed(image, face, profiler);
      if (options.alignedThumbnails) analyzed.alignedJpeg = await alignedJpeg(image, face, profiler);
    }
    faces.push(analyzed);
  }
  return { width: image.width, height: image.height, faces, timingsMs: profiler.totalsMs, ...(location ? { location } : {}) };
}

/**
 * Each planned face by the landmark model alone, on its predicted box; its box is re-derived from
 * the landmarks and checked against the patch of its last detection. Null when any face cannot be
 * followed (or the engine cannot follow at all): the caller runs the detector on the frame.
 */
async function followFaces(
  engine: FaceEngine,
  image: RgbImage,
  planned: Extract<FramePlan, { mode: 'follow' }>['faces'],
  options: AnalyzeOptions,
  scratch: FollowScratch,
  profiler: WallClockProfiler,
): Promise<DetectedFace[] | null> {
  if (!engine.landmarksAt || planned.length === 0) return null;
  const faces: DetectedFace[] = [];
  for (const { box: predicted, follow } of planned) {
    const box = clampToImage(predicted, image);
    if (!box) return null;
    const first = await engine.landmarksAt(image, box, { pose: options.pose, score: follow.detectorScore }, profiler);
    const found = boxFromLandmarks(first.landmarks!, follow.anchor, image.width, image.height);
    if (!plausibleFollow(box, found)) return null;
    if (patchCorrelation(facePatch(image, found, scratch), follow.patch) < FOLLOW_MIN_CORRELATION) return null;
    // Far from the predicted box, the landmarks again on the box the detector would have drawn: the
    // landmark model was trained on such boxes, and these points align the face if it gets embedded.
    if (boxIoU(box, found) >= RELANDMARK_BELOW_IOU) faces.push({ ...first, box: found });
    else faces.push(await engine.landmarksAt(image, found, { pose: options.pose, score: follow.detectorScore }, profiler));
  }
  return faces;
}

/**
 * A followed camera frame from a partial decode: only the JPEG's rows and columns around the
 * predicted boxes (each enlarged by FOLLOW_DECODE_MARGIN of its side) are decoded. Every pixel the
 * follow reads — the landmark inputs, the patch check and the quality crop, all inside the
 * predicted and the re-derived boxes — is checked to lie in the decoded part. Null when this frame
 * cannot be handled so (not a follow plan, work that reads more of the image, not a plain JPEG
 * within the limits, a face not followed or reaching out of the decoded part): the caller then
 * decodes the whole frame and runs analyzeImage, exactly as without this path.
 */
export async function analyzeFollowedFrame(
  engine: FaceEngine,
  bytes: Uint8Array,
  options: AnalyzeOptions,
  config: Pick<VisionConfig, 'quality' | 'image'>,
  profiler: WallClockProfiler,
  scratch: FollowScratch,
): Promise<AnalyzeResult | null> {
  const plan = options.follow;
  if (plan?.mode !== 'follow' || plan.faces.length === 0 || !engine.landmarksAt) return null;
  // Liveness, embeddings, thumbnails and the pose model read beyond the face box: whole frames only.
  if (options.embed !== 'none' || options.liveness || options.alignedThumbnails || options.pose !== 'fast') return null;
  const header = readJpegHeader(bytes);
  if (!header) return null;
  const rect = followDecodeRect(plan.faces, header.width, header.height);
  if (!rect) return null;
  const image = await profiler.measure('decode', () => decodeJpegRect(bytes, header, rect, scratch.frame(header.width * header.height * 3), config.image));
  if (!image) return null;
  const detected = await followFaces(engine, image, plan.faces, options, scratch, profiler);
  if (!detected || !detected.every((f) => readsInside(f.box, rect, image))) return null;
  return describeFaces(engine, image, detected, { located: 'followed' }, options, config, profiler, scratch);
}

/** A camera frame's scene thumbnail made from its JPEG decoded at ⅛ scale, with the frame's size. */
export interface JpegScene {
  thumbnail: Uint8Array;
  width: number;
  height: number;
}

/**
 * The scene thumbnail of a camera frame from a ⅛-scale decode (each pixel the mean of an 8 × 8
 * block; about ¾ of a full decode's cost), or null when the frame is not a plain JPEG of at least
 * 8 pixels per thumbnail cell. A camera's frames all take one way or the other, so a frame's
 * thumbnail and its scene reference are always made alike.
 */
export async function jpegScene(bytes: Uint8Array, config: Pick<VisionConfig, 'image'>, profiler: WallClockProfiler): Promise<JpegScene | null> {
  const header = readJpegHeader(bytes);
  if (!header) return null;
  const small = await profiler.measure('decode', () => decodeJpegEighth(bytes, header, config.image, 8 * SCENE_THUMB_WIDTH, 8 * SCENE_THUMB_HEIGHT));
  return small ? { thumbnail: sceneThumbnail(small), width: header.width, height: header.height } : null;
}

/**
 * A camera frame planned 'detect' with a scene reference, checked without a full decode: when its
 * ⅛-scale thumbnail shows nothing changed, the answer is the same 'static' one analyzeImage gives
 * (the detector is not run, nobody is there). Null when the scene changed or the frame cannot be
 * checked so: the caller decodes it all and runs analyzeImage.
 */
export async function analyzeStaticFrame(
  options: AnalyzeOptions,
  profiler: WallClockProfiler,
  scene: () => Promise<JpegScene | null>,
): Promise<AnalyzeResult | null> {
  const plan = options.follow;
  if (plan?.mode !== 'detect' || !plan.sceneReference) return null;
  const current = await scene();
  if (!current || sceneChanged(plan.sceneReference, current.thumbnail)) return null;
  return { width: current.width, height: current.height, faces: [], timingsMs: profiler.totalsMs, location: { located: 'static' } };
}

/** How far around a predicted box a followed frame is decoded, as a fraction of the box's larger side. */
const FOLLOW_DECODE_MARGIN = 0.5;
/** Resampling taps read at most a pixel beyond a region's edges; one more for safety. */
const TAP_REACH_PX = 2;

/** The part of a frame to decode for following these faces: the union of their enlarged predicted boxes. */
function followDecodeRect(faces: readonly { box: Box }[], width: number, height: number): PixelRect | null {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const { box } of faces) {
    const m = FOLLOW_DECODE_MARGIN * Math.max(box.width, box.height) + TAP_REACH_PX;
    x0 = Math.min(x0, box.x - m);
    y0 = Math.min(y0, box.y - m);
    x1 = Math.max(x1, box.x + box.width + m);
    y1 = Math.max(y1, box.y + box.height + m);
  }
  const left = Math.max(0, Math.floor(x0));
  const top = Math.max(0, Math.floor(y0));
  const right = Math.min(width, Math.ceil(x1));
  const bottom = Math.min(height, Math.ceil(y1));
  return right - left >= 8 && bottom - top >= 8 ? { left, top, width: right - left, height: bottom - top } : null;
}

/** True when every pixel read for this box (with the taps' reach, within the image) lies in rect. */
function readsInside(box: Box, rect: PixelRect, image: RgbImage): boolean {
  const x0 = Math.max(0, Math.floor(box.x) - TAP_REACH_PX);
  const y0 = Math.max(0, Math.floor(box.y) - TAP_REACH_PX);
  const x1 = Math.min(image.width, Math.ceil(box.x + box.width) + TAP_REACH_PX);
  const y1 = Math.min(image.height, Math.ceil(box.y + box.height) + TAP_REACH_PX);
  return x0 >= rect.left && y0 >= rect.top && x1 <= rect.left + rect.width && y1 <= rect.top + rect.height;
}

/** A predicted box overlapping the re-derived one this much gives landmarks as good as a second pass (a few px off). */
const RELANDMARK_BELOW_IOU = 0.85;

function clampToImage(box: Box, image: RgbImage): Box | null {
  const x0 = Math.max(0, box.x);
  const y0 = Math.max(0, box.y);
  const x1 = Math.min(image.width, box.x + box.width);
  const y1 = Math.min(image.height, box.y + box.height);
  return x1 - x0 >= 8 && y1 - y0 >= 8 ? { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } : null;
}
