/**
 * 68-point face landmarks with fr_landmark.onnx: input 1×1×64×64 grey / 256 of the face box
 * (the detector's squared box), output 136 values = 68 (x, y) pairs as fractions of that box.
 * Points follow the iBUG 300-W 68-point numbering, 0-based: 36–41 the image-left eye,
 * 42–47 the image-right eye, 30 the nose tip, 48/54 the outer mouth corners, 60/64 the inner ones.
 */
import type { Box, Landmarks5, Point, RgbImage } from '../../domain/types.ts';
import { resizeRegionToTensor, ResizeScratch, type TensorFormat } from '../align.ts';
import { timed, type StageProfiler } from '../face-engine.ts';
import { OnnxModel } from './onnx-model.ts';

const INPUT_SIZE = 64;
const LANDMARK_FORMAT: TensorFormat = { channels: 'grey', mean: 0, scale: 1 / 256 };

export class OnnxLandmarker {
  private readonly model: OnnxModel;
  private readonly scratch = new ResizeScratch();

  constructor(modelPath: string) {
    this.model = new OnnxModel(modelPath, [1, 1, INPUT_SIZE, INPUT_SIZE]);
  }

  load(): Promise<void> {
    return this.model.load();
  }

  /**
   * The 68 points of the face in `box` (source pixels). The box is used as it is: pass the
   * detector's squared box, as the model was trained on.
   */
  async predict(image: RgbImage, box: Box, profiler?: StageProfiler): Promise<Point[]> {
    return this.model.exclusive(() => timed(profiler, 'landmarks', async () => {
      resizeRegionToTensor(image, box, INPUT_SIZE, INPUT_SIZE, LANDMARK_FORMAT, this.model.input, this.scratch);
      const output = (await this.model.infer()).output!.data as Float32Array;
      const points: Point[] = new Array(68);
      // Outputs are fractions of the box, mapped back as the package does: x = box.x + f·box.width.
      for (let i = 0; i < 68; i++) {
        points[i] = { x: box.x + output[2 * i]! * box.width, y: box.y + output[2 * i + 1]! * box.height };
      }
      return points;
    }));
  }

  dispose(): Promise<void> {
    return this.model.dispose();
  }
}

/**
 * The five ArcFace alignment points from the 68 iBUG points (0-based): eye centres = mean of the
 * eyelid points 37, 38, 40, 41 and 43, 44, 46, 47 (the corners are left out: they sit off the
 * pupil line), nose tip 30, mouth corners = mean of outer and inner corner 48 + 60 and 54 + 64.
 */
export function landmarks5From68(points: readonly Point[]): Landmarks5 {
  if (points.length !== 68) throw new RangeError(`expected 68 points, got ${points.length}`);
  const mean = (...indices: number[]): Point => {
    let x = 0;
    let y = 0;
    for (const i of indices) {
      x += points[i]!.x;
      y += points[i]!.y;
    }
    return { x: x / indices.length, y: y / indices.length };
  };
  return [mean(37, 38, 40, 41), mean(43, 44, 46, 47), mean(30), mean(48, 60), mean(54, 64)];
}
