import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { JpegSplitter } from './jpeg-splitter.ts';

/** A small deterministic PRNG so that failures replay. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

async function jpeg(seed: number, width = 64, height = 48): Promise<Uint8Array> {
  const random = prng(seed);
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.floor(random() * 256);
  return new Uint8Array(await sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: 80 }).toBuffer());
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Feeds bytes in chunks of random sizes in [1, maxChunk]. */
function feed(splitter: JpegSplitter, bytes: Uint8Array, random: () => number, maxChunk: number): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let offset = 0; offset < bytes.length; ) {
    const size = 1 + Math.floor(random() * maxChunk);
    frames.push(...splitter.push(bytes.subarray(offset, offset + size)));
    offset += size;
  }
  return frames;
}

/**
 * A structurally valid JPEG-like byte string with the traps a naive FF D9 search falls into: an
 * APP1 segment holding a whole embedded JPEG (its own SOI/EOI), stuffed FF 00 bytes and restart
 * markers in the entropy-coded data, and fill bytes before a marker.
 */
function trickyJpeg(): Uint8Array {
  const embedded = [0xff, 0xd8, 0xff, 0xdb, 0x00, 0x04, 0x01, 0x02, 0xff, 0xd9];
  const app1Payload = [0x45, 0x78, 0x69, 0x66, 0x00, 0x00, ...embedded];
  const app1 = [0xff, 0xe1, 0x00, app1Payload.length + 2, ...app1Payload];
  const sosHeader = [0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00];
  const entropy = [0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56, 0xff, 0x00, 0xff, 0xd7, 0x78];
  return new Uint8Array([0xff, 0xd8, ...app1, 0xff, 0xff, ...sosHeader, ...entropy, 0xff, 0xd9]);
}

describe('JpegSplitter', () => {
  let images: Uint8Array[];
  beforeAll(async () => {
    images = await Promise.all([1, 2, 3, 4, 5].map((seed) => jpeg(seed, 40 + seed * 8, 30 + seed * 4)));
  });

  it('returns each image of a concatenated stream whole, for any chunking', async () => {
    const stream = concat(images);
    for (const [seed, maxChunk] of [[1, 1], [2, 3], [3, 17], [4, 256], [5, 4096], [6, stream.length]] as const) {
      const splitter = new JpegSplitter({ maxFrameBytes: 1 << 20 });
      const frames = feed(splitter, stream, prng(seed), maxChunk);
      expect(frames).toHaveLength(images.length);
      frames.forEach((frame, i) => expect(Buffer.from(frame).equals(Buffer.from(images[i]!))).toBe(true));
      expect(splitter.bufferedBytes).toBe(0);
      expect(splitter.counters).toMatchObject({ frames: images.length, garbageBytes: 0, corrupt: 0, oversize: 0 });
    }
    // The pieces are real images.
    const meta = await sharp(Buffer.from(images[2]!)).metadata();
    expect(meta.format).toBe('jpeg');
  });

  it('is not fooled by an embedded thumbnail, stuffing, restart markers or fill bytes', () => {
    const tricky = trickyJpeg();
    const stream = concat([tricky, images[0]!, tricky]);
    for (let seed = 1; seed <= 20; seed++) {
      const splitter = new JpegSplitter({ maxFrameBytes: 1 << 20 });
      const frames = feed(splitter, stream, prng(seed), 1 + seed);
      expect(frames.map((f) => f.length)).toEqual([tricky.length, images[0]!.length, tricky.length]);
      expect(Buffer.from(frames[0]!).equals(Buffer.from(tricky))).toBe(true);
    }
  });

  it('skips garbage between images and a stray FF before an SOI', () => {
    const splitter = new JpegSplitter({ maxFrameBytes: 1 << 20 });
    const garbage = new Uint8Array([0x00, 0x13, 0xff, 0x00, 0xff]);
    const frames = feed(splitter, concat([garbage, images[0]!, garbage, images[1]!]), prng(9), 7);
    expect(frames.map((f) => f.length)).toEqual([images[0]!.length, images[1]!.length]);
    expect(splitter.counters.garbageBytes).toBe(2 * garbage.length);
  });

  it('drops a truncated image and keeps the next one', () => {
    const truncatedInScan = images[0]!.subarray(0, images[0]!.length - 100);
    const truncatedInHeader = images[1]!.subarray(0, 30);
    const splitter = new JpegSplitter({ maxFrameBytes: 1 << 20 });
    const frames = feed(splitter, concat([truncatedInScan, images[2]!, truncatedInHeader, images[3]!]), prng(4), 64);
    expect(frames.some((f) => Buffer.from(f).equals(Buffer.from(images[2]!)))).toBe(true);
    expect(Buffer.from(frames[frames.length - 1]!).equals(Buffer.from(images[3]!))).toBe(true);
    expect(splitter.counters.corrupt).toBeGreaterThanOrEqual(1);
  });

  it('drops an image larger than maxFrameBytes and holds no more than that meanwhile', async () => {
    const big = await jpeg(42, 400, 300);
    const small = images[0]!;
    const maxFrameBytes = Math.max(...images.map((i) => i.length)) + 10;
    expect(big.length).toBeGreaterThan(maxFrameBytes * 2);
    const splitter = new JpegSplitter({ maxFrameBytes });
    const frames: Uint8Array[] = [];
    let peak = 0;
    const random = prng(5);
    const stream = concat([small, big, small, big, big, small]);
    for (let offset = 0; offset < stream.length; ) {
      const size = 1 + Math.floor(random() * 5000);
      frames.push(...splitter.push(stream.subarray(offset, offset + size)));
      peak = Math.max(peak, splitter.bufferedBytes);
      offset += size;
    }
    expect(peak).toBeLessThanOrEqual(maxFrameBytes + 4);
    expect(frames.filter((f) => Buffer.from(f).equals(Buffer.from(small)))).toHaveLength(3);
    expect(splitter.counters.oversize).toBeGreaterThanOrEqual(3);
  });

  it('reset forgets a partial image', () => {
    const splitter = new JpegSplitter({ maxFrameBytes: 1 << 20 });
    splitter.push(images[0]!.subarray(0, 200));
    expect(splitter.bufferedBytes).toBeGreaterThan(0);
    splitter.reset();
    expect(splitter.bufferedBytes).toBe(0);
    expect(splitter.push(images[1]!)).toHaveLength(1);
  });
});
