/**
 * The all-ONNX face engine (the default): fr_detect → fr_landmark (68 points → 5) → head pose
 * (injected) → fr_feature embedding and fr_liveness on request. No tfjs in the path.
 */
import { join } from 'node:path';
import type { Box, DetectedFace, RgbImage } from '../../domain/types.ts';
import { timed, type DetectOptions, type Embedding, type FaceEngine, type PoseEstimator, type StageProfiler } from '../face-engine.ts';
import { OnnxFaceDetector } from './detector.ts';
import { ArcFaceEmbedder, FR_FEATURE_DIMS, FR_FEATURE_MODEL_ID } from './embedder.ts';
import { landmarks5From68, OnnxLandmarker } from './landmarks.ts';
import { OnnxLivenessScorer } from './liveness.ts';
import { LandmarkPoseEstimator } from './pose.ts';

/** The model files this engine needs, relative to its models directory. */
export const ONNX_ENGINE_MODEL_FILES = {
  detect: 'fr_detect.onnx',
  landmarks: 'fr_landmark.onnx',
  feature: 'fr_feature.onnx',
  liveness: 'fr_liveness.onnx',
} as const;

export interface OnnxFaceEngineOptions {
  /** Directory holding the fr_*.onnx files (models/faceplugin). */
  modelsDir: string;
  pose: PoseEstimator;
  /** Detector confidence below which a face is dropped when a call gives none (default 0.65). */
  minFaceScore?: number;
  /**
   * Scan overlapping tiles for small faces when the image's larger side exceeds this (pixels);
   * 0 or unset = never. Costs ≈ 4 more detector runs on a 1920-px photo.
   */
  tiledDetectionAboveSidePx?: number;
}

export class OnnxFaceEngine implements FaceEngine {
  readonly name = 'onnx';
  readonly embeddingModelId = FR_FEATURE_MODEL_ID;
  readonly embeddingDims = FR_FEATURE_DIMS;
  private readonly detector: OnnxFaceDetector;
  private readonly landmarker: OnnxLandmarker;
  private readonly embedder: ArcFaceEmbedder;
  private readonly livenessScorer: OnnxLivenessScorer;
  private readonly pose: PoseEstimator;
  private readonly fastPose = new LandmarkPoseEstimator();

  constructor(options: OnnxFaceEngineOptions) {
    const path = (file: string): string => join(options.modelsDir, file);
    this.detector = new OnnxFaceDetector(path(ONNX_ENGINE_MODEL_FILES.detect), {
      minScore: options.minFaceScore,
      tiledPassAboveSidePx: options.tiledDetectionAboveSidePx ?? 0,
    });
    this.landmarker = new OnnxLandmarker(path(ONNX_ENGINE_MODEL_FILES.landmarks));
    this.embedder = new ArcFaceEmbedder(path(ONNX_ENGINE_MODEL_FILES.feature));
    this.livenessScorer = new OnnxLivenessScorer(path(ONNX_ENGINE_MODEL_FILES.liveness));
    this.pose = options.pose;
  }

  /** Opens (and warms up) every session; a missing model file throws ModelMissingError naming it. */
  async load(): Promise<void> {
    // Sequential: a missing file fails fast, and loading does not compete with other workers for the cores.
    await this.detector.load();
    await this.landmarker.load();
    await this.embedder.load();
    await this.livenessScorer.load();
    await this.pose.load();
  }

  async detect(image: RgbImage, options: DetectOptions, profiler?: StageProfiler): Promise<DetectedFace[]> {
    const boxes = await this.detector.detect(image, { maxFaces: options.maxFaces, minScore: options.minScore, findSmallFaces: options.findSmallFaces }, profiler);
    const faces: DetectedFace[] = [];
    for (const { box, score } of boxes) {
      if (box.width < 1 || box.height < 1) continue;
      const landmarks = await this.landmarker.predict(image, box, profiler);
      const landmarks5 = landmarks5From68(landmarks);
      const estimator = options.pose === 'fast' ? this.fastPose : this.pose;
      const pose = await timed(profiler, 'pose', () => estimator.estimate(image, { box, landmarks5, landmarks }));
      faces.push({ box, score, landmarks5, landmarks, pose });
    }
    return faces;
  }

  async landmarksAt(image: RgbImage, box: Box, options: { pose?: 'accurate' | 'fast'; score: number }, profiler?: StageProfiler): Promise<DetectedFace> {
    const landmarks = await this.landmarker.predict(image, box, profiler);
    const landmarks5 = landmarks5From68(landmarks);
    const estimator = options.pose === 'fast' ? this.fastPose : this.pose;
    const pose = await timed(profiler, 'pose', () => estimator.estimate(image, { box, landmarks5, landmarks }));
    return { box, score: options.score, landmarks5, landmarks, pose };
  }

  async embed(image: RgbImage, face: DetectedFace, profiler?: StageProfiler): Promise<Embedding> {
    const vector = await this.embedder.embed(image, face.landmarks5, profiler);
    return { vector, modelId: this.embeddingModelId };
  }

  async liveness(image: RgbImage, face: DetectedFace, profiler?: StageProfiler): Promise<number> {
    return this.livenessScorer.score(image, face, profiler);
  }

  async dispose(): Promise<void> {
    await this.detector.dispose();
    await this.landmarker.dispose();
    await this.embedder.dispose();
    await this.livenessScorer.dispose();
    await this.pose.dispose();
  }
}
