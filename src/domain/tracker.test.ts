import { describe, expect, it } from 'vitest';
import {
  DEFAULT_EMBEDDING_POLICY,
  FaceTracker,
  cosine,
  embeddingReason,
  minCostAssignment,
  needsEmbedding,
  offAxisDeg,
  type TrackView,
  type TrackerDetection,
} from './tracker.ts';
import type { HeadPose } from './types.ts';
import { seededRandom as random } from './random.ts';

const FRONTAL: HeadPose = { yawDeg: 0, pitchDeg: 0, rollDeg: 0 };
const FRAME_MS = 1000 / 30;

function face(x: number, y: number, side = 100, extra: Partial<TrackerDetection> & { score?: number; pass?: boolean } = {}): TrackerDetection {
  const { score = 0.8, pass = true, ...rest } = extra;
  return { box: { x, y, width: side, height: side }, quality: { score, pass }, pose: FRONTAL, ...rest };
}

/** A unit vector standing for one person's face; `noise` perturbs it like another view of the same face. */
function embedding(person: number, noise = 0, view = 0): Float32Array {
  const base = random(1000 + person);
  const jitter = random(5000 + person * 97 + view);
  const v = new Float32Array(128);
  let norm = 0;
  for (let i = 0; i < v.length; i++) {
    v[i] = base() - 0.5 + noise * (jitter() - 0.5);
    norm += v[i]! * v[i]!;
  }
  for (let i = 0; i < v.length; i++) v[i]! /= Math.sqrt(norm);
  return v;
}

const byId = (tracks: TrackView[], id: string) => tracks.find((t) => t.id === id);

describe('minCostAssignment', () => {
  function bruteForce(cost: Float64Array, rows: number, cols: number): number {
    let best = Infinity;
    const usedCols = new Array<boolean>(cols).fill(false);
    const k = Math.min(rows, cols);
    // Choose which rows take part when there are more rows than columns, then permute.
    const walk = (row: number, assigned: number, total: number) => {
      if (assigned === k) {
        best = Math.min(best, total);
        return;
      }
      if (row === rows) return;
      if (rows - row > k - assigned) walk(row + 1, assigned, total);
      for (let c = 0; c < cols; c++) {
        if (usedCols[c]) continue;
        usedCols[c] = true;
        walk(row + 1, assigned + 1, total + cost[row * cols + c]!);
        usedCols[c] = false;
      }
    };
    walk(0, 0, 0);
    return best;
  }

  it('finds the minimum total cost, for square and rectangular matrices', () => {
    const rand = random(7);
    for (let trial = 0; trial < 300; trial++) {
      const rows = 1 + Math.floor(rand() * 6);
      const cols = 1 + Math.floor(rand() * 6);
      const cost = Float64Array.from({ length: rows * cols }, () => Math.round(rand() * 20) / 4);
      const assignment = minCostAssignment(cost, rows, cols);
      const usedCols = new Set<number>();
      let total = 0;
      let assigned = 0;
      for (let r = 0; r < rows; r++) {
        const c = assignment[r]!;
        if (c < 0) continue;
        expect(usedCols.has(c)).toBe(false);
        usedCols.add(c);
        total += cost[r * cols + c]!;
        assigned++;
      }
      expect(assigned).toBe(Math.min(rows, cols));
      expect(total).toBeCloseTo(bruteForce(cost, rows, cols), 9);
    }
  });

  it('prefers the crossing-free pairing a greedy pass would miss', () => {
    // Greedy takes (0,0) at cost 1 and is left with (1,1) at 10; the optimum is (0,1) + (1,0) = 4.
    const assignment = minCostAssignment(Float64Array.from([1, 2, 2, 10]), 2, 2);
    expect([...assignment]).toEqual([1, 0]);
  });

  it('handles empty sides and rejects a cost of the wrong size', () => {
    expect([...minCostAssignment(new Float64Array(0), 3, 0)]).toEqual([-1, -1, -1]);
    expect([...minCostAssignment(new Float64Array(0), 0, 2)]).toEqual([]);
    expect(() => minCostAssignment(new Float64Array(3), 2, 2)).toThrow(RangeError);
  });
});

describe('FaceTracker: ids', () => {
  it('keeps one id for a face moving smoothly, and reports it started once', () => {
    const tracker = new FaceTracker();
    const started: string[] = [];
    for (let i = 0; i < 90; i++) {
      const t = i * FRAME_MS;
      // 150 px/s to the right with a bob up and down.
      const u = tracker.update([face(100 + (150 * t) / 1000, 200 + 20 * Math.sin(t / 200), 120)], t);
      started.push(...u.started);
      expect(u.detectionTrackIds).toEqual(['1']);
      expect(u.tracks).toHaveLength(1);
      expect(u.tracks[0]!.detectionIndex).toBe(0);
      expect(u.left).toEqual([]);
    }
    expect(started).toEqual(['1']);
    const track = tracker.track('1')!;
    expect(track.ageFrames).toBe(90);
    expect(track.firstSeenMs).toBe(0);
    expect(track.lastSeenMs).toBeCloseTo(89 * FRAME_MS, 9);
  });

  it('gives increasing ids per tracker, with the configured prefix', () => {
    const tracker = new FaceTracker({ idPrefix: 'cam1-' });
    const first = tracker.update([face(0, 0), face(300, 0)], 0);
    expect(first.started).toEqual(['cam1-1', 'cam1-2']);
    expect(first.detectionTrackIds).toEqual(['cam1-1', 'cam1-2']);
    const second = tracker.update([face(300, 0), face(600, 0), face(0, 0)], 40);
    expect(second.detectionTrackIds).toEqual(['cam1-2', 'cam1-3', 'cam1-1']);
    expect(second.started).toEqual(['cam1-3']);
    // Another camera's tracker counts on its own.
    expect(new FaceTracker().update([face(0, 0)], 0).started).toEqual(['1']);
  });

  it('keeps the ids of two faces crossing each other (velocity prediction)', () => {
    const tracker = new FaceTracker();
    for (let i = 0; i <= 30; i++) {
      const t = i * (1000 / 15);
      // A goes right and B goes left at 400 px/s; they pass with their boxes mostly overlapping.
      const ax = 100 + (400 * t) / 1000;
      const bx = 500 - (400 * t) / 1000;
      const u = tracker.update([face(ax, 100), face(bx, 130)], t);
      expect(u.detectionTrackIds).toEqual(['1', '2']);
    }
  });

  it('keeps the ids of two faces crossing when the one behind is hidden for a while', () => {
    const tracker = new FaceTracker();
    let hiddenFrames = 0;
    for (let i = 0; i <= 40; i++) {
      const t = i * FRAME_MS;
      const ax = 100 + (300 * t) / 1000;
      const bx = 500 - (300 * t) / 1000;
      // B walks behind A: while their boxes overlap, the detector sees only A.
      const hidden = Math.abs(ax - bx) < 80;
      if (hidden) hiddenFrames++;
      const u = tracker.update(hidden ? [face(ax, 100)] : [face(ax, 100), face(bx, 105)], t);
      expect(u.detectionTrackIds).toEqual(hidden ? ['1'] : ['1', '2']);
      expect(u.started).toEqual(i === 0 ? ['1', '2'] : []);
    }
    expect(hiddenFrames).toBeGreaterThan(5);
  });

  it('keeps the ids of two faces that meet and turn back only with appearance (geometry alone swaps them)', () => {
    const run = (withEmbeddings: boolean) => {
      const tracker = new FaceTracker();
      const ids: (string | null)[][] = [];
      for (let i = 0; i <= 20; i++) {
        // They walk towards each other for 10 frames, meet, and both turn back.
        const step = i <= 10 ? i : 20 - i;
        const a = face(100 + 10 * step, 100, 100, withEmbeddings ? { embedding: embedding(1, 0.3, i) } : {});
        const b = face(300 - 10 * step, 110, 100, withEmbeddings ? { embedding: embedding(2, 0.3, i) } : {});
        ids.push(tracker.update([a, b], i * FRAME_MS).detectionTrackIds);
      }
      return ids;
    };
    const withAppearance = run(true);
    expect(withAppearance.every((ids) => ids[0] === '1' && ids[1] === '2')).toBe(true);
    const geometryOnly = run(false);
    expect(geometryOnly[20]).toEqual(['2', '1']);
  });

  it('lets a clearly different embedding veto a match at the same place (someone else stepped in)', () => {
    const tracker = new FaceTracker();
    tracker.update([face(100, 100, 100, { embedding: embedding(1) })], 0);
    const u = tracker.update([face(102, 100, 100, { embedding: embedding(2) })], FRAME_MS);
    expect(u.detectionTrackIds).toEqual(['2']);
    expect(u.started).toEqual(['2']);
    expect(byId(u.tracks, '1')!.missedFrames).toBe(1);
    // The same face with another view's noise continues its track.
    const same = tracker.update([face(104, 100, 100, { embedding: embedding(2, 0.4, 3) })], 2 * FRAME_MS);
    expect(cosine(embedding(2), embedding(2, 0.4, 3))).toBeGreaterThan(0.8);
    expect(same.detectionTrackIds).toEqual(['2']);
  });
});

describe('FaceTracker: absence and leaving', () => {
  it('keeps the id through a gap shorter than leftAfterMs', () => {
    const tracker = new FaceTracker({ leftAfterMs: 2000 });
    for (let t = 0; t <= 1000; t += 100) tracker.update([face(200, 200)], t);
    for (let t = 1100; t < 2500; t += 100) {
      const u = tracker.update([], t);
      expect(u.left).toEqual([]);
      expect(u.tracks[0]!.missedFrames).toBe((t - 1000) / 100);
      expect(u.tracks[0]!.detectionIndex).toBeNull();
      expect(u.tracks[0]!.box).toEqual({ x: 200, y: 200, width: 100, height: 100 });
    }
    const back = tracker.update([face(205, 198)], 2500);
    expect(back.detectionTrackIds).toEqual(['1']);
    expect(back.started).toEqual([]);
    expect(back.tracks[0]!.missedFrames).toBe(0);
    expect(back.tracks[0]!.reacquiredAfterMs).toBe(1500);
    expect(tracker.update([face(205, 198)], 2600).tracks[0]!.reacquiredAfterMs).toBe(0);
  });

  it('reports a face absent for leftAfterMs as left exactly once; it comes back with a new id', () => {
    const tracker = new FaceTracker({ leftAfterMs: 2000 });
    for (let t = 0; t <= 1000; t += 100) tracker.update([face(200, 200)], t);
    const lefts: TrackView[] = [];
    for (let t = 1100; t <= 4000; t += 100) {
      const u = tracker.update([], t);
      lefts.push(...u.left);
      if (t < 3000) expect(u.tracks).toHaveLength(1);
      else expect(u.tracks).toHaveLength(0);
    }
    expect(lefts).toHaveLength(1);
    expect(lefts[0]!.id).toBe('1');
    expect(lefts[0]!.lastSeenMs).toBe(1000);
    expect(lefts[0]!.ageFrames).toBe(11);
    const back = tracker.update([face(200, 200)], 4100);
    expect(back.started).toEqual(['2']);
  });

  it('sweep reports left tracks when no frame arrives, once', () => {
    const tracker = new FaceTracker({ leftAfterMs: 1500 });
    tracker.update([face(0, 0), face(400, 0)], 0);
    tracker.update([face(400, 0)], 1000);
    expect(tracker.sweep(1400)).toEqual([]);
    expect(tracker.sweep(1500).map((t) => t.id)).toEqual(['1']);
    expect(tracker.sweep(1600)).toEqual([]);
    expect(tracker.sweep(2500).map((t) => t.id)).toEqual(['2']);
    expect(tracker.size).toBe(0);
  });

  it('does not match a detection to a track that has already left', () => {
    const tracker = new FaceTracker({ leftAfterMs: 500 });
    tracker.update([face(0, 0)], 0);
    const u = tracker.update([face(0, 0)], 500);
    expect(u.left.map((t) => t.id)).toEqual(['1']);
    expect(u.started).toEqual(['2']);
  });

  it('clear() ends every track', () => {
    const tracker = new FaceTracker();
    tracker.update([face(0, 0), face(300, 0)], 0);
    expect(tracker.clear().map((t) => t.id)).toEqual(['1', '2']);
    expect(tracker.tracks()).toEqual([]);
    expect(tracker.update([face(0, 0)], 10).started).toEqual(['3']);
  });
});

describe('FaceTracker: appearance re-attach', () => {
  it('re-attaches a missing track to a detection elsewhere whose embedding matches', () => {
    const tracker = new FaceTracker();
    tracker.update([face(50, 100, 100, { embedding: embedding(1) })], 0);
    tracker.update([], 100);
    tracker.update([], 200);
    const u = tracker.update([face(500, 120, 100, { embedding: embedding(1, 0.4, 9) })], 300);
    expect(u.detectionTrackIds).toEqual(['1']);
    expect(u.started).toEqual([]);
    expect(u.tracks[0]!.reacquiredAfterMs).toBe(300);
  });

  it('starts a new track for a far detection with no embedding, or with a stranger’s', () => {
    const tracker = new FaceTracker();
    tracker.update([face(50, 100, 100, { embedding: embedding(1) })], 0);
    tracker.update([], 100);
    expect(tracker.update([face(500, 120)], 200).started).toEqual(['2']);
    expect(tracker.update([face(800, 120, 100, { embedding: embedding(3) })], 300).started).toEqual(['3']);
  });

  it('merges a just-started track into the missing one its first recorded embedding matches', () => {
    const tracker = new FaceTracker();
    tracker.update([face(50, 100)], 0);
    expect(tracker.recordEmbedding('1', embedding(1), 0)).toEqual({ trackId: '1' });
    tracker.update([face(52, 100)], 100);
    tracker.update([], 200);
    // It reappears far away, without an embedding: a provisional new track.
    const u = tracker.update([face(600, 100, 110, { score: 0.9 })], 300);
    expect(u.started).toEqual(['2']);
    const record = tracker.recordEmbedding('2', embedding(1, 0.4, 5), 300);
    expect(record.trackId).toBe('1');
    expect(record.mergedTrackId).toBe('2');
    expect(record.similarityToTrack).toBeGreaterThan(0.8);
    const merged = tracker.tracks();
    expect(merged.map((t) => t.id)).toEqual(['1']);
    expect(merged[0]).toMatchObject({
      box: { x: 600, y: 100, width: 110, height: 110 },
      firstSeenMs: 0,
      lastSeenMs: 300,
      ageFrames: 3,
      missedFrames: 0,
      detectionIndex: 0,
      bestQuality: 0.9,
      reacquiredAfterMs: 200,
      embeddings: 2,
    });
    // It continues as track 1; the merged id never leaves.
    expect(tracker.update([face(605, 100, 110)], 400).detectionTrackIds).toEqual(['1']);
    expect(tracker.sweep(10_000).map((t) => t.id)).toEqual(['1']);
  });

  it('does not merge with a track seen in the same frame, nor with a stranger', () => {
    const tracker = new FaceTracker();
    tracker.update([face(50, 100)], 0);
    tracker.recordEmbedding('1', embedding(1), 0);
    // A look-alike appears while track 1 is still in view.
    tracker.update([face(52, 100), face(500, 100)], 100);
    expect(tracker.recordEmbedding('2', embedding(1, 0.3, 1), 100)).toEqual({ trackId: '2' });
    tracker.update([], 200);
    tracker.update([face(800, 100)], 300);
    expect(tracker.recordEmbedding('3', embedding(4), 300)).toEqual({ trackId: '3' });
    expect(tracker.tracks().map((t) => t.id)).toEqual(['1', '2', '3']);
  });

  it('reports the similarity of a later embedding to the track’s previous one; unknown ids pass through', () => {
    const tracker = new FaceTracker();
    tracker.update([face(0, 0)], 0);
    tracker.recordEmbedding('1', embedding(1), 0);
    const other = tracker.recordEmbedding('1', embedding(2), 100);
    expect(other.trackId).toBe('1');
    expect(other.similarityToTrack).toBeLessThan(0.3);
    expect(tracker.recordEmbedding('nope', embedding(1), 100)).toEqual({ trackId: 'nope' });
  });
});

describe('FaceTracker: motion and stability', () => {
  it('a still face (with detector jitter) has a small motion score and its stable time grows', () => {
    const tracker = new FaceTracker({ stableMotionMaxPerS: 0.25, stableAfterMs: 1000 });
    const rand = random(3);
    let view: TrackView | undefined;
    const stableAt: number[] = [];
    for (let i = 0; i <= 90; i++) {
      const t = i * FRAME_MS;
      const u = tracker.update([face(300 + 3 * (rand() - 0.5), 200 + 3 * (rand() - 0.5), 120 + 2 * (rand() - 0.5))], t);
      view = u.tracks[0]!;
      stableAt.push(view.stableForMs);
    }
    expect(view!.motionScore).toBeLessThan(0.1);
    expect(view!.stableForMs).toBeGreaterThan(2500);
    expect(view!.stable).toBe(true);
    // Once still, it stays still: the stable time only grows.
    const fromOneSecond = stableAt.slice(30);
    expect(fromOneSecond.every((v, k) => k === 0 || v > fromOneSecond[k - 1]!)).toBe(true);
  });

  it('a moving face scores its speed in box sides per second and is never stable', () => {
    const tracker = new FaceTracker();
    let view: TrackView | undefined;
    for (let i = 0; i <= 60; i++) {
      const t = i * FRAME_MS;
      // 200 px/s for a 100-px face: 2 sides per second.
      view = tracker.update([face(100 + (200 * t) / 1000, 200)], t).tracks[0]!;
      if (i >= 2) {
        expect(view.stableForMs).toBe(0);
        expect(view.stable).toBe(false);
      }
    }
    expect(view!.motionScore).toBeCloseTo(2, 6);
  });

  it('counts growth of the box (walking towards the camera) as motion', () => {
    const tracker = new FaceTracker();
    let view: TrackView | undefined;
    for (let i = 0; i <= 30; i++) {
      const t = i * FRAME_MS;
      const side = 100 + (50 * t) / 1000;
      view = tracker.update([face(300 - side / 2, 200 - side / 2, side)], t).tracks[0]!;
    }
    // 50 px/s of growth on a 150-px face.
    expect(view!.motionScore).toBeCloseTo(50 / 150, 1);
  });

  it('becomes stable within the motion window after stopping, and stableForMs resets on moving again', () => {
    const tracker = new FaceTracker({ motionWindowMs: 500, stableMotionMaxPerS: 0.25 });
    let x = 100;
    let view: TrackView | undefined;
    let t = 0;
    const frame = (dx: number) => {
      x += dx;
      view = tracker.update([face(x, 200)], t).tracks[0]!;
      t += FRAME_MS;
    };
    for (let i = 0; i < 30; i++) frame(5); // 150 px/s
    expect(view!.stableForMs).toBe(0);
    for (let i = 0; i < 30; i++) frame(0); // stop for 1 s
    expect(view!.motionScore).toBeLessThan(0.01);
    expect(view!.stableForMs).toBeGreaterThan(400);
    expect(view!.stableForMs).toBeLessThan(1000);
    for (let i = 0; i < 10; i++) frame(5);
    expect(view!.stableForMs).toBe(0);
  });

  it('measures motion at a low frame rate too (the previous sample is always in the window)', () => {
    const tracker = new FaceTracker({ motionWindowMs: 500 });
    tracker.update([face(100, 100)], 0);
    // One frame a second, 50 px apart: half a side per second.
    const view = tracker.update([face(150, 100)], 1000).tracks[0]!;
    expect(view.id).toBe('1');
    expect(view.motionScore).toBeCloseTo(0.5, 9);
  });

  it('freezes stable time while a track is missing', () => {
    const tracker = new FaceTracker();
    for (let t = 0; t <= 1000; t += 50) tracker.update([face(100, 100)], t);
    const before = tracker.track('1')!.stableForMs;
    const during = tracker.update([], 1500).tracks[0]!;
    expect(during.stableForMs).toBe(before);
    expect(during.missedFrames).toBe(1);
  });
});

describe('FaceTracker: limits and input', () => {
  it('tracks at most maxTracks faces, the better views first', () => {
    const tracker = new FaceTracker({ maxTracks: 2 });
    const u = tracker.update([face(0, 0, 100, { score: 0.2 }), face(300, 0, 100, { score: 0.9 }), face(600, 0, 100, { score: 0.5 })], 0);
    expect(u.detectionTrackIds).toEqual([null, '1', '2']);
    expect(u.started).toEqual(['1', '2']);
  });

  it('makes room by dropping the longest-missing track, reported as left', () => {
    const tracker = new FaceTracker({ maxTracks: 2 });
    tracker.update([face(0, 0), face(300, 0)], 0);
    tracker.update([face(300, 0)], 100);
    const u = tracker.update([face(300, 0), face(600, 0)], 200);
    expect(u.left.map((t) => t.id)).toEqual(['1']);
    expect(u.detectionTrackIds).toEqual(['2', '3']);
    expect(tracker.size).toBe(2);
  });

  it('treats a timestamp that goes backwards as the latest one', () => {
    const tracker = new FaceTracker();
    tracker.update([face(0, 0)], 1000);
    const u = tracker.update([face(0, 0)], 500);
    expect(u.tracks[0]!.lastSeenMs).toBe(1000);
    expect(u.tracks[0]!.motionScore).toBe(0);
  });

  it('returns snapshots that later updates and callers cannot change', () => {
    const tracker = new FaceTracker();
    const first = tracker.update([face(0, 0)], 0).tracks[0]!;
    first.box.x = 999;
    tracker.update([face(10, 0)], 100);
    expect(first.lastSeenMs).toBe(0);
    expect(tracker.track('1')!.box.x).toBe(10);
  });

  it('rejects bad boxes, timestamps, embeddings and config', () => {
    const tracker = new FaceTracker();
    expect(() => tracker.update([face(0, 0, 0)], 0)).toThrow(RangeError);
    expect(() => tracker.update([face(Number.NaN, 0)], 0)).toThrow(RangeError);
    expect(() => tracker.update([face(0, 0)], Number.NaN)).toThrow(RangeError);
    expect(() => tracker.update([face(0, 0, 100, { score: Number.NaN })], 0)).toThrow(RangeError);
    tracker.update([face(0, 0)], 0);
    tracker.recordEmbedding('1', embedding(1), 0);
    expect(() => tracker.update([face(0, 0, 100, { embedding: new Float32Array(64) })], 10)).toThrow(RangeError);
    expect(() => new FaceTracker({ iouMatchMin: 0 })).toThrow(RangeError);
    expect(() => new FaceTracker({ maxTracks: 0 })).toThrow(RangeError);
    expect(() => new FaceTracker({ leftAfterMs: -1 })).toThrow(RangeError);
    expect(() => new FaceTracker({ appearanceMinSimilarity: 2 })).toThrow(RangeError);
  });

  it('update() with 10 faces costs well under 0.1 ms', () => {
    const tracker = new FaceTracker();
    const frames = 3000;
    const run = (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const t = i * FRAME_MS;
        const dets: TrackerDetection[] = [];
        for (let k = 0; k < 10; k++) dets.push(face(60 * k + 20 * Math.sin(t / 300 + k), 100 + 15 * Math.cos(t / 250 + k), 50));
        tracker.update(dets, t);
      }
    };
    run(0, 300); // warm-up
    // CPU time, not wall time: the test machine is shared, and waiting for a core is not cost.
    const start = process.cpuUsage();
    const wallStart = performance.now();
    run(300, frames);
    const cpu = process.cpuUsage(start);
    const perUpdateUs = (cpu.user + cpu.system) / (frames - 300);
    const wallUs = ((performance.now() - wallStart) * 1000) / (frames - 300);
    expect(tracker.size).toBe(10);
    console.log(`tracker: update() with 10 faces: ${perUpdateUs.toFixed(1)} CPU-µs (${wallUs.toFixed(1)} µs wall)`);
    expect(perUpdateUs).toBeLessThan(100);
  });
});

describe('embedding policy', () => {
  const view = (score = 0.8, pose: HeadPose = FRONTAL, pass = true) => ({ quality: { score, pass }, pose });
  const embedded = { embeddings: 1, lastEmbeddedMs: 0, bestEmbeddedQuality: 0.6, bestEmbeddedOffAxisDeg: 5, reacquiredAfterMs: 0 };
  const embeddedTurned = { ...embedded, bestEmbeddedOffAxisDeg: 20 };

  it('embeds a new track at once, then not again in the same frame', () => {
    const tracker = new FaceTracker();
    tracker.update([face(0, 0)], 0);
    expect(tracker.embeddingReason('1', false)).toBe('new');
    tracker.recordEmbedding('1', embedding(1), 0);
    expect(tracker.needsEmbedding('1', false)).toBe(false);
    tracker.update([face(1, 0)], 100);
    expect(tracker.needsEmbedding('1', false)).toBe(false);
    tracker.update([face(1, 0)], 250);
    expect(tracker.embeddingReason('1', false)).toBe('unsettled');
  });

  it('never embeds a view that fails quality, nor a track missed in this frame, nor an unknown id', () => {
    const tracker = new FaceTracker();
    tracker.update([face(0, 0, 100, { pass: false })], 0);
    expect(tracker.needsEmbedding('1', false)).toBe(false);
    tracker.update([], 100);
    expect(tracker.needsEmbedding('1', false)).toBe(false);
    expect(tracker.needsEmbedding('42', false)).toBe(false);
    expect(embeddingReason({ ...embedded, embeddings: 0, lastEmbeddedMs: null }, view(0.9, FRONTAL, false), 0, false)).toBeNull();
  });

  it('settled tracks are re-embedded rarely, unsettled ones at the re-embed interval', () => {
    const count = (settled: boolean) => {
      const tracker = new FaceTracker();
      const reasons: string[] = [];
      for (let i = 0; i <= 300; i++) {
        const t = i * FRAME_MS; // 10 s of a still face
        tracker.update([face(200, 200)], t);
        const reason = tracker.embeddingReason('1', settled && reasons.length > 0);
        if (reason) {
          reasons.push(reason);
          tracker.recordEmbedding('1', embedding(1, 0.2, i), t);
        }
      }
      return reasons;
    };
    const settled = count(true);
    expect(settled[0]).toBe('new');
    expect(settled.slice(1).every((r) => r === 'recheck')).toBe(true);
    // One per 2 s, each landing on the first frame after the interval (so 4 or 5 in 10 s).
    expect(settled.length).toBeGreaterThanOrEqual(1 + 4);
    expect(settled.length).toBeLessThanOrEqual(1 + 5);
    const unsettled = count(false);
    expect(unsettled.slice(1).every((r) => r === 'unsettled')).toBe(true);
    expect(unsettled.length).toBeGreaterThanOrEqual(36);
    expect(unsettled.length).toBeLessThanOrEqual(41);
  });

  it('a clearly better view is embedded at once; a slightly better one is not', () => {
    expect(embeddingReason(embedded, view(0.75), 150, true)).toBe('better_view');
    expect(embeddingReason(embedded, view(0.7), 150, true)).toBeNull();
    expect(embeddingReason(embedded, view(0.7), 150, false)).toBeNull();
    // …but not twice within minIntervalMs.
    expect(embeddingReason(embedded, view(0.95), 50, false)).toBeNull();
  });

  it('a noticeably more frontal view is a better view, unless it is clearly worse', () => {
    expect(embeddingReason(embeddedTurned, view(0.6, { yawDeg: 8, pitchDeg: 0, rollDeg: 0 }), 150, true)).toBe('better_view');
    expect(embeddingReason(embeddedTurned, view(0.6, { yawDeg: -6, pitchDeg: 6, rollDeg: 0 }), 150, true)).toBe('better_view');
    expect(embeddingReason(embeddedTurned, view(0.6, { yawDeg: 15, pitchDeg: 0, rollDeg: 0 }), 150, true)).toBeNull();
    expect(embeddingReason(embeddedTurned, view(0.4, FRONTAL), 150, true)).toBeNull();
    expect(offAxisDeg({ yawDeg: 3, pitchDeg: -4, rollDeg: 30 })).toBe(5);
  });

  it('a settled track gets no more embeddings past the cap, whatever the view', () => {
    const many = { ...embedded, embeddings: DEFAULT_EMBEDDING_POLICY.maxEmbeddingsPerTrack };
    expect(embeddingReason(many, view(0.99), 60_000, true)).toBeNull();
    expect(embeddingReason(many, view(0.99), 60_000, false)).toBe('better_view');
  });

  it('re-checks a track matched again after a long gap, even when settled', () => {
    const tracker = new FaceTracker();
    tracker.update([face(100, 100)], 0);
    tracker.recordEmbedding('1', embedding(1), 0);
    tracker.update([], 300);
    tracker.update([face(100, 100)], 700);
    expect(tracker.embeddingReason('1', true)).toBe('reacquired');
    tracker.recordEmbedding('1', embedding(1, 0.2, 1), 700);
    tracker.update([face(100, 100)], 900);
    expect(tracker.embeddingReason('1', true)).toBeNull();
    // A short gap (detector flicker) is not worth a check.
    tracker.update([], 1000);
    tracker.update([face(100, 100)], 1100);
    expect(tracker.embeddingReason('1', true)).toBeNull();
  });

  it('needsEmbedding is embeddingReason as a boolean', () => {
    expect(needsEmbedding(embedded, view(0.9), 150, true)).toBe(true);
    expect(needsEmbedding(embedded, view(0.6), 150, true)).toBe(false);
  });
});

describe('FaceTracker.planFrame (following faces between detector runs)', () => {
  const follow = (tag = 1) => ({ patch: Float32Array.of(tag, 0, 0), anchor: { cx: 0.5, cy: 0.55, spread: 0.25, aspect: 1 }, detectorScore: 0.9 });
  const policy = { detectEveryFrames: 4, staticDetectEveryFrames: 6 };

  it('detects while nothing is tracked and no scene reference is known', () => {
    const tracker = new FaceTracker();
    expect(tracker.planFrame(0, policy)).toEqual({ mode: 'detect' });
    tracker.update([], 0, { located: 'detected' });
    expect(tracker.planFrame(FRAME_MS, policy)).toEqual({ mode: 'detect' });
  });

  it('follows a detected face for detectEveryFrames − 1 frames, then detects again', () => {
    const tracker = new FaceTracker();
    expect(tracker.planFrame(0, policy).mode).toBe('detect');
    const state = follow();
    tracker.update([face(100, 100, 100, { follow: state })], 0, { located: 'detected' });
    const modes: string[] = [];
    for (let i = 1; i <= 8; i++) {
      const t = i * FRAME_MS;
      const plan = tracker.planFrame(t, policy);
      modes.push(plan.mode);
      if (plan.mode === 'follow') {
        expect(plan.faces).toHaveLength(1);
        expect(plan.faces[0]!.follow).toBe(state);
        expect(plan.faces[0]!.trackId).toBe('1');
      }
      tracker.update([face(100 + i, 100, 100, { follow: state })], t, { located: plan.mode === 'follow' ? 'followed' : 'detected' });
    }
    expect(modes).toEqual(['follow', 'follow', 'follow', 'detect', 'follow', 'follow', 'follow', 'detect']);
  });

  it('predicts the followed box from the track motion', () => {
    const tracker = new FaceTracker();
    const state = follow();
    // Moving right 3 px a frame.
    for (let i = 0; i < 6; i++) tracker.update([face(100 + 3 * i, 100, 100, { follow: state })], i * FRAME_MS, { located: 'detected' });
    const plan = tracker.planFrame(6 * FRAME_MS, { detectEveryFrames: 10, staticDetectEveryFrames: 10 });
    expect(plan.mode).toBe('follow');
    if (plan.mode !== 'follow') return;
    expect(plan.faces[0]!.box.x).toBeCloseTo(118, 0);
    expect(plan.faces[0]!.box.y).toBeCloseTo(100, 0);
  });

  it('detects when a seen face has no follow state (an engine that cannot follow)', () => {
    const tracker = new FaceTracker();
    tracker.update([face(100, 100)], 0, { located: 'detected' });
    expect(tracker.planFrame(FRAME_MS, policy)).toEqual({ mode: 'detect' });
  });

  it('a failed follow that fell back to the detector restarts the count', () => {
    const tracker = new FaceTracker();
    const state = follow();
    tracker.update([face(100, 100, 100, { follow: state })], 0, { located: 'detected' });
    expect(tracker.planFrame(FRAME_MS, policy).mode).toBe('follow');
    expect(tracker.planFrame(2 * FRAME_MS, policy).mode).toBe('follow');
    tracker.update([face(100, 100, 100, { follow: state })], 2 * FRAME_MS, { located: 'detected' });
    expect(tracker.planFrame(3 * FRAME_MS, policy).mode).toBe('follow');
    expect(tracker.planFrame(4 * FRAME_MS, policy).mode).toBe('follow');
  });

  it('follows only the faces seen in the latest frame; a missing track waits for the next detection', () => {
    const tracker = new FaceTracker();
    tracker.update([face(0, 0, 100, { follow: follow(1) }), face(300, 0, 100, { follow: follow(2) })], 0, { located: 'detected' });
    tracker.update([face(0, 0, 100, { follow: follow(1) })], FRAME_MS, { located: 'detected' });
    const plan = tracker.planFrame(2 * FRAME_MS, policy);
    expect(plan.mode).toBe('follow');
    if (plan.mode === 'follow') expect(plan.faces.map((f) => f.trackId)).toEqual(['1']);
  });

  it('skips the detector on an unchanged empty scene only with a reference, and looks anyway every staticDetectEveryFrames', () => {
    const tracker = new FaceTracker();
    const thumbnail = Uint8Array.of(1, 2, 3);
    tracker.planFrame(0, policy);
    tracker.update([], 0, { located: 'detected', sceneThumbnail: thumbnail });
    const plans = [];
    for (let i = 1; i <= 6; i++) {
      const plan = tracker.planFrame(i * FRAME_MS, policy);
      plans.push(plan.mode === 'detect' && plan.sceneReference === thumbnail ? 'static?' : plan.mode);
      tracker.update([], i * FRAME_MS, { located: plan.mode === 'detect' && plan.sceneReference ? 'static' : 'detected' });
    }
    expect(plans).toEqual(['static?', 'static?', 'static?', 'static?', 'static?', 'detect']);
  });

  it('forgets the scene reference once a face is seen, and while a track is only missing it may use a new one', () => {
    const tracker = new FaceTracker();
    tracker.update([], 0, { located: 'detected', sceneThumbnail: Uint8Array.of(1) });
    tracker.update([face(100, 100, 100, { follow: follow() })], FRAME_MS, { located: 'detected' });
    // The face left: the detector finds nobody; the track is missing (not yet left).
    tracker.update([], 2 * FRAME_MS, { located: 'detected' });
    expect(tracker.size).toBe(1);
    expect(tracker.planFrame(3 * FRAME_MS, policy)).toEqual({ mode: 'detect' });
    const empty = Uint8Array.of(2);
    tracker.update([], 3 * FRAME_MS, { located: 'detected', sceneThumbnail: empty });
    const plan = tracker.planFrame(4 * FRAME_MS, policy);
    expect(plan).toEqual({ mode: 'detect', sceneReference: empty });
  });

  it('clear() forgets the plan state', () => {
    const tracker = new FaceTracker();
    tracker.update([], 0, { located: 'detected', sceneThumbnail: Uint8Array.of(1) });
    tracker.clear();
    expect(tracker.planFrame(FRAME_MS, policy)).toEqual({ mode: 'detect' });
  });
});
