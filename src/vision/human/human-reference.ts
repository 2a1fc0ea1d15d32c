import type { Box, RgbImage } from '../../domain/types.ts';
import { imageTensor, loadHuman } from './human-loader.ts';
import { l2Normalize } from '../../domain/metrics.ts';

/** One face as Human's own detect() describes it. */
export interface HumanReferenceFace {
  /** Human's box: 1.4 × the BlazeFace box, centred on the mesh, clamped to the image. */
  box: Box;
  score: number;
  /** faceres descriptor, L2-normalised (Human returns it unnormalised). */
  embedding: Float32Array;
}

/** Human as shipped: a single detect() call with faceres on (BlazeFace + mesh + faceres per face). */
export interface HumanReference {
  /** Runs Human's detect() with faceres; returns how many faces got a descriptor. */
  detect(image: RgbImage): Promise<number>;
  /** The same call, returning the faces. */
  describe(image: RgbImage): Promise<HumanReferenceFace[]>;
  dispose(): Promise<void>;
}

/**
 * Loads Human's own pipeline with faceres enabled (the baseline the vision benchmark compares the
 * whole Facegate pipeline against): same wasm backend and local models as the 'human' engine,
 * result caching off, at most maxFaces faces.
 */
export async function humanDetectWithFaceres(options: { maxFaces?: number; minFaceScore?: number } = {}): Promise<HumanReference> {
  const loaded = await loadHuman({
    maxFaces: options.maxFaces ?? 20,
    minFaceScore: options.minFaceScore ?? 0.2,
    faceres: true,
    runFaceModelsInDetect: true,
  });
  const { human, tf } = loaded;
  const run = async (image: RgbImage) => {
    const input = imageTensor(tf, image);
    try {
      return (await human.detect(input)).face;
    } finally {
      input.dispose();
    }
  };
  let disposed = false;
  return {
    async detect(image) {
      const faces = await run(image);
      return faces.filter((f) => (f.embedding?.length ?? 0) > 0).length;
    },
    async describe(image) {
      const faces = await run(image);
      return faces
        .filter((f) => (f.embedding?.length ?? 0) > 0)
        .map((f) => ({
          box: { x: f.box[0], y: f.box[1], width: f.box[2], height: f.box[3] },
          score: f.score,
          embedding: l2Normalize(f.embedding!),
        }));
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      loaded.release();
    },
  };
}
