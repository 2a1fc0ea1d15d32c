import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ImageTooLargeError, InvalidImageError } from './errors.ts';
import { DEFAULT_IMAGE_LIMITS, decodeImage, decodePlainJpeg, encodeJpeg, readJpegHeader } from './image.ts';
import { turboJpeg } from './turbo-jpeg.ts';

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

describe('decodePlainJpeg', () => {
  const noisyJpeg = async (width: number, height: number): Promise<Buffer> => {
    const noisy = Buffer.alloc(width * height * 3);
    for (let i = 0; i < noisy.length; i++) noisy[i] = (i * 37) % 251;
    return sharp(noisy, { raw: { width, height, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
  };

  it('decodes a plain JPEG with libjpeg-turbo, within its fast IDCT of what libvips gives, and decodeImage takes this path', async () => {
    expect(turboJpeg).not.toBeNull();
    const jpeg = await noisyJpeg(64, 48);
    expect(readJpegHeader(jpeg)).toEqual({ width: 64, height: 48, exif: false, icc: false });
    const plain = decodePlainJpeg(jpeg)!;
    expect([plain.width, plain.height, plain.data.length]).toEqual([64, 48, 64 * 48 * 3]);
    const vips = await sharp(jpeg).raw().toBuffer();
    let max = 0;
    let sum = 0;
    for (let i = 0; i < vips.length; i++) {
      const d = Math.abs(vips[i]! - plain.data[i]!);
      max = Math.max(max, d);
      sum += d;
    }
    expect(sum / vips.length).toBeLessThan(1.5);
    expect(max).toBeLessThanOrEqual(8);
    expect(Buffer.from((await decodeImage(jpeg)).data).equals(Buffer.from(plain.data))).toBe(true);
  });

  it('writes into the buffer it is given when the size fits, a new one otherwise', async () => {
    const jpeg = await noisyJpeg(40, 30);
    const fits = new Uint8Array(40 * 30 * 3);
    const into = (await decodeImage(jpeg, DEFAULT_IMAGE_LIMITS, () => fits)).data;
    expect(into.buffer).toBe(fits.buffer);
    const small = new Uint8Array(10);
    const fresh = decodePlainJpeg(jpeg, DEFAULT_IMAGE_LIMITS, () => small)!;
    expect(fresh.data.buffer).not.toBe(small.buffer);
    expect(Buffer.from(fresh.data).equals(Buffer.from(into))).toBe(true);
  });

  it('declines what libvips must handle: EXIF, an ICC profile, not JPEG, past maxSidePx, damaged data', async () => {
    const rotated = await solid(40, 30).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect(readJpegHeader(rotated)?.exif).toBe(true);
    expect(decodePlainJpeg(rotated)).toBeNull();
    const profiled = await solid(40, 30).jpeg().withIccProfile('p3').toBuffer();
    expect(readJpegHeader(profiled)?.icc).toBe(true);
    expect(decodePlainJpeg(profiled)).toBeNull();
    expect(decodePlainJpeg(await solid(40, 30).png().toBuffer())).toBeNull();
    const plain = await noisyJpeg(64, 48);
    expect(decodePlainJpeg(plain, { ...DEFAULT_IMAGE_LIMITS, maxSidePx: 32 })).toBeNull();
    expect(decodePlainJpeg(plain, { ...DEFAULT_IMAGE_LIMITS, formats: ['png'] })).toBeNull();
    expect(decodePlainJpeg(plain.subarray(0, Math.floor(plain.length * 0.6)))).toBeNull();
  });
});
