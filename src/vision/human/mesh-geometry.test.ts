import { describe, expect, it } from 'vitest';
import type { Landmarks5 } from '../../domain/types.ts';
import {
  clampToImage,
  eyeLineRollDeg,
  FACE_CROP_SCALE,
  faceSquareFromBox,
  landmarks5FromMesh,
  MESH_EYE_IMAGE_LEFT,
  MESH_EYE_IMAGE_RIGHT,
  MESH_MOUTH_IMAGE_LEFT,
  MESH_MOUTH_IMAGE_RIGHT,
  MESH_NOSE_TIP,
  pointsBox,
  poseFromMesh,
} from './mesh-geometry.ts';

type Vec3 = [number, number, number];

/** A 468-point mesh with every point at the origin except the ones set. */
function meshWith(points: Record<number, Vec3>): number[][] {
  const mesh = Array.from({ length: 468 }, () => [0, 0, 0]);
  for (const [index, p] of Object.entries(points)) mesh[Number(index)] = [...p];
  return mesh;
}

/**
 * The four points Human's pose uses, for a head turned by yawDeg (towards the image's right when
 * positive) and pitched by pitchDeg (up when positive). Mesh z grows away from the camera.
 */
function posedMesh(yawDeg: number, pitchDeg: number): number[][] {
  const yaw = (yawDeg * Math.PI) / 180;
  const pitch = (pitchDeg * Math.PI) / 180;
  // Head frame: x to the image's right, y down, z away from the camera; the face looks towards -z.
  const model: Record<number, Vec3> = { 10: [0, -100, 10], 152: [0, 100, 10], 234: [-80, 0, 40], 454: [80, 0, 40] };
  const out: Record<number, Vec3> = {};
  for (const [index, [x, y, z]] of Object.entries(model)) {
    // Pitch up: the chin (y > 0) comes towards the camera, the forehead recedes.
    const y1 = y * Math.cos(pitch) + z * Math.sin(pitch);
    const z1 = -y * Math.sin(pitch) + z * Math.cos(pitch);
    // Yaw towards the image's right: the image-right cheek (x > 0) recedes.
    const x2 = x * Math.cos(yaw) - z1 * Math.sin(yaw);
    const z2 = x * Math.sin(yaw) + z1 * Math.cos(yaw);
    out[Number(index)] = [500 + x2, 400 + y1, z2];
  }
  return meshWith(out);
}

const level: Landmarks5 = [
  { x: 0, y: 0 },
  { x: 10, y: 0 },
  { x: 5, y: 5 },
  { x: 2, y: 9 },
  { x: 8, y: 9 },
];

describe('landmarks5FromMesh', () => {
  it('takes eye centres as the mean of the 16 contour points, then nose tip and mouth corners, in ArcFace order', () => {
    const points: Record<number, Vec3> = {};
    MESH_EYE_IMAGE_LEFT.forEach((index, k) => (points[index] = [100 + (k % 2 === 0 ? -4 : 4), 200 + (k < 8 ? -2 : 2), 0]));
    MESH_EYE_IMAGE_RIGHT.forEach((index, k) => (points[index] = [160 + (k % 2 === 0 ? -4 : 4), 202, 0]));
    points[MESH_NOSE_TIP] = [130, 240, -20];
    points[MESH_MOUTH_IMAGE_LEFT] = [110, 270, 0];
    points[MESH_MOUTH_IMAGE_RIGHT] = [150, 271, 0];
    const [eyeLeft, eyeRight, nose, mouthLeft, mouthRight] = landmarks5FromMesh(meshWith(points));
    expect(eyeLeft).toEqual({ x: 100, y: 200 });
    expect(eyeRight).toEqual({ x: 160, y: 202 });
    expect(nose).toEqual({ x: 130, y: 240 });
    expect(mouthLeft).toEqual({ x: 110, y: 270 });
    expect(mouthRight).toEqual({ x: 150, y: 271 });
  });
});

describe('poseFromMesh', () => {
  it('gives a frontal head (0, 0) and reads yaw and pitch with Facegate signs', () => {
    const frontal = poseFromMesh(posedMesh(0, 0), 1, level);
    expect(frontal.yawDeg).toBeCloseTo(0, 6);
    expect(frontal.pitchDeg).toBeCloseTo(0, 6);
    const right = poseFromMesh(posedMesh(30, 0), 1, level);
    expect(right.yawDeg).toBeCloseTo(30, 6);
    expect(right.pitchDeg).toBeCloseTo(0, 6);
    const up = poseFromMesh(posedMesh(0, 20), 1, level);
    expect(up.pitchDeg).toBeCloseTo(20, 6);
    expect(up.yawDeg).toBeCloseTo(0, 6);
  });

  it('scales mesh z into pixels before taking angles', () => {
    // The same head with z stored at half scale: only the right zPxPerUnit recovers the angle.
    const mesh = posedMesh(30, 0).map(([x, y, z]) => [x!, y!, z! / 2]);
    expect(poseFromMesh(mesh, 2, level).yawDeg).toBeCloseTo(30, 6);
    expect(poseFromMesh(mesh, 1, level).yawDeg).toBeLessThan(20);
  });

  it('negates yaw and roll for a mirrored face and keeps pitch', () => {
    const mesh = posedMesh(25, 10);
    // Mirror x and swap the left/right cheeks, as a mesh of the flipped image would index them.
    const mirrored = mesh.map(([x, y, z]) => [1000 - x!, y!, z!]);
    [mirrored[234], mirrored[454]] = [mirrored[454]!, mirrored[234]!];
    const tilted: Landmarks5 = [
      { x: 0, y: 0 },
      { x: 10, y: 2 },
      { x: 5, y: 5 },
      { x: 2, y: 9 },
      { x: 8, y: 9 },
    ];
    const tiltedMirrored: Landmarks5 = [
      { x: -10, y: 2 },
      { x: 0, y: 0 },
      { x: -5, y: 5 },
      { x: -8, y: 9 },
      { x: -2, y: 9 },
    ];
    const a = poseFromMesh(mesh, 1, tilted);
    const b = poseFromMesh(mirrored, 1, tiltedMirrored);
    expect(b.yawDeg).toBeCloseTo(-a.yawDeg, 6);
    expect(b.pitchDeg).toBeCloseTo(a.pitchDeg, 6);
    expect(b.rollDeg).toBeCloseTo(-a.rollDeg, 6);
  });
});

describe('eyeLineRollDeg', () => {
  it('is positive when the eye on the image right sits lower (the line turns clockwise)', () => {
    const clockwise: Landmarks5 = [{ x: 0, y: 0 }, { x: 10, y: 10 }, level[2], level[3], level[4]];
    expect(eyeLineRollDeg(clockwise)).toBeCloseTo(45, 6);
    expect(eyeLineRollDeg(level)).toBe(0);
  });
});

describe('boxes', () => {
  it('bounds points given as mesh arrays or as points', () => {
    expect(pointsBox([[3, 4, 0], [10, 1, 5], [7, 9, 2]])).toEqual({ x: 3, y: 1, width: 7, height: 8 });
    expect(pointsBox([{ x: 3, y: 4 }, { x: 10, y: 1 }])).toEqual({ x: 3, y: 1, width: 7, height: 3 });
  });

  it('clamps a box to the image', () => {
    expect(clampToImage({ x: -5, y: 10, width: 30, height: 200 }, 100, 80)).toEqual({ x: 0, y: 10, width: 25, height: 70 });
    expect(clampToImage({ x: 150, y: 10, width: 30, height: 20 }, 100, 80)).toEqual({ x: 100, y: 10, width: 0, height: 20 });
  });

  it('centres the face square on the box with a side of FACE_CROP_SCALE × its larger side', () => {
    expect(faceSquareFromBox({ x: 100, y: 50, width: 80, height: 100 })).toEqual({ centerX: 140, centerY: 100, sidePx: FACE_CROP_SCALE * 100 });
  });
});
