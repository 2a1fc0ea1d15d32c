import type { DetectedFace, Point, RgbImage } from '../../domain/types.ts';
import { VisionError } from '../errors.ts';
import type { DetectOptions, Embedding, FaceEmbedder, FaceEngine, StageProfiler } from '../face-engine.ts';
import { timed } from '../face-engine.ts';
import { cropFaceSquare } from './face-crop.ts';
import type { GraphModel, HumanTf, LoadedHuman, Tensor } from './human-loader.ts';
import { imageTensor, loadHuman } from './human-loader.ts';
import { l2Normalize } from '../../domain/metrics.ts';
import type { FaceSquare } from './mesh-geometry.ts';
import {
  clampToImage,
  faceSquareFromBox,
  landmarks5FromMesh,
  MESH_POINT_COUNT,
  pointsBox,
  poseFromMesh,
} from './mesh-geometry.ts';

export type HumanLivenessModel = 'antispoof' | 'liveness' | 'both';

export interface HumanFaceEngineOptions {
  /** Faces Human keeps per image unless a detect() call asks for another number. */
  maxFaces: number;
  /** BlazeFace score below which a face is dropped; default DEFAULT_HUMAN_MIN_FACE_SCORE. */
  minFaceScore?: number;
  /** Embeds with this embedder (aligned by the mesh's five points) instead of faceres: engine 'human-fr'. */
  embedder?: FaceEmbedder;
  /** Which of Human's liveness models scores a face; 'both' averages the two. */
  liveness: HumanLivenessModel;
}

/**
 * BlazeFace score below which a face is dropped. Every real face in the demo photos, Pointing'04 and
 * the faces set scored ≥ 0.53; every detection below 0.5 there was a false one (an eye, a badge).
 */
export const DEFAULT_HUMAN_MIN_FACE_SCORE = 0.5;
/**
 * Human applies its threshold to the mesh's confidence too; a profile face in sample2.jpg has a mesh
 * confidence of 0.35, so Human's own threshold stays at its default and ours filters BlazeFace's score.
 */
const HUMAN_MIN_CONFIDENCE = 0.2;
export const FACERES_MODEL_ID = 'faceres@human-3.3.6';
const FACERES_DIMS = 1024;
/** Human crops a face at the mesh model's input size and resizes that crop for each face model. */
const FACE_CROP_PX = 192;

/**
 * The face engine on @vladmandic/human's wasm build: BlazeFace + the 468-point mesh for detection,
 * landmarks and head pose; faceres (1024-d) or a given embedder for the embedding; Human's antispoof
 * and/or liveness models for liveness. BlazeFace and the mesh run inside one Human call, so their
 * cost is reported under the 'detect' stage.
 */
export class HumanFaceEngine implements FaceEngine {
  readonly name: 'human' | 'human-fr';
  readonly embeddingModelId: string;
  readonly embeddingDims: number;
  private readonly maxFaces: number;
  private readonly minFaceScore: number;
  private readonly embedder: FaceEmbedder | undefined;
  private readonly livenessModel: HumanLivenessModel;
  private loaded: LoadedHuman | null = null;

  constructor(options: HumanFaceEngineOptions) {
    this.maxFaces = options.maxFaces;
    this.minFaceScore = options.minFaceScore ?? DEFAULT_HUMAN_MIN_FACE_SCORE;
    this.embedder = options.embedder;
    this.livenessModel = options.liveness;
    this.name = options.embedder ? 'human-fr' : 'human';
    this.embeddingModelId = options.embedder?.modelId ?? FACERES_MODEL_ID;
    this.embeddingDims = options.embedder?.dims ?? FACERES_DIMS;
  }

  async load(): Promise<void> {
    if (this.loaded) return;
    const loaded = await loadHuman({
      maxFaces: this.maxFaces,
      minFaceScore: Math.min(HUMAN_MIN_CONFIDENCE, this.minFaceScore),
      faceres: !this.embedder,
      antispoof: this.livenessModel !== 'liveness',
      liveness: this.livenessModel !== 'antispoof',
    });
    try {
      await this.embedder?.load();
    } catch (err) {
      loaded.release();
      throw err;
    }
    this.loaded = loaded;
  }

  async detect(image: RgbImage, options: DetectOptions, profiler?: StageProfiler): Promise<DetectedFace[]> {
    const { human, tf, models } = this.ready();
    const maxFaces = Math.floor(options.maxFaces);
    if (!(maxFaces >= 1)) return [];
    const detector = human.config.face.detector!;
    const minScore = options.minScore ?? this.minFaceScore;
    detector.maxDetected = maxFaces;
    detector.minConfidence = Math.min(HUMAN_MIN_CONFIDENCE, minScore);
    const faces = await timed(profiler, 'detect', async () => {
      const input = imageTensor(tf, image);
      try {
        return (await human.detect(input)).face;
      } finally {
        input.dispose();
      }
    });
    return timed(profiler, 'pose', async () => {
      const meshInputPx = models.facemesh!.inputs[0]?.shape?.[2] ?? FACE_CROP_PX;
      const detected: DetectedFace[] = [];
      for (const face of faces) {
        const mesh = face.mesh as number[][];
        if (mesh.length < MESH_POINT_COUNT || face.boxScore < minScore) continue;
        const landmarks5 = landmarks5FromMesh(mesh);
        // Human's crop side (its box, unclamped) over the mesh input size turns mesh z into pixels.
        const cropSidePx = face.boxRaw[2] * image.width;
        const landmarks: Point[] = new Array(MESH_POINT_COUNT);
        for (let i = 0; i < MESH_POINT_COUNT; i++) landmarks[i] = { x: mesh[i]![0]!, y: mesh[i]![1]! };
        detected.push({
          box: clampToImage(pointsBox(landmarks), image.width, image.height),
          score: face.boxScore,
          landmarks5,
          landmarks,
          pose: poseFromMesh(mesh, cropSidePx / meshInputPx, landmarks5),
        });
      }
      detected.sort((a, b) => b.score - a.score);
      return detected.slice(0, maxFaces);
    });
  }

  async embed(image: RgbImage, face: DetectedFace, profiler?: StageProfiler): Promise<Embedding> {
    const { tf, models } = this.ready();
    if (this.embedder) {
      return { vector: await this.embedder.embed(image, face.landmarks5, profiler), modelId: this.embedder.modelId };
    }
    const crop = await timed(profiler, 'align', async () => cropFaceSquare(image, faceSquare(face), FACE_CROP_PX));
    const vector = await timed(profiler, 'embed', async () => {
      const outputs = runOnCrop(tf, models.faceres!, crop, 255);
      try {
        const descriptor = outputs.find((t) => t.shape[1] === FACERES_DIMS);
        if (!descriptor) throw new VisionError('embedding_failed', 'faceres returned no 1024-d descriptor');
        return l2Normalize((await descriptor.data()) as Float32Array);
      } finally {
        tf.dispose(outputs);
      }
    });
    return { vector, modelId: FACERES_MODEL_ID };
  }

  async liveness(image: RgbImage, face: DetectedFace, profiler?: StageProfiler): Promise<number> {
    const { tf, models } = this.ready();
    return timed(profiler, 'liveness', async () => {
      const crop = cropFaceSquare(image, faceSquare(face), FACE_CROP_PX);
      const scores: number[] = [];
      if (this.livenessModel !== 'liveness') scores.push(await scoreCrop(tf, models.antispoof!, crop));
      if (this.livenessModel !== 'antispoof') scores.push(await scoreCrop(tf, models.liveness!, crop));
      return scores.reduce((a, b) => a + b, 0) / scores.length;
    });
  }

  /** Both of Human's liveness scores for a face (0..1, 1 = live), for measuring them side by side. */
  async livenessScores(image: RgbImage, face: DetectedFace): Promise<{ antispoof?: number; liveness?: number }> {
    const { tf, models } = this.ready();
    const crop = cropFaceSquare(image, faceSquare(face), FACE_CROP_PX);
    return {
      antispoof: models.antispoof ? await scoreCrop(tf, models.antispoof, crop) : undefined,
      liveness: models.liveness ? await scoreCrop(tf, models.liveness, crop) : undefined,
    };
  }

  async dispose(): Promise<void> {
    const loaded = this.loaded;
    this.loaded = null;
    loaded?.release();
    await this.embedder?.dispose();
  }

  private ready(): LoadedHuman {
    if (!this.loaded) throw new VisionError('engine_not_loaded', `face engine "${this.name}" is not loaded (call load() first)`);
    return this.loaded;
  }
}

/** The square Human's face models see: from the mesh when the face has one, else from its box. */
function faceSquare(face: DetectedFace): FaceSquare {
  const box = face.landmarks && face.landmarks.length >= MESH_POINT_COUNT ? pointsBox(face.landmarks) : face.box;
  return faceSquareFromBox(box);
}

/**
 * Runs a face model as Human does: the 192-px crop (0..1), bilinearly resized to the model's input,
 * times inputScale (faceres takes 0..255, antispoof and liveness 0..1).
 */
function runOnCrop(tf: HumanTf, model: GraphModel, crop: Float32Array, inputScale = 1): Tensor[] {
  const shape = model.inputs[0]?.shape;
  const height = shape?.[1] ?? FACE_CROP_PX;
  const width = shape?.[2] ?? FACE_CROP_PX;
  return tf.tidy(() => {
    let input = tf.tensor4d(crop, [1, FACE_CROP_PX, FACE_CROP_PX, 3], 'float32');
    if (height !== FACE_CROP_PX || width !== FACE_CROP_PX) input = tf.image.resizeBilinear(input, [height, width], false);
    if (inputScale !== 1) input = tf.mul(input, inputScale);
    const output = model.execute(input);
    return Array.isArray(output) ? output : [output];
  });
}

async function scoreCrop(tf: HumanTf, model: GraphModel, crop: Float32Array): Promise<number> {
  const outputs = runOnCrop(tf, model, crop);
  try {
    return (await outputs[0]!.data())[0]!;
  } finally {
    tf.dispose(outputs);
  }
}
