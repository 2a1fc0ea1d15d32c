/**
 * Head pose for the ONNX route, behind the PoseEstimator interface:
 * - OnnxPoseEstimator (the engine's choice): yaw and pitch from fr_pose.onnx, roll from the eye line;
 * - FrPoseEstimator: fr_pose.onnx alone (HopeNet-style: 66 bins of 3° per angle, the angle is the
 *   softmax expectation idx·3 − 99), on the face box enlarged by a fifth;
 * - LandmarkPoseEstimator: a fit of a generic 3D face to the 68 (or 5) landmarks, no pixels.
 * Measured on Pointing'04 by bench/pose.bench.ts.
 */
import { fitPose5, fitPose68, rollFromEyesDeg } from '../../domain/pose.ts';
import type { Box, HeadPose, Landmarks5, Point, RgbImage } from '../../domain/types.ts';
import { resizeRegionToTensor, ResizeScratch, type TensorFormat } from '../align.ts';
import type { PoseEstimator } from '../face-engine.ts';
import { OnnxModel } from './onnx-model.ts';

const INPUT_SIZE = 224;
const BINS = 66;
const IMAGENET_MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255] as const;
const IMAGENET_STD = [0.229 * 255, 0.224 * 255, 0.225 * 255] as const;

export interface FrPoseOptions {
  /**
   * Channel order fed to the model (default RGB). The package's browser code ends up feeding BGR (it
   * applies OpenCV's BGR→RGB swap to canvas pixels that are already RGBA); RGB measured better on yaw.
   */
  channels?: 'rgb' | 'bgr';
  /**
   * The crop is the face box (the detector's square) scaled by this factor about its centre. The
   * package uses 1.5; 1.0–1.2 measured best on Pointing'04 (one pass, median yaw error for
   * |yaw| ≤ 45°: 5.7° at 1.2, 6.4° at 1.5, 13° at 1.8).
   */
  cropScale?: number;
  /**
   * Also run the horizontally mirrored crop and average (yaw, roll negated for the mirror):
   * makes a mirrored face give exactly the negated yaw and roll, and lowers the error on Pointing'04
   * (median yaw error 5.7° → 4.9°), for one more run of the model (≈ 3 CPU-ms).
   */
  flipAverage?: boolean;
}

/** Head pose from fr_pose.onnx. The box is the engine's face box (the detector's square). */
export class FrPoseEstimator implements PoseEstimator {
  private readonly model: OnnxModel;
  private readonly scratch = new ResizeScratch();
  private readonly format: TensorFormat;
  private readonly cropScale: number;
  private readonly flipAverage: boolean;

  constructor(modelPath: string, options: FrPoseOptions = {}) {
    this.model = new OnnxModel(modelPath, [1, 3, INPUT_SIZE, INPUT_SIZE]);
    this.format = { channels: options.channels ?? 'rgb', mean: 0, scale: 1 };
    this.cropScale = options.cropScale ?? 1.2;
    this.flipAverage = options.flipAverage ?? true;
  }

  load(): Promise<void> {
    return this.model.load();
  }

  estimate(image: RgbImage, face: { box: Box; landmarks5?: Landmarks5; landmarks?: Point[] }): Promise<HeadPose> {
    return this.model.exclusive(async () => {
      const input = this.model.input;
      const crop = poseCrop(face.box, this.cropScale, image.width, image.height);
      resizeRegionToTensor(image, crop, INPUT_SIZE, INPUT_SIZE, this.format, input, this.scratch);
      normalizeInPlace(input, INPUT_SIZE);
      const direct = await this.run();
      if (!this.flipAverage) return direct;
      mirrorInPlace(input, INPUT_SIZE);
      const mirrored = await this.run();
      return {
        yawDeg: (direct.yawDeg - mirrored.yawDeg) / 2,
        pitchDeg: (direct.pitchDeg + mirrored.pitchDeg) / 2,
        rollDeg: (direct.rollDeg - mirrored.rollDeg) / 2,
      };
    });
  }

  dispose(): Promise<void> {
    return this.model.dispose();
  }

  private async run(): Promise<HeadPose> {
    const out = await this.model.infer();
    // The model's yaw is positive towards the subject's own right (checked on Pointing'04), the
    // opposite of ours; its pitch (up) and roll (checked on rotated photos) share our signs.
    return {
      yawDeg: -binExpectationDeg(out.output!.data as Float32Array),
      pitchDeg: binExpectationDeg(out['617']!.data as Float32Array),
      rollDeg: binExpectationDeg(out['618']!.data as Float32Array),
    };
  }
}

/** Softmax expectation over 66 bins of 3°, centred so bin 33 is 0° (HopeNet's decoding). */
export function binExpectationDeg(logits: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < BINS; i++) max = Math.max(max, logits[i]!);
  let sum = 0;
  let weighted = 0;
  for (let i = 0; i < BINS; i++) {
    const p = Math.exp(logits[i]! - max);
    sum += p;
    weighted += p * i;
  }
  return (weighted / sum) * 3 - 99;
}

/** The box scaled about its centre, then clipped to the image. */
export function poseCrop(box: Box, scale: number, width: number, height: number): Box {
  const w = box.width * scale;
  const h = box.height * scale;
  const x1 = Math.max(0, box.x + (box.width - w) / 2);
  const y1 = Math.max(0, box.y + (box.height - h) / 2);
  const x2 = Math.min(width, box.x + (box.width + w) / 2);
  const y2 = Math.min(height, box.y + (box.height + h) / 2);
  return { x: x1, y: y1, width: Math.max(1, x2 - x1), height: Math.max(1, y2 - y1) };
}

/**
 * Turns the crop, resized with raw 0..255 values, into what the model wants: each plane
 * normalised with the ImageNet mean/std of its position (plane 0 takes R's, as the package does
 * whatever the channel order).
 */
function normalizeInPlace(tensor: Float32Array, size: number): void {
  const plane = size * size;
  for (let c = 0; c < 3; c++) {
    const mean = IMAGENET_MEAN[c]!;
    const scale = 1 / IMAGENET_STD[c]!;
    for (let i = c * plane; i < (c + 1) * plane; i++) tensor[i] = (tensor[i]! - mean) * scale;
  }
}

/** Mirrors every row of a planar 3×size×size tensor (the crop of the horizontally flipped image). */
function mirrorInPlace(tensor: Float32Array, size: number): void {
  for (let row = 0; row < 3 * size * size; row += size) tensor.subarray(row, row + size).reverse();
}

export interface LandmarkPoseOptions {
  /** Which fit to use: the 68-point one when the face has 68 points (default), or always the 5-point one. */
  points?: 68 | 5;
}

/**
 * Head pose from landmarks alone (no pixels): the 68-point fit when the face has 68 points,
 * else the coarser five-point fit.
 */
export class LandmarkPoseEstimator implements PoseEstimator {
  constructor(private readonly options: LandmarkPoseOptions = {}) {}

  async load(): Promise<void> {}

  async estimate(_image: RgbImage, face: { box: Box; landmarks5: Landmarks5; landmarks?: Point[] }): Promise<HeadPose> {
    return landmarkPose(face, this.options.points ?? 68);
  }

  async dispose(): Promise<void> {}
}

function landmarkPose(face: { landmarks5: Landmarks5; landmarks?: Point[] }, points: 68 | 5): HeadPose {
  return points === 68 && face.landmarks?.length === 68 ? fitPose68(face.landmarks).pose : fitPose5(face.landmarks5).pose;
}

export interface OnnxPoseOptions extends FrPoseOptions {
  /**
   * Where roll comes from: the eye line of the five points (default: it followed known in-plane
   * rotations best, 1.0° median error against 1.7° for the 68-point fit and 2.5° for fr_pose),
   * the 68-point fit, or fr_pose.
   */
  roll?: 'eyes' | 'landmarks' | 'model';
}

/**
 * The ONNX route's pose: yaw and pitch from fr_pose.onnx (with its mirrored pass, so a mirrored
 * face gives the negated yaw), roll from the eye line of the five landmarks.
 */
export class OnnxPoseEstimator implements PoseEstimator {
  private readonly model: FrPoseEstimator;
  private readonly roll: 'eyes' | 'landmarks' | 'model';

  constructor(modelPath: string, options: OnnxPoseOptions = {}) {
    this.model = new FrPoseEstimator(modelPath, options);
    this.roll = options.roll ?? 'eyes';
  }

  load(): Promise<void> {
    return this.model.load();
  }

  async estimate(image: RgbImage, face: { box: Box; landmarks5: Landmarks5; landmarks?: Point[] }): Promise<HeadPose> {
    const pose = await this.model.estimate(image, face);
    if (this.roll === 'eyes') return { ...pose, rollDeg: rollFromEyesDeg(face.landmarks5) };
    if (this.roll === 'landmarks') return { ...pose, rollDeg: landmarkPose(face, 68).rollDeg };
    return pose;
  }

  dispose(): Promise<void> {
    return this.model.dispose();
  }
}
