import { describe, expect, it } from 'vitest';
import type { Point, RgbImage } from '../domain/types.ts';
import { anchorOf, boxFromLandmarks, facePatch, FollowScratch, patchCorrelation, plausibleFollow, sceneChanged, sceneThumbnail } from './follow.ts';
import { seededRandom } from '../domain/random.ts';

function image(width: number, height: number, fill: (x: number, y: number) => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.fill(fill(x, y), (y * width + x) * 3, (y * width + x) * 3 + 3);
  return { width, height, data };
}

describe('follow helpers', () => {
  it('re-derives the same box from landmarks that moved and grew with the face', () => {
    const box = { x: 100, y: 80, width: 120, height: 120 };
    const points: Point[] = Array.from({ length: 68 }, (_, i) => ({ x: 130 + (i % 9) * 8, y: 110 + Math.floor(i / 9) * 9 }));
    const anchor = anchorOf(box, points);
    const moved = points.map((p) => ({ x: 1.2 * (p.x - 160) + 160 + 15, y: 1.2 * (p.y - 140) + 140 - 7 }));
    const found = boxFromLandmarks(moved, anchor, 640, 480);
    expect(found.width).toBeCloseTo(144, 6);
    expect(found.height).toBeCloseTo(144, 6);
    // The box scales about the landmarks' centroid, then moves with them.
    const centroid = points.reduce((s, p) => ({ x: s.x + p.x / 68, y: s.y + p.y / 68 }), { x: 0, y: 0 });
    expect(found.x).toBeCloseTo(1.2 * (box.x - centroid.x) + centroid.x + (1.2 * (centroid.x - 160) + 160 + 15 - centroid.x), 6);
    expect(plausibleFollow(box, found)).toBe(true);
    expect(plausibleFollow(box, { ...found, width: 300, height: 300 })).toBe(false);
    expect(plausibleFollow(box, { ...box, x: box.x + 100 })).toBe(false);
  });

  it('correlates a textured patch with itself shifted a little, not with another texture or a flat wall', () => {
    const random = seededRandom(7);
    const noise = Array.from({ length: 200 * 200 }, () => random());
    const texture = image(200, 200, (x, y) => Math.round(128 + 60 * Math.sin(x / 7) * Math.cos(y / 9) + 20 * noise[y * 200 + x]!));
    const a = facePatch(texture, { x: 50, y: 50, width: 100, height: 100 });
    const shifted = facePatch(texture, { x: 53, y: 51, width: 100, height: 100 });
    expect(patchCorrelation(a, a)).toBeCloseTo(1, 5);
    expect(patchCorrelation(a, shifted)).toBeGreaterThan(0.8);
    const other = image(200, 200, (x, y) => Math.round(128 + 60 * Math.sin(y / 5 + x / 11)));
    expect(patchCorrelation(a, facePatch(other, { x: 50, y: 50, width: 100, height: 100 }))).toBeLessThan(0.5);
    const flat = facePatch(image(200, 200, () => 90), { x: 50, y: 50, width: 100, height: 100 });
    expect(patchCorrelation(a, flat)).toBe(0);
  });

  it('sees a face-sized change in a scene, not noise', () => {
    const random = seededRandom(3);
    const scene = image(640, 480, (x) => 60 + (x >> 3));
    const noisy = image(640, 480, (x) => 60 + (x >> 3) + Math.round(4 * (random() - 0.5)));
    const withBlob = image(640, 480, (x, y) => (x > 560 && y > 300 && y < 420 ? 200 : 60 + (x >> 3)));
    const reference = sceneThumbnail(scene);
    expect(sceneChanged(reference, sceneThumbnail(noisy))).toBe(false);
    expect(sceneChanged(reference, sceneThumbnail(withBlob))).toBe(true);
  });
});

describe('FollowScratch.withFrameBuffer', () => {
  it('reuses one frame buffer from run to run while the size stays, and gives an overlapping run none', async () => {
    const scratch = new FollowScratch();
    const first = await scratch.withFrameBuffer(async (pixels) => pixels!(12));
    const again = await scratch.withFrameBuffer(async (pixels) => pixels!(12));
    expect(again).toBe(first);
    const resized = await scratch.withFrameBuffer(async (pixels) => pixels!(30));
    expect(resized).not.toBe(first);
    expect(resized.length).toBe(30);
    let inner: unknown = 'unset';
    await scratch.withFrameBuffer(async () => {
      inner = await scratch.withFrameBuffer(async (pixels) => pixels);
    });
    expect(inner).toBeUndefined();
    // Released after a failing run too.
    await expect(scratch.withFrameBuffer(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await scratch.withFrameBuffer(async (pixels) => pixels!(30))).toBe(resized);
  });
});
