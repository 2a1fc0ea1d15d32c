import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ImageTooLargeError, InvalidImageError } from './errors.ts';
import { DEFAULT_IMAGE_LIMITS, decodeImage, encodeJpeg } from './image.ts';

const solid = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: { r: 200, g: 100, b: 50 } } });

describe('decodeImage', () => {
  it('decodes JPEG, PNG and WebP to packed RGB', async () => {
    for (const encoded of [await solid(40, 30).jpeg().toBuffer(), await solid(40, 30).png().toBuffer(), await solid(40, 30).webp().toBuffer()]) {
      const image = await decodeImage(encoded);
      expect([image.width, image.height, image.data.length]).toEqual([40, 30, 40 * 30 * 3]);
    }
  });

  it('applies EXIF orientation (a portrait photo stored sideways comes out upright)', async () => {
    const sideways = await solid(60, 20).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const image = await decodeImage(sideways);
    expect([image.width, image.height]).toEqual([20, 60]);
  });

  it('drops alpha and scales down past the largest side', async () => {
    const rgba = await sharp({ create: { width: 4000, height: 1000, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0.5 } } }).png().toBuffer();
    const image = await decodeImage(rgba, { ...DEFAULT_IMAGE_LIMITS, maxSidePx: 800 });
    expect([image.width, image.height, image.data.length]).toEqual([800, 200, 800 * 200 * 3]);
  });

  it('refuses empty, garbage and truncated input with a clear message', async () => {
    await expect(decodeImage(new Uint8Array(0))).rejects.toThrow(/empty/);
    await expect(decodeImage(Buffer.from('GIF89a but not really'))).rejects.toBeInstanceOf(InvalidImageError);
    const jpeg = await solid(300, 300).jpeg().toBuffer();
    await expect(decodeImage(jpeg.subarray(0, jpeg.length >> 1))).rejects.toBeInstanceOf(InvalidImageError);
  });

  it('refuses a format that is not accepted', async () => {
    const gif = await solid(10, 10).gif().toBuffer();
    await expect(decodeImage(gif)).rejects.toThrow(/format gif is not accepted/);
  });

  it('refuses too many bytes before decoding, and a decompression bomb from its header', async () => {
    const jpeg = await solid(100, 100).jpeg().toBuffer();
    await expect(decodeImage(jpeg, { ...DEFAULT_IMAGE_LIMITS, maxBytes: 100 })).rejects.toBeInstanceOf(ImageTooLargeError);
    // 12000 × 12000 of one colour compresses to a few hundred kB but decodes to 432 MB.
    const bomb = await solid(12_000, 12_000).png({ compressionLevel: 9 }).toBuffer();
    expect(bomb.length).toBeLessThan(2_000_000);
    await expect(decodeImage(bomb)).rejects.toMatchObject({ code: expect.stringMatching(/image_too_large|invalid_image/) });
  });

  it('round-trips through encodeJpeg', async () => {
    const image = await decodeImage(await solid(32, 16).png().toBuffer());
    const again = await decodeImage(await encodeJpeg(image));
    expect([again.width, again.height]).toEqual([32, 16]);
    expect(Math.abs(again.data[0]! - 200)).toBeLessThan(8);
  });
});
