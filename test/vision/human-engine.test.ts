import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetectedFace, Landmarks5, RgbImage } from '../../src/domain/types.ts';
import { VisionError } from '../../src/vision/errors.ts';
import type { FaceEmbedder } from '../../src/vision/face-engine.ts';
import { FACERES_MODEL_ID, HumanFaceEngine } from '../../src/vision/human/human-engine.ts';
import { humanTensorCount } from '../../src/vision/human/human-loader.ts';
import { humanDetectWithFaceres } from '../../src/vision/human/human-reference.ts';
import { dot as cosine } from '../../src/domain/metrics.ts';
import { decodeImage } from '../../src/vision/image.ts';

const require = createRequire(import.meta.url);
const demoDir = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');
const samplePath = (n: number) => path.join(demoDir, `sample${n}.jpg`);

/** Faces in each demo photo, counted by eye. */
const FACES_BY_EYE: Record<number, number> = { 1: 3, 2: 3, 3: 3, 4: 4, 5: 5, 6: 4 };

async function decodeVariant(n: number, edit: (s: Sharp) => Sharp = (s) => s): Promise<RgbImage> {
  return decodeImage(await edit(sharp(await readFile(samplePath(n)))).jpeg({ quality: 95 }).toBuffer());
}

function mirrored(image: RgbImage): RgbImage {
  const data = new Uint8Array(image.data.length);
  const { width, height } = image;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (y * width + x) * 3;
      const to = (y * width + (width - 1 - x)) * 3;
      data[to] = image.data[from]!;
      data[to + 1] = image.data[from + 1]!;
      data[to + 2] = image.data[from + 2]!;
    }
  }
  return { width, height, data };
}

const centre = (face: DetectedFace) => ({ x: face.box.x + face.box.width / 2, y: face.box.y + face.box.height / 2 });

/** The face of `faces` whose centre is nearest to (x, y). */
function nearest(faces: DetectedFace[], x: number, y: number): DetectedFace {
  return faces.reduce((best, f) => (Math.hypot(centre(f).x - x, centre(f).y - y) < Math.hypot(centre(best).x - x, centre(best).y - y) ? f : best));
}

describe('HumanFaceEngine (Human 3.3.6, wasm)', () => {
  const engine = new HumanFaceEngine({ maxFaces: 20, liveness: 'both' });
  const samples = new Map<number, RgbImage>();
  const detected = new Map<number, DetectedFace[]>();
  let oneFace: RgbImage;

  beforeAll(async () => {
    await engine.load();
    for (const n of Object.keys(FACES_BY_EYE).map(Number)) {
      const image = await decodeImage(await readFile(samplePath(n)));
      samples.set(n, image);
      detected.set(n, await engine.detect(image, { maxFaces: 20 }));
    }
    // A one-face image: a square around sample1's first face.
    const face = detected.get(1)![0]!;
    const side = Math.round(2.5 * Math.max(face.box.width, face.box.height));
    const left = Math.max(0, Math.round(centre(face).x - side / 2));
    const top = Math.max(0, Math.round(centre(face).y - side / 2));
    oneFace = await decodeImage(await sharp(await readFile(samplePath(1))).extract({ left, top, width: side, height: side }).jpeg({ quality: 90 }).toBuffer());
  });

  afterAll(async () => {
    await engine.dispose();
  });

  it('finds every face of the group photos', () => {
    for (const [n, expected] of Object.entries(FACES_BY_EYE)) {
      expect(detected.get(Number(n))!.length, `sample${n}.jpg`).toBe(expected);
    }
  });

  it('reports the mesh, the five points in ArcFace order, a tight box and a score', () => {
    for (const faces of detected.values()) {
      for (const face of faces) {
        const [eyeLeft, eyeRight, nose, mouthLeft, mouthRight] = face.landmarks5;
        expect(face.landmarks).toHaveLength(468);
        expect(eyeLeft.x).toBeLessThan(eyeRight.x);
        expect(mouthLeft.x).toBeLessThan(mouthRight.x);
        expect(Math.max(eyeLeft.y, eyeRight.y)).toBeLessThan(nose.y);
        expect(nose.y).toBeLessThan(Math.min(mouthLeft.y, mouthRight.y));
        for (const p of face.landmarks5) {
          expect(p.x).toBeGreaterThanOrEqual(face.box.x);
          expect(p.x).toBeLessThanOrEqual(face.box.x + face.box.width);
          expect(p.y).toBeGreaterThanOrEqual(face.box.y);
          expect(p.y).toBeLessThanOrEqual(face.box.y + face.box.height);
        }
        // The mesh box spans brow to chin: the eyes sit in its upper half.
        expect(eyeLeft.y - face.box.y).toBeLessThan(face.box.height / 2);
        expect(face.score).toBeGreaterThanOrEqual(0.5);
        expect(face.score).toBeLessThanOrEqual(1);
        for (const angle of [face.pose.yawDeg, face.pose.pitchDeg, face.pose.rollDeg]) expect(Math.abs(angle)).toBeLessThan(90);
      }
    }
  });

  it('finds no face in a blank image, however small', async () => {
    for (const [width, height] of [[320, 240], [1, 1]] as const) {
      const blank: RgbImage = { width, height, data: new Uint8Array(width * height * 3).fill(128) };
      expect(await engine.detect(blank, { maxFaces: 20 })).toEqual([]);
    }
  });

  it('keeps the most confident faces when asked for fewer', async () => {
    const all = detected.get(5)!;
    const two = await engine.detect(samples.get(5)!, { maxFaces: 2 });
    expect(two).toHaveLength(2);
    const topScores = all.map((f) => f.score).sort((a, b) => b - a).slice(0, 2);
    expect(two.map((f) => f.score)).toEqual(topScores);
  });

  it('negates yaw and roll and keeps pitch when the photo is mirrored', async () => {
    for (const n of [1, 4, 5]) {
      const image = samples.get(n)!;
      const flipped = await engine.detect(mirrored(image), { maxFaces: 20 });
      expect(flipped).toHaveLength(FACES_BY_EYE[n]!);
      for (const face of detected.get(n)!) {
        const twin = nearest(flipped, image.width - 1 - centre(face).x, centre(face).y);
        // The mesh is not exactly mirror-symmetric: on the demo photos yaw differs by up to 8°.
        expect(Math.abs(face.pose.yawDeg + twin.pose.yawDeg), `sample${n} yaw ${face.pose.yawDeg} vs ${twin.pose.yawDeg}`).toBeLessThan(10);
        if (Math.abs(face.pose.yawDeg) > 10) expect(Math.sign(twin.pose.yawDeg)).toBe(-Math.sign(face.pose.yawDeg));
        expect(Math.abs(face.pose.rollDeg + twin.pose.rollDeg), `sample${n} roll`).toBeLessThan(6);
        if (Math.abs(face.pose.rollDeg) > 6) expect(Math.sign(twin.pose.rollDeg)).toBe(-Math.sign(face.pose.rollDeg));
        expect(Math.abs(face.pose.pitchDeg - twin.pose.pitchDeg), `sample${n} pitch`).toBeLessThan(8);
      }
    }
  });

  it('embeds with faceres: 1024-d, unit length, tagged with its model id', async () => {
    const embedding = await engine.embed(samples.get(1)!, detected.get(1)![0]!);
    expect(engine.name).toBe('human');
    expect(engine.embeddingModelId).toBe(FACERES_MODEL_ID);
    expect(engine.embeddingDims).toBe(1024);
    expect(embedding.modelId).toBe(FACERES_MODEL_ID);
    expect(embedding.vector).toHaveLength(1024);
    expect(Math.hypot(...embedding.vector)).toBeCloseTo(1, 5);
  });

  it('keeps the same face similar across re-encoding, brightening and scaling, and different people lower', async () => {
    const image = samples.get(1)!;
    const faces = detected.get(1)!;
    const vectors = await Promise.all(faces.map(async (f) => (await engine.embed(image, f)).vector));
    const variants: Record<string, { image: RgbImage; scale: number }> = {
      'JPEG quality 50': { image: await decodeImage(await sharp(await readFile(samplePath(1))).jpeg({ quality: 50 }).toBuffer()), scale: 1 },
      'brightness ×1.3': { image: await decodeVariant(1, (s) => s.modulate({ brightness: 1.3 })), scale: 1 },
      'scaled to half': { image: await decodeVariant(1, (s) => s.resize({ width: Math.round(image.width / 2) })), scale: 0.5 },
    };
    const same: number[] = [];
    for (const [name, variant] of Object.entries(variants)) {
      const variantFaces = await engine.detect(variant.image, { maxFaces: 20 });
      expect(variantFaces, name).toHaveLength(faces.length);
      for (let i = 0; i < faces.length; i++) {
        const twin = nearest(variantFaces, centre(faces[i]!).x * variant.scale, centre(faces[i]!).y * variant.scale);
        const similarity = cosine(vectors[i]!, (await engine.embed(variant.image, twin)).vector);
        // Measured: 0.989–0.996 (JPEG 50), 0.940–0.967 (brightness), 0.989–0.996 (half size).
        expect(similarity, `${name}, face ${i}`).toBeGreaterThan(name.startsWith('brightness') ? 0.9 : 0.95);
        same.push(similarity);
      }
    }
    // Different people in one photo (measured 0.43–0.63 across all demo faces).
    const different: number[] = [];
    for (let i = 0; i < vectors.length; i++) for (let j = i + 1; j < vectors.length; j++) different.push(cosine(vectors[i]!, vectors[j]!));
    expect(Math.max(...different)).toBeLessThan(0.75);
    expect(Math.max(...different)).toBeLessThan(Math.min(...same));
  });

  it('scores ordinary photos as live with both liveness models', async () => {
    for (const [n, faces] of detected) {
      for (const face of faces) {
        const score = await engine.liveness(samples.get(n)!, face);
        expect(score, `sample${n}`).toBeGreaterThan(0.3);
        expect(score).toBeLessThanOrEqual(1);
        const parts = await engine.livenessScores(samples.get(n)!, face);
        expect(score).toBeCloseTo((parts.antispoof! + parts.liveness!) / 2, 6);
      }
    }
  });

  it('does not leak tensors across 20 calls of each stage', async () => {
    const face = (await engine.detect(oneFace, { maxFaces: 1 }))[0]!;
    await engine.embed(oneFace, face);
    await engine.liveness(oneFace, face);
    const before = humanTensorCount();
    for (let i = 0; i < 20; i++) {
      const [again] = await engine.detect(oneFace, { maxFaces: 1 });
      await engine.embed(oneFace, again!);
      await engine.liveness(oneFace, again!);
    }
    expect(humanTensorCount()).toBe(before);
  });

  it("agrees with Human's own detect() with faceres on", async () => {
    const reference = await humanDetectWithFaceres();
    try {
      expect(await reference.detect(oneFace)).toBe(1);
      expect(await reference.detect(samples.get(1)!)).toBe(3);
      const described = await reference.describe(samples.get(1)!);
      for (const face of detected.get(1)!) {
        const match = described.reduce((best, d) =>
          Math.hypot(d.box.x + d.box.width / 2 - centre(face).x, d.box.y + d.box.height / 2 - centre(face).y) <
          Math.hypot(best.box.x + best.box.width / 2 - centre(face).x, best.box.y + best.box.height / 2 - centre(face).y)
            ? d
            : best,
        );
        // Human crops around BlazeFace's box, this engine around the mesh: close, not identical.
        expect(cosine(match.embedding, (await engine.embed(samples.get(1)!, face)).vector)).toBeGreaterThan(0.9);
      }
    } finally {
      await reference.dispose();
    }
    // The engine still works after another Human user released the shared models.
    expect(await engine.detect(oneFace, { maxFaces: 1 })).toHaveLength(1);
  });

  it("delegates embedding to a given embedder with the mesh's five points ('human-fr')", async () => {
    const seen: Landmarks5[] = [];
    let loads = 0;
    let disposals = 0;
    const embedder: FaceEmbedder = {
      modelId: 'test-embedder@1',
      dims: 4,
      async load() {
        loads++;
      },
      async embed(_image, landmarks5) {
        seen.push(landmarks5);
        return Float32Array.of(1, 0, 0, 0);
      },
      async dispose() {
        disposals++;
      },
    };
    const fr = new HumanFaceEngine({ maxFaces: 5, liveness: 'liveness', embedder });
    expect(fr.name).toBe('human-fr');
    expect(fr.embeddingModelId).toBe('test-embedder@1');
    expect(fr.embeddingDims).toBe(4);
    await fr.load();
    try {
      const [face] = await fr.detect(oneFace, { maxFaces: 1 });
      const embedding = await fr.embed(oneFace, face!);
      expect(embedding).toEqual({ vector: Float32Array.of(1, 0, 0, 0), modelId: 'test-embedder@1' });
      expect(seen).toEqual([face!.landmarks5]);
      expect(loads).toBe(1);
    } finally {
      await fr.dispose();
    }
    expect(disposals).toBe(1);
  });

  it('releases its models on dispose and refuses work afterwards', async () => {
    const other = new HumanFaceEngine({ maxFaces: 2, liveness: 'antispoof' });
    const idle = humanTensorCount();
    await other.load();
    await other.dispose();
    await expect(other.detect(oneFace, { maxFaces: 1 })).rejects.toThrow(VisionError);
    // The first engine still holds the shared weights, so they stay; its own dispose frees them.
    // Each Human instance re-creates BlazeFace's two anchor tensors without freeing the old ones.
    expect(humanTensorCount()).toBeLessThanOrEqual(idle + 2);
    expect(await engine.detect(oneFace, { maxFaces: 1 })).toHaveLength(1);
    await engine.dispose();
    expect(humanTensorCount()).toBeLessThan(idle / 10);
    await expect(engine.detect(oneFace, { maxFaces: 1 })).rejects.toMatchObject({ code: 'engine_not_loaded' });
  });
});
