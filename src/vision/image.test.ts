import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ImageTooLargeError, InvalidImageError } from './errors.ts';
import { DEFAULT_IMAGE_LIMITS, decodeImage, decodeJpegEighth, decodeJpegRect, encodeJpeg, readJpegHeader } from './image.ts';

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

describe('decodeJpegRect', () => {
  it('decodes a rectangle of a JPEG exactly as the full decode has it, black elsewhere', async () => {
    const noisy = Buffer.alloc(64 * 48 * 3);
    for (let i = 0; i < noisy.length; i++) noisy[i] = (i * 37) % 251;
    const jpeg = await sharp(noisy, { raw: { width: 64, height: 48, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
    const header = readJpegHeader(jpeg)!;
    expect(header).toEqual({ width: 64, height: 48, exif: false });
    const full = await decodeImage(jpeg);
    const rect = { left: 10, top: 5, width: 30, height: 20 };
    const part = (await decodeJpegRect(jpeg, header, rect, new Uint8Array(64 * 48 * 3)))!;
    expect([part.width, part.height]).toEqual([64, 48]);
    let inside = 0;
    let outside = 0;
    for (let y = 0; y < 48; y++) {
      for (let x = 0; x < 64; x++) {
        for (let c = 0; c < 3; c++) {
          const i = (y * 64 + x) * 3 + c;
          const within = x >= 10 && x < 40 && y >= 5 && y < 25;
          if (within) inside = Math.max(inside, Math.abs(part.data[i]! - full.data[i]!));
          else outside = Math.max(outside, part.data[i]!);
        }
      }
    }
    expect([inside, outside]).toEqual([0, 0]);
  });

  it('declines what the full decode must handle: EXIF, not JPEG, a rect outside the image', async () => {
    const plain = await solid(40, 30).jpeg().toBuffer();
    const rotated = await solid(40, 30).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect(readJpegHeader(rotated)?.exif).toBe(true);
    expect(await decodeJpegRect(rotated, readJpegHeader(rotated)!, { left: 0, top: 0, width: 8, height: 8 }, new Uint8Array(40 * 30 * 3))).toBeNull();
    expect(readJpegHeader(await solid(40, 30).png().toBuffer())).toBeNull();
    expect(await decodeJpegRect(plain, readJpegHeader(plain)!, { left: 35, top: 0, width: 8, height: 8 }, new Uint8Array(40 * 30 * 3))).toBeNull();
  });
});

describe('decodeJpegEighth', () => {
  it('decodes at ⅛ scale, each pixel near the mean of its 8 × 8 block; declines frames under the minimum size', async () => {
    const jpeg = await solid(640, 480).jpeg().toBuffer();
    const small = (await decodeJpegEighth(jpeg, readJpegHeader(jpeg)!, DEFAULT_IMAGE_LIMITS, 512, 384))!;
    expect([small.width, small.height]).toEqual([80, 60]);
    expect(Math.abs(small.data[0]! - 200)).toBeLessThan(4);
    const little = await solid(320, 240).jpeg().toBuffer();
    expect(await decodeJpegEighth(little, readJpegHeader(little)!, DEFAULT_IMAGE_LIMITS, 512, 384)).toBeNull();
  });
});
