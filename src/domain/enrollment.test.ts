import { describe, expect, it } from 'vitest';
import { assessParallax, homographyResidual } from './enrollment-liveness.ts';
import {
  checkConsistency,
  DEFAULT_ENROLLMENT_ANGLES,
  GuidedCapture,
  ScanCoverage,
  scanBinLabel,
  screenCaptures,
  selectTemplates,
  type FrameObservation,
  type GuidedCaptureConfig,
  type ObservedFace,
} from './enrollment.ts';
import { projectFace3D } from './face3d.fixture.ts';
import { seededRandom } from './random.ts';
import type { Point } from './types.ts';

const DIMS = 16;
const rnd = seededRandom(7);

function unit(v: number[]): Float32Array {
  const n = Math.hypot(...v);
  return Float32Array.from(v.map((x) => x / n));
}
/** A random identity direction and noisy views of it. */
function person(): number[] {
  return Array.from({ length: DIMS }, () => rnd() - 0.5);
}
function view(base: number[], noise = 0.05): Float32Array {
  return unit(base.map((x) => x + (rnd() - 0.5) * noise));
}

const LANDMARKS: Point[] = [
  { x: 40, y: 50 },
  { x: 72, y: 50 },
  { x: 56, y: 68 },
  { x: 44, y: 86 },
  { x: 68, y: 86 },
];

function face(yawDeg: number, pitchDeg: number, over: Partial<ObservedFace> = {}): ObservedFace {
  return {
    box: { x: 20, y: 20, width: 80, height: 80 },
    pose: { yawDeg, pitchDeg, rollDeg: 0 },
    sizePx: 80,
    qualityScore: 0.8,
    qualityPass: true,
    qualityReasons: [],
    landmarks5: LANDMARKS,
    ...over,
  };
}

const config: GuidedCaptureConfig = {
  angles: DEFAULT_ENROLLMENT_ANGLES,
  framesPerAngle: 2,
  holdMs: 300,
  maxPoseStepDeg: 4,
  minLiveness: 0.5,
  consistencyMinSimilarity: 0.6,
  timeoutMs: 60_000,
};

const frame = (atMs: number, ...faces: ObservedFace[]): FrameObservation => ({ atMs, faces });

describe('GuidedCapture', () => {
  it('walks through every angle, capturing only held, single, good, live faces of one person', () => {
    const capture = new GuidedCapture(config, 0);
    const who = person();
    let t = 0;
    const events: string[] = [];
    for (const angle of DEFAULT_ENROLLMENT_ANGLES) {
      // Off pose first: the error points from the target to the face.
      const off = capture.observe(frame((t += 100), face(angle.yawDeg + 30, angle.pitchDeg)));
      expect(off.kind).toBe('guide');
      if (off.kind === 'guide') {
        expect(off.guidance.problem).toBe('off_pose');
        expect(off.guidance.poseError).toEqual({ yaw: 30, pitch: 0 });
        expect(off.guidance.angle.name).toBe(angle.name);
      }
      let captured = 0;
      while (captured < config.framesPerAngle) {
        const step = capture.observe(frame((t += 100), face(angle.yawDeg + 1, angle.pitchDeg - 1)));
        if (step.kind !== 'candidate') {
          expect(step.kind === 'guide' && ['holding', 'moving'].includes(step.guidance.problem)).toBe(true);
          continue;
        }
        const result = capture.accept(step.candidate, view(who), 0.9);
        captured++;
        events.push(result.kind);
      }
    }
    expect(capture.status).toBe('done');
    expect(capture.progress).toBe(100);
    expect(capture.captured).toHaveLength(10);
    expect(events.filter((e) => e === 'angle_complete')).toHaveLength(5);
    expect(new Set(capture.captured.map((c) => c.angleName))).toEqual(new Set(['front', 'left', 'right', 'up', 'down']));
  });

  it('says why a frame is not captured: no face, several faces, low quality, moving', () => {
    const capture = new GuidedCapture({ ...config, holdMs: 0 }, 0);
    const problem = (f: FrameObservation) => {
      const r = capture.observe(f);
      return r.kind === 'failed' ? r.reason : r.guidance.problem;
    };
    expect(problem(frame(1))).toBe('no_face');
    expect(problem(frame(2, face(0, 0), face(0, 0)))).toBe('several_faces');
    expect(problem(frame(3, face(0, 0, { qualityPass: false, qualityReasons: ['blurred'] })))).toBe('low_quality');
    expect(problem(frame(4, face(0, 0)))).toBe('ready');
    expect(capture.captured).toHaveLength(0);
  });

  it('needs the pose held steady: a jump restarts the hold', () => {
    const capture = new GuidedCapture(config, 0);
    expect(capture.observe(frame(0, face(-8, 0))).kind).toBe('guide');
    expect(capture.observe(frame(200, face(8, 0))).kind).toBe('guide'); // moved 16°: the hold restarts at 200
    expect(capture.observe(frame(400, face(8, 0))).kind).toBe('guide');
    expect(capture.observe(frame(500, face(8, 1))).kind).toBe('candidate');
  });

  it('refuses a capture that is not live, and fails with person_changed when the person is swapped', () => {
    const capture = new GuidedCapture({ ...config, holdMs: 0 }, 0);
    const a = person();
    const b = person();
    const first = capture.observe(frame(1, face(0, 0)));
    if (first.kind !== 'candidate') throw new Error('expected a candidate');
    expect(capture.accept(first.candidate, view(a), 0.1).kind).toBe('rejected');
    expect(capture.accept(first.candidate, view(a), 0.9).kind).toBe('captured');
    const second = capture.observe(frame(2, face(0, 0)));
    if (second.kind !== 'candidate') throw new Error('expected a candidate');
    const result = capture.accept(second.candidate, view(b), 0.9);
    expect(result).toMatchObject({ kind: 'failed', reason: 'person_changed' });
    expect(capture.status).toBe('failed');
    expect(capture.observe(frame(3, face(0, 0)))).toEqual({ kind: 'failed', reason: 'person_changed' });
  });

  it('times out', () => {
    const capture = new GuidedCapture(config, 1000);
    expect(capture.tick(30_000)).toBe(false);
    expect(capture.observe(frame(61_001, face(0, 0)))).toEqual({ kind: 'failed', reason: 'timeout' });
    expect(capture.failureReason).toBe('timeout');
  });

  it('does not take a stale candidate (angle moved on meanwhile)', () => {
    const capture = new GuidedCapture({ ...config, holdMs: 0, framesPerAngle: 1 }, 0);
    const a = person();
    const c1 = capture.observe(frame(1, face(0, 0)));
    const c2 = capture.observe(frame(2, face(0, 0)));
    if (c1.kind !== 'candidate' || c2.kind !== 'candidate') throw new Error('expected candidates');
    expect(capture.accept(c1.candidate, view(a), null).kind).toBe('angle_complete');
    expect(capture.accept(c2.candidate, view(a), null).kind).toBe('rejected');
    expect(capture.captured).toHaveLength(1);
  });
});

describe('checkConsistency', () => {
  it('passes views of one person and names the outliers of a swap', () => {
    const a = person();
    const b = person();
    const same = [view(a), view(a), view(a), view(a)];
    expect(checkConsistency(same, 0.6).consistent).toBe(true);
    const swapped = [view(a), view(a), view(a), view(b), view(b)];
    const check = checkConsistency(swapped, 0.6);
    expect(check.consistent).toBe(false);
    if (!check.consistent) expect(check.outliers).toEqual([3, 4]);
  });
});

describe('screenCaptures', () => {
  it('drops a few stray views, fails on a second person however few', () => {
    const a = person();
    const views = Array.from({ length: 9 }, () => view(a));
    const stray = view(person());
    const one = screenCaptures([...views, stray], 0.6);
    expect(one).toMatchObject({ kind: 'consistent', dropped: [9] });
    const b = person();
    const two = screenCaptures([...views, view(b), view(b)], 0.6);
    expect(two).toMatchObject({ kind: 'inconsistent', outliers: [9, 10], secondPerson: true });
    const many = screenCaptures([view(a), view(a), view(person()), view(person())], 0.6);
    expect(many.kind).toBe('inconsistent');
  });
});

describe('selectTemplates', () => {
  it('keeps the best k per pose, skipping near-copies while distinct views remain', () => {
    const a = person();
    const base = view(a, 0);
    const copy = Float32Array.from(base);
    const other = view(a, 0.6);
    const picked = selectTemplates(
      [
        { label: 'front', qualityScore: 0.9, embedding: base },
        { label: 'front', qualityScore: 0.85, embedding: copy },
        { label: 'front', qualityScore: 0.5, embedding: other },
        { label: 'left', qualityScore: 0.4, embedding: other },
      ],
      2,
    );
    expect(picked.map((p) => [p.label, p.qualityScore])).toEqual([
      ['front', 0.9],
      ['front', 0.5],
      ['left', 0.4],
    ]);
  });
});

describe('ScanCoverage', () => {
  it('keeps the best k frames per yaw/pitch bin and reports coverage', () => {
    const scan = new ScanCoverage<string>({ yawEdgesDeg: [-45, -15, 15, 45], pitchEdgesDeg: [-30, 0, 30], keepPerBin: 2 });
    expect(scan.offer({ yawDeg: 0, pitchDeg: 5, rollDeg: 0 }, 0.5, 'f1').kept).toBe(true);
    expect(scan.offer({ yawDeg: 2, pitchDeg: 6, rollDeg: 0 }, 0.7, 'f2').kept).toBe(true);
    const third = scan.offer({ yawDeg: 1, pitchDeg: 4, rollDeg: 0 }, 0.9, 'f3');
    expect(third).toMatchObject({ kept: true, evicted: 'f1' });
    expect(scan.offer({ yawDeg: 1, pitchDeg: 4, rollDeg: 0 }, 0.1, 'f4').kept).toBe(false);
    expect(scan.offer({ yawDeg: 30, pitchDeg: -10, rollDeg: 0 }, 0.6, 'l1').kept).toBe(true);
    expect(scan.offer({ yawDeg: 80, pitchDeg: 0, rollDeg: 0 }, 0.9, 'out').bin).toBeNull();
    const summary = scan.summary();
    expect(summary).toMatchObject({ coveredBins: 2, totalBins: 6, coverage: 33 });
    expect(scan.kept().map((k) => [k.item, k.label])).toEqual([
      ['l1', 'left'],
      ['f3', 'front'],
      ['f2', 'front'],
    ]);
  });

  it('labels bins from the subject’s point of view', () => {
    expect(scanBinLabel({ yawDeg: [-15, 15], pitchDeg: [-10, 10] })).toBe('front');
    expect(scanBinLabel({ yawDeg: [15, 45], pitchDeg: [-10, 10] })).toBe('left');
    expect(scanBinLabel({ yawDeg: [-45, -15], pitchDeg: [-10, 10] })).toBe('right');
    expect(scanBinLabel({ yawDeg: [-15, 15], pitchDeg: [10, 30] })).toBe('up');
  });
});

describe('planar parallax', () => {
  const project = (yawDeg: number, flat = false): Point[] => projectFace3D(yawDeg, { flat, center: 100, scale: 1 });

  it('a turned head leaves parallax; a turned photo of it does not', () => {
    const head = homographyResidual(project(0), project(25));
    const photo = homographyResidual(project(0, true), project(25, true));
    expect(head).toBeGreaterThan(0.05);
    expect(photo).toBeLessThan(1e-6);
    const views = [0, 25, -25].map((yaw) => ({ yawDeg: yaw, pitchDeg: 0, landmarks5: project(yaw).slice(0, 5), landmarks: project(yaw) }));
    const assessed = assessParallax(views);
    expect(assessed.compared).toBe(2);
    expect(assessed.parallax!).toBeGreaterThan(0.05);
  });
});
