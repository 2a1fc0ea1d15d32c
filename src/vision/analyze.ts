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
import { boxFromLandmarks, facePatch, FOLLOW_MIN_CORRELATION, FollowScratch, followStateOf, patchCorrelation, plausibleFollow, sceneChanged, sceneThumbnail } from './follow.ts';
import { encodeJpeg } from './image.ts';

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
): Promise<AnalyzeResult> {
  const plan = options.follow;
  let detected: DetectedFace[] | null = null;
  let location: FrameLocation | undefined;
  if (plan?.mode === 'follow') {
    detected = await followFaces(engine, image, plan.faces, options, scratch, profiler);
    if (detected) location = { located: 'followed' };
  } else if (plan?.sceneReference) {
    const thumbnail = await timed(profiler, 'detect', async () => sceneThumbnail(image));
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
    if (plan) location = { located: 'detected', ...(detected.length === 0 ? { sceneThumbnail: sceneThumbnail(image) } : {}) };
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

/** A predicted box overlapping the re-derived one this much gives landmarks as good as a second pass (a few px off). */
const RELANDMARK_BELOW_IOU = 0.85;

function clampToImage(box: Box, image: RgbImage): Box | null {
  const x0 = Math.max(0, box.x);
  const y0 = Math.max(0, box.y);
  const x1 = Math.min(image.width, box.x + box.width);
  const y1 = Math.min(image.height, box.y + box.height);
  return x1 - x0 >= 8 && y1 - y0 >= 8 ? { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } : null;
}
