import sharp, { type Metadata, type OutputInfo } from 'sharp';
import type { ImageLimits } from '../config/config.ts';
import type { RgbImage } from '../domain/types.ts';
import { ImageTooLargeError, InvalidImageError } from './errors.ts';

// A long-running server must not let libvips cache decoded images between unrelated requests.
sharp.cache(false);
// Parallelism comes from the worker pool; one libvips thread per worker keeps CPU accounting honest.
sharp.concurrency(1);

/** The limits used when a caller gives none (the config defaults). */
export const DEFAULT_IMAGE_LIMITS: ImageLimits = {
  maxBytes: 15 * 1024 * 1024,
  maxPixels: 40_000_000,
  maxSidePx: 1920,
  formats: ['jpeg', 'png', 'webp'],
};

/**
 * Decodes an encoded image into 8-bit RGB, applying EXIF orientation and the configured limits:
 * byte size, decoded pixel count (checked from the header, before any pixel is decoded), format,
 * and a largest side beyond which the image is scaled down. Bad input throws InvalidImageError or
 * ImageTooLargeError with a message fit for a client; it never crashes the caller.
 */
export async function decodeImage(bytes: Uint8Array, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): Promise<RgbImage> {
  if (bytes.byteLength === 0) throw new InvalidImageError('the image is empty (0 bytes)');
  if (bytes.byteLength > limits.maxBytes) {
    throw new ImageTooLargeError(`the image is ${bytes.byteLength} bytes; the limit is ${limits.maxBytes} bytes`);
  }
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sniffed = sniffFormat(input);
  if (sniffed === null || !(limits.formats as string[]).includes(sniffed)) {
    // Not a format we recognise from its magic bytes (or not accepted): let libvips name it first.
    await checkHeader(input, limits);
  }
  // One libvips pass: limitInputPixels still refuses a decompression bomb from its header, before any
  // pixel is decoded; a failure is then classified by reading the header on its own (the rare path).
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await sharp(input, { limitInputPixels: limits.maxPixels, failOn: 'error' })
      .rotate() // applies EXIF orientation
      .resize({ width: limits.maxSidePx, height: limits.maxSidePx, fit: 'inside', withoutEnlargement: true })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    await checkHeader(input, limits);
    throw new InvalidImageError(`the image could not be decoded (${describeSharpError(err)})`);
  }
  const { data, info } = decoded;
  if (info.channels !== 3) throw new InvalidImageError(`decoded to ${info.channels} channels, expected 3`);
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** The format named by an image's magic bytes, for the common formats; null for anything else. */
function sniffFormat(b: Buffer): 'jpeg' | 'png' | 'webp' | null {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a) return 'png';
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  return null;
}

/** Reads the header alone and throws the error that fits it: unreadable, format not accepted, no pixels, too many pixels. */
async function checkHeader(input: Buffer, limits: ImageLimits): Promise<void> {
  let metadata: Metadata;
  try {
    metadata = await sharp(input, { failOn: 'error' }).metadata();
  } catch (err) {
    throw new InvalidImageError(`the data is not a readable image (${describeSharpError(err)})`);
  }
  const format = metadata.format as string | undefined;
  if (!format || !(limits.formats as string[]).includes(format)) {
    throw new InvalidImageError(`image format ${format ?? 'unknown'} is not accepted; accepted: ${limits.formats.join(', ')}`);
  }
  const width = metadata.width ?? 0;
  const height = metadata.height ?? 0;
  if (width < 1 || height < 1) throw new InvalidImageError('the image has no pixels');
  if (width * height > limits.maxPixels) {
    throw new ImageTooLargeError(`the image is ${width}×${height} pixels; the limit is ${limits.maxPixels} pixels`);
  }
}

/** Encodes RGB pixels as JPEG (thumbnails, test fixtures, video frames). */
export async function encodeJpeg(image: RgbImage, quality = 90): Promise<Buffer> {
  return sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: 3 },
  })
    .jpeg({ quality })
    .toBuffer();
}

/** Reads pixels from a file path (CLI tools, tests, benchmarks). */
export async function decodeImageFile(path: string, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): Promise<RgbImage> {
  const { readFile } = await import('node:fs/promises');
  return decodeImage(await readFile(path), limits);
}

function describeSharpError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  // libvips messages can run to several lines of internals; the first line is the useful part.
  return message.split('\n')[0]!.slice(0, 200);
}

/** What a JPEG's headers say before any pixel is decoded: its size, and whether EXIF (which may rotate it) is present. */
export interface JpegHeader {
  width: number;
  height: number;
  exif: boolean;
}

/**
 * Reads a JPEG's markers up to its frame header (SOFn); null when the bytes are not a JPEG this
 * can read (anything unusual is left to libvips and the full decode).
 */
export function readJpegHeader(b: Uint8Array): JpegHeader | null {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  let exif = false;
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1]!;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    const length = (b[i + 2]! << 8) | b[i + 3]!;
    if (length < 2) return null;
    // SOF0…SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (i + 9 > b.length) return null;
      const height = (b[i + 5]! << 8) | b[i + 6]!;
      const width = (b[i + 7]! << 8) | b[i + 8]!;
      return width > 0 && height > 0 ? { width, height, exif } : null;
    }
    if (marker === 0xda || marker === 0xd9) return null; // scan or end before a frame header
    if (marker === 0xe1 && i + 10 <= b.length && b[i + 4] === 0x45 && b[i + 5] === 0x78 && b[i + 6] === 0x69 && b[i + 7] === 0x66) exif = true;
    i += 2 + length;
  }
  return null;
}

/** A rectangle of whole pixels. */
export interface PixelRect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Decodes only `rect` of a JPEG (libvips stops after the rect's last row and converts only its
 * pixels) into `frame`, a full-size RGB buffer, and returns the full-size image: pixels outside
 * the rect are black, so a caller must read inside the rect only (and check that it did). Null when
 * the image is not one this path handles exactly as decodeImage would (not a plain JPEG, EXIF that
 * may rotate it, larger than the limits or than maxSidePx, a different size than `header` said):
 * the caller then decodes the whole image with decodeImage.
 */
export async function decodeJpegRect(
  bytes: Uint8Array,
  header: JpegHeader,
  rect: PixelRect,
  frame: Uint8Array,
  limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
): Promise<RgbImage | null> {
  const { width, height } = header;
  if (header.exif || bytes.byteLength > limits.maxBytes || !limits.formats.includes('jpeg')) return null;
  if (width * height > limits.maxPixels || Math.max(width, height) > limits.maxSidePx) return null;
  if (frame.length !== width * height * 3) return null;
  if (rect.left < 0 || rect.top < 0 || rect.width < 1 || rect.height < 1 || rect.left + rect.width > width || rect.top + rect.height > height) return null;
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let data: Buffer;
  let info: OutputInfo;
  try {
    ({ data, info } = await sharp(input, { limitInputPixels: limits.maxPixels, failOn: 'error' })
      .extract(rect)
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true }));
  } catch {
    return null; // the full decode reports what is wrong with it
  }
  if (info.channels !== 3 || info.width !== rect.width || info.height !== rect.height) return null;
  frame.fill(0);
  const rowBytes = rect.width * 3;
  for (let y = 0; y < rect.height; y++) {
    const from = y * rowBytes;
    frame.set(data.subarray(from, from + rowBytes), ((rect.top + y) * width + rect.left) * 3);
  }
  return { width, height, data: frame };
}

/**
 * A JPEG decoded at ⅛ scale (libjpeg's DCT scaling: each pixel is the mean of an 8 × 8 block, and
 * most of the decoding work is skipped): what a scene check needs. Null when the image is not one
 * the full decode would take as it is (EXIF, limits, size), as for decodeJpegRect, or smaller than
 * minWidth × minHeight.
 */
export async function decodeJpegEighth(
  bytes: Uint8Array,
  header: JpegHeader,
  limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
  minWidth = 1,
  minHeight = 1,
): Promise<RgbImage | null> {
  const { width, height } = header;
  if (header.exif || bytes.byteLength > limits.maxBytes || !limits.formats.includes('jpeg')) return null;
  if (width * height > limits.maxPixels || Math.max(width, height) > limits.maxSidePx) return null;
  if (width < minWidth || height < minHeight) return null;
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    const { data, info } = await sharp(input, { limitInputPixels: limits.maxPixels, failOn: 'error' })
      .resize(Math.ceil(width / 8), Math.ceil(height / 8), { kernel: 'nearest', fit: 'fill' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) return null;
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch {
    return null;
  }
}
