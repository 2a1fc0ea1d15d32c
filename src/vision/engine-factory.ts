import { join } from 'node:path';
import type { VisionConfig } from '../config/config.ts';
import { projectPath } from '../config/paths.ts';
import type { FaceEngine } from './face-engine.ts';
import { HumanFaceEngine } from './human/human-engine.ts';
import { ArcFaceEmbedder } from './onnx/embedder.ts';
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
      return new HumanFaceEngine({ maxFaces: config.maxFaces, minFaceScore: config.minFaceScore, liveness: 'antispoof' });
    case 'human-fr':
      return new HumanFaceEngine({
        maxFaces: config.maxFaces,
        minFaceScore: config.minFaceScore,
        liveness: 'antispoof',
        embedder: new ArcFaceEmbedder(join(modelsDir, 'fr_feature.onnx')),
      });
  }
}
