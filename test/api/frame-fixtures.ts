import sharp from 'sharp';
import { demoPhotoPath } from './face-fixtures.ts';

/*
 * Camera frames made at test time: a face crop (from the face-api demo photos, see
 * face-fixtures.ts) pasted on a plain 640×480 background, shifted a few pixels from frame to frame
 * the way a person standing in front of a camera sways. No face in it: the background alone.
 */

export const FRAME_WIDTH = 640;
export const FRAME_HEIGHT = 480;

let background: Buffer | undefined;

/** A 640×480 RGB background with a soft gradient (raw pixels), made once. */
function backgroundPixels(): Buffer {
  if (background) return background;
  const pixels = Buffer.alloc(FRAME_WIDTH * FRAME_HEIGHT * 3);
  for (let y = 0; y < FRAME_HEIGHT; y++) {
    for (let x = 0; x < FRAME_WIDTH; x++) {
      const i = (y * FRAME_WIDTH + x) * 3;
      pixels[i] = 70 + ((x * 60) / FRAME_WIDTH) | 0;
      pixels[i + 1] = 80 + ((y * 50) / FRAME_HEIGHT) | 0;
      pixels[i + 2] = 95;
    }
  }
  background = pixels;
  return pixels;
}

export interface FaceFrameOptions {
  /** Side the face crop is scaled to, in pixels (default 220). */
  faceSidePx?: number;
  /** Top-left corner of the crop (default: centred). */
  x?: number;
  y?: number;
  /** JPEG quality (default 85). */
  quality?: number;
}

/** One JPEG frame holding the face crop (any square-ish JPEG) at a position. */
export async function faceFrame(faceJpeg: Buffer, options: FaceFrameOptions = {}): Promise<Buffer> {
  const side = options.faceSidePx ?? 220;
  const face = await sharp(faceJpeg).resize(side, side, { fit: 'cover' }).toBuffer();
  const x = Math.round(options.x ?? (FRAME_WIDTH - side) / 2);
  const y = Math.round(options.y ?? (FRAME_HEIGHT - side) / 2);
  return sharp(backgroundPixels(), { raw: { width: FRAME_WIDTH, height: FRAME_HEIGHT, channels: 3 } })
    .composite([{ input: face, left: x, top: y }])
    .jpeg({ quality: options.quality ?? 85 })
    .toBuffer();
}

/** The background alone, as JPEG. */
export async function emptyFrame(quality = 85): Promise<Buffer> {
  return sharp(backgroundPixels(), { raw: { width: FRAME_WIDTH, height: FRAME_HEIGHT, channels: 3 } }).jpeg({ quality }).toBuffer();
}

/**
 * `count` frames of one face swaying: the crop moves up to `jitterPx` around the centre (a smooth
 * path, so a tracker sees a person standing, not teleporting) and its size breathes by ±2 %.
 */
export async function swayingFaceFrames(faceJpeg: Buffer, count: number, options: { faceSidePx?: number; jitterPx?: number; centerX?: number; centerY?: number } = {}): Promise<Buffer[]> {
  const side = options.faceSidePx ?? 220;
  const jitter = options.jitterPx ?? 6;
  const cx = options.centerX ?? FRAME_WIDTH / 2;
  const cy = options.centerY ?? FRAME_HEIGHT / 2;
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const phase = (i / Math.max(1, count)) * Math.PI * 2;
    const s = Math.round(side * (1 + 0.02 * Math.sin(phase * 3)));
    frames.push(await faceFrame(faceJpeg, { faceSidePx: s, x: cx - s / 2 + jitter * Math.sin(phase), y: cy - s / 2 + jitter * Math.cos(phase * 2) }));
  }
  return frames;
}

/** Faces of the face-api demo photos (x, y, side of the face box), as face-fixtures.ts places them. */
export const DEMO_FACES = {
  /** Anna (enrolled in the tests) in sample1 and, another photo of her, in sample3. */
  annaIn1: { sample: 1, x: 1464, y: 215, side: 214 },
  annaIn3: { sample: 3, x: 1035, y: 194, side: 308 },
  /** A woman never enrolled, in sample3. */
  strangerIn3: { sample: 3, x: 551, y: 330, side: 276 },
} as const;

export type DemoFace = { sample: number; x: number; y: number; side: number };

/**
 * A 640×480 frame cut from a demo photo around a face, scaled so the face is `faceSidePx` wide and
 * moved by (dx, dy) output pixels: the face keeps its real surroundings (hair, shoulders, the room),
 * which the liveness model needs to see a live face rather than a cut-out pasted on a plain background.
 */
export async function photoFrame(face: DemoFace, options: { faceSidePx?: number; dx?: number; dy?: number; quality?: number } = {}): Promise<Buffer> {
  const path = demoPhotoPath(face.sample);
  const meta = await sharp(path).metadata();
  const scale = (options.faceSidePx ?? 180) / face.side;
  const width = Math.min(meta.width!, Math.round(FRAME_WIDTH / scale));
  const height = Math.min(meta.height!, Math.round(FRAME_HEIGHT / scale));
  const cx = face.x + face.side / 2 - (options.dx ?? 0) / scale;
  const cy = face.y + face.side / 2 - (options.dy ?? 0) / scale;
  const left = Math.max(0, Math.min(meta.width! - width, Math.round(cx - width / 2)));
  const top = Math.max(0, Math.min(meta.height! - height, Math.round(cy - height / 2)));
  return sharp(path)
    .extract({ left, top, width, height })
    .resize(FRAME_WIDTH, FRAME_HEIGHT, { fit: 'fill' })
    .jpeg({ quality: options.quality ?? 85 })
    .toBuffer();
}

/** `count` frames of a demo-photo face swaying by up to `jitterPx` on a smooth path (a person standing, not teleporting). */
export async function swayingPhotoFrames(face: DemoFace, count: number, options: { faceSidePx?: number; jitterPx?: number } = {}): Promise<Buffer[]> {
  const jitter = options.jitterPx ?? 3;
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const phase = (i / Math.max(1, count)) * Math.PI * 2;
    frames.push(await photoFrame(face, { faceSidePx: options.faceSidePx, dx: jitter * Math.sin(phase), dy: jitter * Math.cos(phase) }));
  }
  return frames;
}
