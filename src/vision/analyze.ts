import type { VisionConfig } from '../config/config.ts';
import { assessQuality } from '../domain/quality.ts';
import type { DetectedFace, RgbImage } from '../domain/types.ts';
import { alignFace } from './align.ts';
import type { AnalyzeOptions, AnalyzedFace, AnalyzeResult, EmbeddedFace, EmbedFacesOptions, EmbedFacesResult } from './analysis.ts';
import type { FaceEngine, StageProfiler, VisionStage } from './face-engine.ts';
import { timed } from './face-engine.ts';
import { measureFaceStats } from './face-stats.ts';
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
): Promise<AnalyzeResult> {
  const detected = await engine.detect(
    image,
    { maxFaces: options.maxFaces ?? config.maxFaces, minScore: config.minFaceScore, findSmallFaces: options.findSmallFaces, pose: options.pose },
    profiler,
  );
  const largest = detected.reduce<DetectedFace | undefined>((best, f) => (!best || area(f) > area(best) ? f : best), undefined);
  const faces: AnalyzedFace[] = [];
  for (const face of detected) {
    const stats = await timed(profiler, 'quality', async () => measureFaceStats(image, face.box));
    const analyzed: AnalyzedFace = { ...face, quality: assessQuality(face, stats, config.quality) };
    if (options.liveness) analyzed.liveness = await engine.liveness(image, face, profiler);
    if (options.embed === 'all' || (options.embed === 'largest' && face === largest)) {
      analyzed.embedding = await engine.embed(image, face, profiler);
      if (options.alignedThumbnails) analyzed.alignedJpeg = await alignedJpeg(image, face, profiler);
    }
    faces.push(analyzed);
  }
  return { width: image.width, height: image.height, faces, timingsMs: profiler.totalsMs };
}
