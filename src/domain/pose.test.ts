import { describe, expect, it } from 'vitest';
import {
  FACE_MODEL_5,
  FACE_MODEL_68,
  fitPose,
  fitPose5,
  fitPose68,
  MIRROR_68,
  multiply3,
  poseFromRotation,
  rollFromEyesDeg,
  rotationFromPose,
  type Mat3,
} from './pose.ts';
import type { HeadPose, Landmarks5, Point } from './types.ts';

/** Projects model points (x, y, z triples) orthographically: image = scale · (R·X)_{x,y} + offset. */
function project(model: ArrayLike<number>, rotation: Mat3, scale = 2.5, offset: Point = { x: 320, y: 240 }): Point[] {
  const points: Point[] = [];
  for (let i = 0; i < model.length / 3; i++) {
    const [x, y, z] = [model[i * 3]!, model[i * 3 + 1]!, model[i * 3 + 2]!];
    points.push({
      x: offset.x + scale * (rotation[0] * x + rotation[1] * y + rotation[2] * z),
      y: offset.y + scale * (rotation[3] * x + rotation[4] * y + rotation[5] * z),
    });
  }
  return points;
}

/** Standard right-handed rotations about the camera axes (x right, y down, z away from the camera). */
const aboutY = (deg: number): Mat3 => {
  const a = (deg * Math.PI) / 180;
  return [Math.cos(a), 0, Math.sin(a), 0, 1, 0, -Math.sin(a), 0, Math.cos(a)];
};
const aboutX = (deg: number): Mat3 => {
  const a = (deg * Math.PI) / 180;
  return [1, 0, 0, 0, Math.cos(a), -Math.sin(a), 0, Math.sin(a), Math.cos(a)];
};

/** A deterministic pseudo-random sequence (tests must not flake). */
function noise(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  };
}

function expectPoseClose(actual: HeadPose, expected: HeadPose, toleranceDeg: number): void {
  expect(Math.abs(actual.yawDeg - expected.yawDeg)).toBeLessThan(toleranceDeg);
  expect(Math.abs(actual.pitchDeg - expected.pitchDeg)).toBeLessThan(toleranceDeg);
  expect(Math.abs(actual.rollDeg - expected.rollDeg)).toBeLessThan(toleranceDeg);
}

const POSES: HeadPose[] = [
  { yawDeg: 0, pitchDeg: 0, rollDeg: 0 },
  { yawDeg: 30, pitchDeg: 0, rollDeg: 0 },
  { yawDeg: -45, pitchDeg: 10, rollDeg: 5 },
  { yawDeg: 20, pitchDeg: -25, rollDeg: -12 },
  { yawDeg: -10, pitchDeg: 35, rollDeg: 25 },
  { yawDeg: 70, pitchDeg: -40, rollDeg: -30 },
];

describe('rotationFromPose / poseFromRotation', () => {
  it('round-trips yaw, pitch and roll', () => {
    for (const pose of POSES) expectPoseClose(poseFromRotation(rotationFromPose(pose)), pose, 1e-9);
  });

  it('gives proper rotations (orthonormal, determinant 1)', () => {
    const r = rotationFromPose({ yawDeg: 33, pitchDeg: -21, rollDeg: 14 });
    const rrt = multiply3(r, [r[0], r[3], r[6], r[1], r[4], r[7], r[2], r[5], r[8]]);
    [1, 0, 0, 0, 1, 0, 0, 0, 1].forEach((v, i) => expect(rrt[i]).toBeCloseTo(v, 12));
    const det = r[0] * (r[4] * r[8] - r[5] * r[7]) - r[1] * (r[3] * r[8] - r[5] * r[6]) + r[2] * (r[3] * r[7] - r[4] * r[6]);
    expect(det).toBeCloseTo(1, 12);
  });
});

describe('fitPose68', () => {
  it('recovers known rotations from exact projections, whatever the scale and position', () => {
    for (const pose of POSES) {
      const fit = fitPose68(project(FACE_MODEL_68, rotationFromPose(pose), 1.7, { x: 100, y: 900 }));
      expectPoseClose(fit.pose, pose, 1e-6);
      expect(fit.scale).toBeCloseTo(1.7, 6);
      expect(fit.rmsErrorPx).toBeLessThan(1e-6);
    }
  });

  it('stays within a degree or two with 1 px of landmark noise on a 250-px face', () => {
    const rand = noise(7);
    for (const pose of POSES.filter((p) => Math.abs(p.yawDeg) <= 45)) {
      const points = project(FACE_MODEL_68, rotationFromPose(pose)).map((p) => ({ x: p.x + 2 * rand(), y: p.y + 2 * rand() }));
      expectPoseClose(fitPose68(points).pose, pose, 2);
    }
  });

  it('needs exactly 68 points', () => {
    expect(() => fitPose68(project(FACE_MODEL_5, rotationFromPose(POSES[0]!)))).toThrow(/68 points/);
  });
});

describe('sign conventions', () => {
  const frontal = project(FACE_MODEL_68, rotationFromPose({ yawDeg: 0, pitchDeg: 0, rollDeg: 0 }));
  const noseOffsetX = (points: Point[]): number => points[30]!.x - (points[39]!.x + points[42]!.x) / 2;
  const noseOffsetY = (points: Point[]): number => points[30]!.y - (points[39]!.y + points[42]!.y) / 2;

  it('a head turned to its own left (nose towards the image right) has positive yaw', () => {
    // About the vertical axis, a negative angle carries the nose (z < 0) towards +x.
    const turned = project(FACE_MODEL_68, aboutY(-25));
    expect(noseOffsetX(turned)).toBeGreaterThan(noseOffsetX(frontal) + 10);
    const fit = fitPose68(turned);
    expect(fit.pose.yawDeg).toBeCloseTo(25, 6);
    expect(Math.abs(fit.pose.pitchDeg)).toBeLessThan(1e-6);
  });

  it('a head looking up (nose towards the image top) has positive pitch', () => {
    const up = project(FACE_MODEL_68, aboutX(-20));
    expect(noseOffsetY(up)).toBeLessThan(noseOffsetY(frontal) - 5);
    expect(fitPose68(up).pose.pitchDeg).toBeCloseTo(20, 6);
  });

  it('a head tilted to its own left shoulder (eye line clockwise in the image) has positive roll', () => {
    const a = (15 * Math.PI) / 180;
    // Clockwise as seen, with y growing downwards.
    const tilted = frontal.map((p) => ({
      x: 320 + Math.cos(a) * (p.x - 320) - Math.sin(a) * (p.y - 240),
      y: 240 + Math.sin(a) * (p.x - 320) + Math.cos(a) * (p.y - 240),
    }));
    expect(tilted[45]!.y).toBeGreaterThan(tilted[36]!.y); // the eye on the image's right went down
    expect(fitPose68(tilted).pose.rollDeg).toBeCloseTo(15, 6);
    const eyes = [36, 45, 30, 48, 54].map((i) => tilted[i]!) as Landmarks5;
    expect(rollFromEyesDeg(eyes)).toBeCloseTo(15, 6);
  });

  it('a mirrored point set gives the negated yaw and roll and the same pitch', () => {
    const rand = noise(3);
    for (const pose of POSES) {
      const points = project(FACE_MODEL_68, rotationFromPose(pose)).map((p) => ({ x: p.x + rand(), y: p.y + rand() }));
      // Mirror the image (x → 640 − x) and relabel: the mirror of point i is point MIRROR_68[i].
      const mirrored = points.map((_, i) => ({ x: 640 - points[MIRROR_68[i]!]!.x, y: points[MIRROR_68[i]!]!.y }));
      const a = fitPose68(points).pose;
      const b = fitPose68(mirrored).pose;
      expect(b.yawDeg).toBeCloseTo(-a.yawDeg, 9);
      expect(b.rollDeg).toBeCloseTo(-a.rollDeg, 9);
      expect(b.pitchDeg).toBeCloseTo(a.pitchDeg, 9);
    }
  });

  it('the generic face is its own mirror image', () => {
    for (let i = 0; i < 68; i++) {
      const m = MIRROR_68[i]!;
      expect(MIRROR_68[m]).toBe(i);
      expect(FACE_MODEL_68[m * 3]! + FACE_MODEL_68[i * 3]!).toBe(0);
      expect(FACE_MODEL_68[m * 3 + 1]).toBe(FACE_MODEL_68[i * 3 + 1]);
      expect(FACE_MODEL_68[m * 3 + 2]).toBe(FACE_MODEL_68[i * 3 + 2]);
    }
    // The nose tip is the point nearest the camera.
    const z = Array.from({ length: 68 }, (_, i) => FACE_MODEL_68[i * 3 + 2]!);
    expect(z.indexOf(Math.min(...z))).toBe(30);
  });
});

describe('fitPose5 and fitPose', () => {
  it('recovers a rotation from the five ArcFace points of the generic face', () => {
    const pose = { yawDeg: -20, pitchDeg: 10, rollDeg: 8 };
    const points = project(FACE_MODEL_5, rotationFromPose(pose)) as Landmarks5;
    expectPoseClose(fitPose5(points).pose, pose, 1e-6);
  });

  it('honours weights: a point with weight 0 does not pull the fit', () => {
    const pose = { yawDeg: 15, pitchDeg: -5, rollDeg: 3 };
    const points = project(FACE_MODEL_68, rotationFromPose(pose));
    points[8] = { x: points[8]!.x + 80, y: points[8]!.y - 40 }; // a wild chin point
    const weights = Float64Array.from({ length: 68 }, (_, i) => (i === 8 ? 0 : 1));
    expectPoseClose(fitPose(FACE_MODEL_68, points, { weights }).pose, pose, 1e-6);
    const unweighted = fitPose(FACE_MODEL_68, points).pose;
    const pull = Math.max(Math.abs(unweighted.yawDeg - 15), Math.abs(unweighted.pitchDeg + 5), Math.abs(unweighted.rollDeg - 3));
    expect(pull).toBeGreaterThan(0.5);
  });

  it('rejects a model and point set of different sizes', () => {
    expect(() => fitPose(FACE_MODEL_5, [{ x: 0, y: 0 }])).toThrow(/model has 5 points/);
  });
});
