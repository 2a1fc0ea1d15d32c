import sharp, { type Metadata, type OutputInfo } from 'sharp';
import type { ImageLimits } from '../config/config.ts';
import type { RgbImage } from '../domain/types.ts';
import { ImageTooLargeError, InvalidImageError } from './errors.ts';
import { turboJpeg } from './turbo-jpeg.ts';

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
export async function decodeImage(bytes: Uint8Array, limits: ImageLimits = DEFAULT_IMAGE_LIMITS, pixels?: PixelBuffers): Promise<RgbImage> {
  if (bytes.byteLength === 0) throw new InvalidImageError('the image is empty (0 bytes)');
  if (bytes.byteLength > limits.maxBytes) {
    throw new ImageTooLargeError(`the image is ${bytes.byteLength} bytes; the limit is ${limits.maxBytes} bytes`);
  }
  const plain = decodePlainJpeg(bytes, limits, pixels);
  if (plain) return plain;
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

/** Where a decode may write its pixels: a buffer of exactly `bytes` bytes (reused across frames by a worker). */
export type PixelBuffers = (bytes: number) => Uint8Array;

/**
 * A plain JPEG (no EXIF, which may rotate it, and no ICC profile, which libvips would convert
 * from) within the limits and maxSidePx, decoded by libjpeg-turbo on the calling thread: ≈0.5 ms
 * for a 640×480 camera frame where a libvips pipeline costs ≈2.8 ms of CPU, most of it the
 * pipeline's own set-up (≈1.6 ms even for a 4 KB image). Null for anything else, or when the
 * data is damaged (libjpeg-turbo reports warnings such as a truncated scan as errors) or the
 * binding is missing: decodeImage then decodes with libvips, which classifies the failure.
 */
export function decodePlainJpeg(bytes: Uint8Array, limits: ImageLimits = DEFAULT_IMAGE_LIMITS, pixels?: PixelBuffers): RgbImage | null {
  if (!turboJpeg || bytes.byteLength > limits.maxBytes || !limits.formats.includes('jpeg')) return null;
  const header = readJpegHeader(bytes);
  if (!header || header.exif || header.icc) return null;
  const { width, height } = header;
  if (width * height > limits.maxPixels || Math.max(width, height) > limits.maxSidePx) return null;
  const length = width * height * 3;
  const target = pixels?.(length);
  // allocUnsafeSlow: a small image never lands in a slice of Node's shared pool; its pixels own their buffer.
  const out = target?.byteLength === length ? Buffer.from(target.buffer, target.byteOffset, length) : Buffer.allocUnsafeSlow(length);
  try {
    const decoded = turboJpeg.decompressSync(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), out, { format: turboJpeg.FORMAT_RGB });
    if (decoded.width !== width || decoded.height !== height || decoded.size !== length) return null;
  } catch {
    return null;
  }
  return { width, height, data: new Uint8Array(out.buffer, out.byteOffset, length) };
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

/** What a JPEG's headers say before any pixel is decoded: its size, and whether EXIF (which may rotate it) or an ICC profile is present. */
export interface JpegHeader {
  width: number;
  height: number;
  exif: boolean;
  icc: boolean;
}

/**
 * Reads a JPEG's markers up to its frame header (SOFn); null when the bytes are not a JPEG this
 * can read (anything unusual is left to libvips and the full decode).
 */
export function readJpegHeader(b: Uint8Array): JpegHeader | null {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  let exif = false;
  let icc = false;
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
      return width > 0 && height > 0 ? { width, height, exif, icc } : null;
    }
    if (marker === 0xda || marker === 0xd9) return null; // scan or end before a frame header
    if (marker === 0xe1 && i + 10 <= b.length && b[i + 4] === 0x45 && b[i + 5] === 0x78 && b[i + 6] === 0x69 && b[i + 7] === 0x66) exif = true;
    // APP2 "ICC_PROFILE"
    if (marker === 0xe2 && i + 15 <= b.length && b[i + 4] === 0x49 && b[i + 5] === 0x43 && b[i + 6] === 0x43 && b[i + 7] === 0x5f) icc = true;
    i += 2 + length;
  }
  return null;
}

