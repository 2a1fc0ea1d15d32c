/**
 * Passive liveness with fr_liveness.onnx: input 1×3×128×128 raw 0–255 RGB of the face box
 * enlarged 2.7× (kept inside the image, as the package does), output 3 logits; the score is
 * softmax[0], the probability of a live face.
 */
import { scaleBox, shiftBoxInside } from '../../domain/geometry.ts';
import type { Box, DetectedFace, RgbImage } from '../../domain/types.ts';
import { resizeRegionToTensor, ResizeScratch, type TensorFormat } from '../align.ts';
import { timed, type LivenessScorer, type StageProfiler } from '../face-engine.ts';
import { OnnxModel } from './onnx-model.ts';

const INPUT_SIZE = 128;
const LIVENESS_FORMAT: TensorFormat = { channels: 'rgb', mean: 0, scale: 1 };
const CONTEXT_SCALE = 2.7;

export const FR_LIVENESS_MODEL_ID = 'fr_liveness@faceplugin-0.0.1';

export class OnnxLivenessScorer implements LivenessScorer {
  readonly modelId = FR_LIVENESS_MODEL_ID;
  private readonly model: OnnxModel;
  private readonly scratch = new ResizeScratch();

  constructor(modelPath: string) {
    this.model = new OnnxModel(modelPath, [1, 3, INPUT_SIZE, INPUT_SIZE]);
  }

  load(): Promise<void> {
    return this.model.load();
  }

  /** 0..1, 1 = live. `face.box` is the detector's squared face box. */
  async score(image: RgbImage, face: Pick<DetectedFace, 'box' | 'landmarks5'>, profiler?: StageProfiler): Promise<number> {
    return this.model.exclusive(() => timed(profiler, 'liveness', async () => {
      const crop = livenessCrop(face.box, image.width, image.height);
      resizeRegionToTensor(image, crop, INPUT_SIZE, INPUT_SIZE, LIVENESS_FORMAT, this.model.input, this.scratch);
      const logits = (await this.model.infer()).output!.data as Float32Array;
      return softmaxFirst(logits);
    }));
  }

  dispose(): Promise<void> {
    return this.model.dispose();
  }
}

/**
 * The region the model sees: the face box scaled 2.7× about its centre, or less when the image is
 * too small for that (the scale is capped so the crop fits), then shifted to lie inside the image.
 */
export function livenessCrop(box: Box, width: number, height: number): Box {
  const scale = Math.min(CONTEXT_SCALE, (width - 1) / box.width, (height - 1) / box.height);
  return shiftBoxInside(scaleBox(box, Math.max(scale, 0)), width, height);
}

function softmaxFirst(logits: Float32Array): number {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return Math.exp(logits[0]! - max) / sum;
}
