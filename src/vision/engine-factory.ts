import { join } from 'node:path';
import type { VisionConfig } from '../config/config.ts';
import { projectPath } from '../config/paths.ts';
import type { FaceEngine } from './face-engine.ts';
import { FACERES_MODEL_ID, HumanFaceEngine } from './human/human-engine.ts';
import { ArcFaceEmbedder, FR_FEATURE_MODEL_ID } from './onnx/embedder.ts';
import { OnnxFaceEngine } from './onnx/onnx-engine.ts';
import { OnnxPoseEstimator } from './onnx/pose.ts';

/** Builds the engine named in config; each worker thread calls this once and owns the result. */
export function createFaceEngine(config: VisionConfig): FaceEngine {
  const modelsDir = projectPath(config.modelsDir);
  switch (config.engine) {
    case 'onnx':
      return new OnnxFaceEngine({
        modelsDir,
        pose: new OnnxPoseEstimator(join(modelsDir, 'fr_pose.onnx')),
        minFaceScore: config.minFaceScore,
        tiledDetectionAboveSidePx: config.smallFaceTilingAboveSidePx,
      });
    case 'human':
      return new HumanFaceEngine({ maxFaces: config.maxFaces, minFaceScore: config.minFaceScore, liveness: 'both' });
    case 'human-fr':
      return new HumanFaceEngine({
        maxFaces: config.maxFaces,
        minFaceScore: config.minFaceScore,
        liveness: 'both',
        embedder: new ArcFaceEmbedder(join(modelsDir, 'fr_feature.onnx')),
      });
  }
}

/**
 * Bumped whenever the pipeline around a model changes the vectors it makes (alignment, input
 * order, crops), so caches and stored templates made before can be told apart.
 */
export const EMBEDDING_PIPELINE_VERSION = '1';

/** The embedding model id the configured engine will tag its vectors with, without loading it. */
export function embeddingModelIdFor(config: Pick<VisionConfig, 'engine'>): { modelId: string; pipelineVersion: string } {
  const modelId = config.engine === 'human' ? FACERES_MODEL_ID : FR_FEATURE_MODEL_ID;
  return { modelId, pipelineVersion: EMBEDDING_PIPELINE_VERSION };
}

/**
 * Thresholds measured by `facegate eval --dataset ../shared/datasets/faces` for each embedding
 * model (verify: best balanced accuracy, or the TAR@FAR 0.1% threshold when higher; search: the
 * open-set threshold that held wrongly accepted unknowns to ≤ 1%). Cosine scales differ a lot
 * between models, so a threshold is never carried from one model to another.
 */
const CALIBRATED_THRESHOLDS: Record<string, { verify: number; search: number }> = {
  [FR_FEATURE_MODEL_ID]: { verify: 0.4, search: 0.5 },
  [FACERES_MODEL_ID]: { verify: 0.675, search: 0.695 },
};

/** The verification and search thresholds in force: the configured ones, else the model's calibrated ones. */
export function calibratedThresholds(config: { vision: Pick<VisionConfig, 'engine'>; identity: { verifyThreshold?: number; searchThreshold?: number } }): {
  verify: number;
  search: number;
} {
  const calibrated = CALIBRATED_THRESHOLDS[embeddingModelIdFor(config.vision).modelId]!;
  return { verify: config.identity.verifyThreshold ?? calibrated.verify, search: config.identity.searchThreshold ?? calibrated.search };
}
