import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { projectPath } from '../../src/config/paths.ts';

/*
 * Test photos cut at test time from the face-api demo photos (installed with npm). The demo photos
 * show the same woman twice: sample1.jpg (face at 1464,215) and sample3.jpg (face at 1035,194),
 * cosine 0.72 with fr_feature; every other pair of demo faces is far below the search threshold.
 */

const DEMO_DIR = projectPath('node_modules/@vladmandic/face-api/demo');

export const demoPhotoPath = (n: number): string => `${DEMO_DIR}/sample${n}.jpg`;

/** A square crop around a face box (x, y, side) of a demo photo, margin × the side, optionally rescaled and brightened. */
export async function cropFace(
  sample: number,
  face: { x: number; y: number; side: number },
  margin: number,
  options: { scale?: number; brightness?: number } = {},
): Promise<Buffer> {
  const path = demoPhotoPath(sample);
  const meta = await sharp(path).metadata();
  const side = face.side * margin;
  const left = Math.max(0, Math.round(face.x + face.side / 2 - side / 2));
  const top = Math.max(0, Math.round(face.y + face.side / 2 - side / 2));
  const width = Math.min(meta.width! - left, Math.round(side));
  const height = Math.min(meta.height! - top, Math.round(side));
  let image = sharp(path).extract({ left, top, width, height });
  if (options.scale) image = image.resize(Math.round(width * options.scale));
  if (options.brightness) image = image.modulate({ brightness: options.brightness });
  return image.jpeg({ quality: 90 }).toBuffer();
}

export interface FaceFixtures {
  /** Person A, two photos to enrol: one crop of sample1, and a rescaled, brightened re-crop of it. */
  a1: Buffer;
  a2: Buffer;
  /** Person A in another photo (sample3): the probe to recognise. */
  a3: Buffer;
  /** Person B (sample1, another woman): two crops. */
  b1: Buffer;
  b2: Buffer;
  /** Someone never enrolled (sample3, a third woman). */
  stranger: Buffer;
  /** A group photo: several faces. */
  group: Buffer;
  /** A generated image with no face in it. */
  noFace: Buffer;
}

const A_IN_1 = { x: 1464, y: 215, side: 214 };
const A_IN_3 = { x: 1035, y: 194, side: 308 };
const B_IN_1 = { x: 824, y: 430, side: 219 };
const STRANGER_IN_3 = { x: 551, y: 330, side: 276 };

export async function loadFaceFixtures(): Promise<FaceFixtures> {
  const gradient = Buffer.alloc(320 * 240 * 3);
  for (let y = 0; y < 240; y++) for (let x = 0; x < 320; x++) gradient.set([x % 256, y, (x + y) % 256], (y * 320 + x) * 3);
  return {
    a1: await cropFace(1, A_IN_1, 1.8),
    a2: await cropFace(1, A_IN_1, 2.2, { scale: 0.7, brightness: 1.15 }),
    a3: await cropFace(3, A_IN_3, 1.6),
    b1: await cropFace(1, B_IN_1, 1.8),
    b2: await cropFace(1, B_IN_1, 2.0, { scale: 0.8, brightness: 0.9 }),
    stranger: await cropFace(3, STRANGER_IN_3, 1.8),
    group: await readFile(demoPhotoPath(1)),
    noFace: await sharp(gradient, { raw: { width: 320, height: 240, channels: 3 } }).jpeg().toBuffer(),
  };
}
