/**
 * Following a face between detector runs, with the real ONNX models on camera frames made from the
 * face-api demo photos: the landmark model alone re-finds a face that moved, the box it re-derives
 * matches the detector's, and a face that left (or a frame that changed) sends the frame back to
 * the detector; an unchanged empty scene skips the detector.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.ts';
import { boxIoU } from '../../src/domain/geometry.ts';
import { FaceTracker, type FramePlan } from '../../src/domain/tracker.ts';
import type { AnalyzeResult } from '../../src/vision/analysis.ts';
import { analyzeImage } from '../../src/vision/analyze.ts';
import { createFaceEngine } from '../../src/vision/engine-factory.ts';
import type { FaceEngine } from '../../src/vision/face-engine.ts';
import { decodeImage } from '../../src/vision/image.ts';
import { DEMO_FACES, emptyFrame, photoFrame } from '../api/frame-fixtures.ts';

const config = parseConfig({});
let engine: FaceEngine;

beforeAll(async () => {
  engine = createFaceEngine(config.vision);
  await engine.load();
}, 120_000);

afterAll(async () => {
  await engine?.dispose();
});

async function analyze(jpeg: Buffer, follow?: FramePlan): Promise<AnalyzeResult> {
  const image = await decodeImage(jpeg, config.vision.image);
  return analyzeImage(engine, image, { embed: 'none', liveness: false, pose: 'fast', ...(follow ? { follow } : {}) }, config.vision);
}

describe('following faces by landmarks (ONNX engine)', () => {
  it('re-finds a face that moved without the detector, in the box the detector draws', async () => {
    const first = await analyze(await photoFrame(DEMO_FACES.annaIn1), { mode: 'detect' });
    expect(first.location?.located).toBe('detected');
    expect(first.faces).toHaveLength(1);
    const detected = first.faces[0]!;
    expect(detected.follow).toBeDefined();

    // The face moved 9 px right and 5 px down; the plan still holds the old box.
    const moved = await photoFrame(DEMO_FACES.annaIn1, { dx: 9, dy: 5 });
    const followed = await analyze(moved, { mode: 'follow', faces: [{ trackId: '1', box: detected.box, follow: detected.follow! }] });
    expect(followed.location?.located).toBe('followed');
    expect(followed.timingsMs.detect ?? 0).toBe(0);
    expect(followed.faces).toHaveLength(1);
    const byDetector = (await analyze(moved, { mode: 'detect' })).faces[0]!;
    expect(boxIoU(followed.faces[0]!.box, byDetector.box)).toBeGreaterThan(0.8);
    // The five alignment points agree with the detector route's within a few pixels.
    for (let i = 0; i < 5; i++) {
      expect(Math.hypot(followed.faces[0]!.landmarks5[i]!.x - byDetector.landmarks5[i]!.x, followed.faces[0]!.landmarks5[i]!.y - byDetector.landmarks5[i]!.y)).toBeLessThan(6);
    }
    expect(followed.faces[0]!.quality.score).toBeGreaterThan(0);
    expect(followed.faces[0]!.follow).toBe(detected.follow);
  }, 60_000);

  it('falls back to the detector when the face left, and reports the empty scene', async () => {
    const first = await analyze(await photoFrame(DEMO_FACES.annaIn1), { mode: 'detect' });
    const detected = first.faces[0]!;
    const gone = await analyze(await emptyFrame(), { mode: 'follow', faces: [{ trackId: '1', box: detected.box, follow: detected.follow! }] });
    expect(gone.location?.located).toBe('detected');
    expect(gone.faces).toHaveLength(0);
    expect(gone.location?.sceneThumbnail).toBeInstanceOf(Uint8Array);
  }, 60_000);

  it('falls back to the detector when another face stands where the followed one was', async () => {
    const anna = (await analyze(await photoFrame(DEMO_FACES.annaIn1), { mode: 'detect' })).faces[0]!;
    const other = await analyze(await photoFrame(DEMO_FACES.strangerIn3), { mode: 'follow', faces: [{ trackId: '1', box: anna.box, follow: anna.follow! }] });
    expect(other.location?.located).toBe('detected');
    expect(other.faces).toHaveLength(1);
  }, 60_000);

  it('skips the detector on an unchanged empty scene and runs it once the scene changes', async () => {
    const empty = await analyze(await emptyFrame(), { mode: 'detect' });
    const reference = empty.location!.sceneThumbnail!;
    const still = await analyze(await emptyFrame(), { mode: 'detect', sceneReference: reference });
    expect(still.location?.located).toBe('static');
    expect(still.faces).toHaveLength(0);
    const entered = await analyze(await photoFrame(DEMO_FACES.annaIn1), { mode: 'detect', sceneReference: reference });
    expect(entered.location?.located).toBe('detected');
    expect(entered.faces).toHaveLength(1);
  }, 60_000);

  it('drives a tracker through a swaying face: one track, mostly followed frames', async () => {
    const tracker = new FaceTracker();
    const located: string[] = [];
    for (let i = 0; i < 12; i++) {
      const t = i * 33;
      const plan = tracker.planFrame(t);
      const frame = await photoFrame(DEMO_FACES.annaIn1, { dx: Math.round(6 * Math.sin(i / 3)), dy: Math.round(3 * Math.cos(i / 3)) });
      const result = await analyze(frame, plan);
      located.push(result.location!.located);
      tracker.update(
        result.faces.map((f) => ({ box: f.box, quality: { score: f.quality.score, pass: f.quality.pass }, pose: f.pose, ...(f.follow ? { follow: f.follow } : {}) })),
        t,
        result.location,
      );
    }
    expect(tracker.tracks().map((t) => t.id)).toEqual(['1']);
    expect(located.filter((l) => l === 'followed').length).toBeGreaterThanOrEqual(9);
  }, 120_000);
});
