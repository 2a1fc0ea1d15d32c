import sharp from 'sharp';

/** Variations of an enrollment frame that may be added as extra templates (seed 002's augmentation). */
export const AUGMENTATIONS = ['flip', 'brighter', 'darker', 'blur'] as const;
export type Augmentation = (typeof AUGMENTATIONS)[number];

/** The frame mirrored, brightened or darkened by 30 %, or blurred (σ 1.5 px), as JPEG. */
export async function augmentImage(bytes: Uint8Array, kind: Augmentation): Promise<Uint8Array> {
  let image = sharp(bytes).rotate();
  if (kind === 'flip') image = image.flop();
  else if (kind === 'brighter') image = image.modulate({ brightness: 1.3 });
  else if (kind === 'darker') image = image.modulate({ brightness: 0.7 });
  else image = image.blur(1.5);
  const out = await image.jpeg({ quality: 92 }).toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
