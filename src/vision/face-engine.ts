import type { Box, DetectedFace, HeadPose, Landmarks5, Point, RgbImage } from '../domain/types.ts';

/** An L2-normalised face embedding, tagged with the model that made it. */
export interface Embedding {
  vector: Float32Array;
  /** Vectors of different model ids are never compared. */
  modelId: string;
}

export interface DetectOptions {
  /** Keep at most this many faces, the most confident first. */
  maxFaces: number;
  /** Drop detections below this confidence (0..1); each engine has a calibrated default. */
  minScore?: number;
  /**
   * Look harder for small faces in large images (photos of groups), at a few more detector runs.
   * Camera frames leave it off: a face far from the camera is not ready to be recognised anyway.
   */
  findSmallFaces?: boolean;
  /**
   * 'accurate' (default) runs the engine's best head-pose estimator; 'fast' fits the landmarks
   * only (≈0.1 CPU-ms instead of ≈7, ≈1° more yaw error): enough to track a face between the
   * frames that are embedded, and most of what a tracked frame costs otherwise.
   */
  pose?: 'accurate' | 'fast';
}

/** The stages whose cost the benchmark reports separately. */
export type VisionStage = 'decode' | 'detect' | 'landmarks' | 'pose' | 'align' | 'embed' | 'liveness' | 'quality';

/** Lets a caller time the stages inside an engine call (the benchmark measures CPU time this way). */
export interface StageProfiler {
  measure<T>(stage: VisionStage, fn: () => Promise<T>): Promise<T>;
}

/** Runs fn, timing it under stage when a profiler is given. */
export function timed<T>(profiler: StageProfiler | undefined, stage: VisionStage, fn: () => Promise<T>): Promise<T> {
  return profiler ? profiler.measure(stage, fn) : fn();
}

/**
 * A face engine: one instance per worker thread, no module-level state.
 * `detect` finds faces with landmarks and head pose; `embed` aligns and embeds one of them;
 * `liveness` scores one of them as a live face (1) or a spoof (0).
 */
export interface FaceEngine {
  /** Engine name as chosen in config ('onnx', 'human', …). */
  readonly name: string;
  readonly embeddingModelId: string;
  readonly embeddingDims: number;
  load(): Promise<void>;
  detect(image: RgbImage, options: DetectOptions, profiler?: StageProfiler): Promise<DetectedFace[]>;
  /**
   * Landmarks and pose of a face assumed to be in `box`, without the detector (following a tracked
   * face between detector runs). Engines whose landmarker needs the detector leave it out; callers
   * then detect. `score` is copied from the caller's last detection.
   */
  landmarksAt?(image: RgbImage, box: Box, options: { pose?: 'accurate' | 'fast'; score: number }, profiler?: StageProfiler): Promise<DetectedFace>;
  embed(image: RgbImage, face: DetectedFace, profiler?: StageProfiler): Promise<Embedding>;
  liveness(image: RgbImage, face: DetectedFace, profiler?: StageProfiler): Promise<number>;
  dispose(): Promise<void>;
}

/** Aligns a face by its five points and turns it into an L2-normalised vector. */
export interface FaceEmbedder {
  readonly modelId: string;
  readonly dims: number;
  load(): Promise<void>;
  embed(image: RgbImage, landmarks5: Landmarks5, profiler?: StageProfiler): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** Scores a face as live (1) or a spoof (0). */
export interface LivenessScorer {
  readonly modelId: string;
  load(): Promise<void>;
  score(image: RgbImage, face: Pick<DetectedFace, 'box' | 'landmarks5'>): Promise<number>;
  dispose(): Promise<void>;
}

/** Estimates head pose for a detected face (from its pixels, its landmarks, or both). */
export interface PoseEstimator {
  load(): Promise<void>;
  estimate(image: RgbImage, face: { box: Box; landmarks5: Landmarks5; landmarks?: Point[] }): Promise<HeadPose>;
  dispose(): Promise<void>;
}
