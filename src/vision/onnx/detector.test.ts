import { describe, expect, it } from 'vitest';
import { emptyCandidates, nonMaximumSuppression, tileGrid, type Candidates } from './detector.ts';

function candidates(rows: [number, number, number, number, number, boolean?][]): Candidates {
  const c = emptyCandidates();
  for (const [x1, y1, x2, y2, score, fromTile] of rows) {
    c.x1.push(x1);
    c.y1.push(y1);
    c.x2.push(x2);
    c.y2.push(y2);
    c.score.push(score);
    c.fromTile.push(fromTile ?? false);
  }
  return c;
}

describe('nonMaximumSuppression', () => {
  it('keeps the most confident of overlapping boxes and every separate box, best first', () => {
    const c = candidates([
      [0, 0, 100, 100, 0.8],
      [5, 5, 105, 105, 0.95], // IoU with the first ≈ 0.82
      [300, 0, 400, 100, 0.7],
      [40, 0, 140, 100, 0.9], // IoU with the second ≈ 0.45: dropped at 0.4, kept at 0.5
    ]);
    expect(nonMaximumSuppression(c, 0.4, 10)).toEqual([1, 2]);
    expect(nonMaximumSuppression(c, 0.5, 10)).toEqual([1, 3, 2]);
  });

  it('stops at maxKept', () => {
    const c = candidates([
      [0, 0, 10, 10, 0.7],
      [100, 0, 110, 10, 0.9],
      [200, 0, 210, 10, 0.8],
    ]);
    expect(nonMaximumSuppression(c, 0.4, 2)).toEqual([1, 2]);
  });

  it('drops a tiled-pass box lying inside a kept face, but not a full-pass one', () => {
    const inner: [number, number, number, number, number, boolean][] = [
      [0, 0, 200, 200, 0.9, false],
      [60, 60, 100, 100, 0.99, false],
    ];
    expect(nonMaximumSuppression(candidates(inner), 0.4, 10)).toEqual([1, 0]);
    inner[1]![5] = true;
    expect(nonMaximumSuppression(candidates(inner), 0.4, 10)).toEqual([1]);
  });
});

describe('tileGrid', () => {
  it('covers a landscape photo with overlapping 4:3 tiles, two across', () => {
    const tiles = tileGrid(1920, 1280, 192);
    const columns = new Set(tiles.map((t) => t.x)).size;
    expect(columns).toBe(2);
    for (const t of tiles) {
      expect(t.width / t.height).toBeCloseTo(4 / 3, 6);
      expect(t.x).toBeGreaterThanOrEqual(0);
      expect(t.y).toBeGreaterThanOrEqual(0);
      expect(t.x + t.width).toBeLessThanOrEqual(1920 + 1e-9);
      expect(t.y + t.height).toBeLessThanOrEqual(1280 + 1e-9);
    }
    // Any 192-px square lies whole inside some tile.
    for (let y = 0; y + 192 <= 1280; y += 37) {
      for (let x = 0; x + 192 <= 1920; x += 41) {
        const inside = tiles.some((t) => x >= t.x && y >= t.y && x + 192 <= t.x + t.width && y + 192 <= t.y + t.height);
        expect(inside, `square at ${x},${y}`).toBe(true);
      }
    }
  });

  it('splits a portrait photo along its height', () => {
    const tiles = tileGrid(1080, 1920, 150);
    expect(new Set(tiles.map((t) => t.y)).size).toBeGreaterThanOrEqual(2);
    for (const t of tiles) expect(t.y + t.height).toBeLessThanOrEqual(1920 + 1e-9);
  });
});
