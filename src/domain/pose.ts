import type { HeadPose, Landmarks5, Point } from './types.ts';

/**
 * Head pose from landmarks: a scaled-orthographic fit of a generic 3D face to 2D points, and the
 * conversion between rotation matrices and Facegate's yaw/pitch/roll (see HeadPose in types.ts).
 *
 * Frames: the camera frame has x to the image's right, y down, z away from the camera. The
 * model frame is the same for a frontal face, so the nose tip has the most negative z.
 * A rotation R maps model to camera coordinates; it is decomposed as
 * R = Ry(−yaw) · Rx(−pitch) · Rz(roll) (pan first, then tilt, then tilt of the head about its own
 * forward axis), the pan-then-tilt order in which Pointing'04's labels are given.
 */

/** A 3×3 matrix, row-major. */
export type Mat3 = [number, number, number, number, number, number, number, number, number];

const RAD = 180 / Math.PI;

/** The rotation that turns a frontal face into the given pose. */
export function rotationFromPose(pose: HeadPose): Mat3 {
  const y = -pose.yawDeg / RAD;
  const p = -pose.pitchDeg / RAD;
  const r = pose.rollDeg / RAD;
  const ry: Mat3 = [Math.cos(y), 0, Math.sin(y), 0, 1, 0, -Math.sin(y), 0, Math.cos(y)];
  const rx: Mat3 = [1, 0, 0, 0, Math.cos(p), -Math.sin(p), 0, Math.sin(p), Math.cos(p)];
  const rz: Mat3 = [Math.cos(r), -Math.sin(r), 0, Math.sin(r), Math.cos(r), 0, 0, 0, 1];
  return multiply3(multiply3(ry, rx), rz);
}

/** Yaw, pitch and roll of a model-to-camera rotation, in Facegate's convention. */
export function poseFromRotation(rotation: Mat3): HeadPose {
  const [, , r02, r10, r11, r12, , , r22] = rotation;
  // Near ±90° pitch yaw and roll are not separable; the formulas below stay finite there.
  return {
    yawDeg: Math.atan2(-r02, r22) * RAD,
    pitchDeg: Math.asin(Math.max(-1, Math.min(1, r12))) * RAD,
    rollDeg: Math.atan2(r10, r11) * RAD,
  };
}

export function multiply3(a: Mat3, b: Mat3): Mat3 {
  const out = new Array<number>(9) as Mat3;
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      out[i * 3 + j] = a[i * 3]! * b[j]! + a[i * 3 + 1]! * b[3 + j]! + a[i * 3 + 2]! * b[6 + j]!;
    }
  }
  return out;
}

/**
 * Roll from the eye line of the five ArcFace points: the angle of the line from the eye on the
 * image's left to the eye on the image's right, clockwise positive (y grows downwards).
 */
export function rollFromEyesDeg(landmarks5: Landmarks5): number {
  const [a, b] = landmarks5;
  return Math.atan2(b.y - a.y, b.x - a.x) * RAD;
}

/**
 * A generic adult face in the iBUG 68-point order, in millimetres, authored from average
 * anthropometric proportions (eye-corner spacing, nasion-to-chin height, nose and lip
 * protrusion); origin between the inner eye corners, axes as the camera frame of a frontal face.
 * Only the subject's right half and the midline are written out; the left half is its mirror,
 * so a mirrored point set fits to exactly the negated yaw and roll.
 */
const HALF_FACE_68: ReadonlyArray<readonly [index: number, mirror: number, x: number, y: number, z: number]> = [
  // jaw contour, from the ear on the image's left down to the chin
  [0, 16, -72, 8, 62],
  [1, 15, -71, 27, 52],
  [2, 14, -68, 46, 40],
  [3, 13, -63, 64, 28],
  [4, 12, -56, 81, 15],
  [5, 11, -46, 95, 3],
  [6, 10, -34, 106, -6],
  [7, 9, -18, 114, -11],
  [8, 8, 0, 117, -13],
  // eyebrow on the image's left, outer end first
  [17, 26, -56, -16, 10],
  [18, 25, -47, -22, 1],
  [19, 24, -36, -24, -5],
  [20, 23, -25, -23, -9],
  [21, 22, -13, -19, -11],
  // nose bridge and tip
  [27, 27, 0, 0, -12],
  [28, 28, 0, 12, -17],
  [29, 29, 0, 24, -23],
  [30, 30, 0, 36, -30],
  // nostrils
  [31, 35, -14, 44, -11],
  [32, 34, -7, 46, -15],
  [33, 33, 0, 47, -18],
  // eye on the image's left: outer corner, upper lid, inner corner, lower lid
  [36, 45, -45, 0, 9],
  [37, 44, -38, -4, 2],
  [38, 43, -25, -4, 0],
  [39, 42, -16, 0, 0],
  [40, 47, -25, 3, 0],
  [41, 46, -38, 3, 2],
  // outer lip, from the corner on the image's left, over the upper lip, back under the lower lip
  [48, 54, -25, 70, -8],
  [49, 53, -17, 65, -15],
  [50, 52, -8, 62, -19],
  [51, 51, 0, 63, -20],
  [57, 57, 0, 82, -18],
  [58, 56, -10, 80, -16],
  [59, 55, -19, 76, -12],
  // inner lip
  [60, 64, -21, 71, -9],
  [61, 63, -9, 69, -17],
  [62, 62, 0, 69, -18],
  [67, 65, -9, 72, -16],
  [66, 66, 0, 73, -17],
];

function buildModel68(): { points: Float64Array; mirror: Int32Array } {
  const points = new Float64Array(68 * 3);
  const mirror = new Int32Array(68).fill(-1);
  for (const [i, m, x, y, z] of HALF_FACE_68) {
    points.set([x, y, z], i * 3);
    if (m !== i) points.set([-x, y, z], m * 3);
    mirror[i] = m;
    mirror[m] = i;
  }
  if (mirror.some((m) => m < 0)) throw new Error('face model: a point has no mirror');
  return { points, mirror };
}

const MODEL_68 = buildModel68();

/** For each of the 68 points, the index of its mirror image (e.g. 36 ↔ 45, 8 ↔ 8). */
export const MIRROR_68: Readonly<Int32Array> = MODEL_68.mirror;

/** The generic face's 68 points as [x, y, z] triples, millimetres (see HALF_FACE_68). */
export const FACE_MODEL_68: Readonly<Float64Array> = MODEL_68.points;

/**
 * The generic face at the five ArcFace points, taken from the 68 as the ONNX landmarker's
 * five are: eye centres = mean of the eyelid points 37, 38, 40, 41 and 43, 44, 46, 47,
 * nose tip 30, mouth corners = mean of 48 + 60 and 54 + 64.
 */
export const FACE_MODEL_5: Readonly<Float64Array> = (() => {
  const mean = (indices: number[]): number[] =>
    [0, 1, 2].map((k) => indices.reduce((sum, i) => sum + FACE_MODEL_68[i * 3 + k]!, 0) / indices.length);
  return Float64Array.from([
    ...mean([37, 38, 40, 41]),
    ...mean([43, 44, 46, 47]),
    ...mean([30]),
    ...mean([48, 60]),
    ...mean([54, 64]),
  ]);
})();

export interface PoseFitOptions {
  /** Weight of each point (default 1); e.g. lower the jaw contour, whose points slide as the head turns. */
  weights?: ArrayLike<number>;
  /** Gauss-Newton refinements after the closed-form start (default 6). */
  iterations?: number;
}

export interface PoseFit {
  pose: HeadPose;
  rotation: Mat3;
  /** Image pixels per model unit. */
  scale: number;
  /** Weighted root-mean-square reprojection error, in image pixels. */
  rmsErrorPx: number;
}

/**
 * Weight ¼ for the 17 jaw-contour points and 1 for the others: the contour follows the face's
 * silhouette, which slides over the jaw as the head turns (¼ measured a little better than ½ or 1 on
 * both Pointing'04 series).
 */
export const DEFAULT_WEIGHTS_68: Readonly<Float64Array> = Float64Array.from({ length: 68 }, (_, i) => (i < 17 ? 0.25 : 1));

/** Head pose from the 68 iBUG landmarks by a weak-perspective fit of the generic face. */
export function fitPose68(points: readonly Point[], options: PoseFitOptions = {}): PoseFit {
  if (points.length !== 68) throw new Error(`fitPose68 needs 68 points, got ${points.length}`);
  return fitPose(FACE_MODEL_68, points, { weights: DEFAULT_WEIGHTS_68, ...options });
}

/** Head pose from the five ArcFace points (coarser than the 68-point fit: five points, one of them off-plane). */
export function fitPose5(landmarks5: Landmarks5, options: PoseFitOptions = {}): PoseFit {
  return fitPose(FACE_MODEL_5, landmarks5, options);
}

/**
 * Scaled-orthographic fit of model points (x, y, z triples) to image points: an affine
 * least-squares start projected onto the nearest scaled rotation (via the SVD of the 2×3
 * affine matrix), then Gauss-Newton on rotation and scale. Translation drops out by centring
 * both sets on their weighted centroids.
 */
export function fitPose(model: ArrayLike<number>, points: readonly Point[], options: PoseFitOptions = {}): PoseFit {
  const n = points.length;
  if (model.length !== n * 3) throw new Error(`model has ${model.length / 3} points, image ${n}`);
  const weights = options.weights ?? new Float64Array(n).fill(1);
  let wSum = 0;
  let cx = 0;
  let cy = 0;
  let mx = 0;
  let my = 0;
  let mz = 0;
  for (let i = 0; i < n; i++) {
    const w = weights[i]!;
    wSum += w;
    cx += w * points[i]!.x;
    cy += w * points[i]!.y;
    mx += w * model[i * 3]!;
    my += w * model[i * 3 + 1]!;
    mz += w * model[i * 3 + 2]!;
  }
  cx /= wSum;
  cy /= wSum;
  mx /= wSum;
  my /= wSum;
  mz /= wSum;
  const X = new Float64Array(n * 3);
  const u = new Float64Array(n * 2);
  for (let i = 0; i < n; i++) {
    X[i * 3] = model[i * 3]! - mx;
    X[i * 3 + 1] = model[i * 3 + 1]! - my;
    X[i * 3 + 2] = model[i * 3 + 2]! - mz;
    u[i * 2] = points[i]!.x - cx;
    u[i * 2 + 1] = points[i]!.y - cy;
  }

  let { rotation, scale } = affineStart(X, u, weights);
  const iterations = options.iterations ?? 6;
  for (let it = 0; it < iterations; it++) {
    const step = gaussNewtonStep(X, u, weights, rotation, scale);
    if (!step) break;
    rotation = multiply3(rodrigues(step.omega), rotation);
    scale += step.dScale;
    if (Math.hypot(...step.omega) < 1e-7) break;
  }

  let sq = 0;
  for (let i = 0; i < n; i++) {
    const [px, py] = project(rotation, scale, X, i);
    sq += weights[i]! * ((u[i * 2]! - px) ** 2 + (u[i * 2 + 1]! - py) ** 2);
  }
  return { pose: poseFromRotation(rotation), rotation, scale, rmsErrorPx: Math.sqrt(sq / wSum) };
}

function project(r: Mat3, s: number, X: Float64Array, i: number): [number, number] {
  const x = X[i * 3]!;
  const y = X[i * 3 + 1]!;
  const z = X[i * 3 + 2]!;
  return [s * (r[0] * x + r[1] * y + r[2] * z), s * (r[3] * x + r[4] * y + r[5] * z)];
}

function affineStart(X: Float64Array, u: Float64Array, w: ArrayLike<number>): { rotation: Mat3; scale: number } {
  // M (2×3) = (Σ w u Xᵀ)(Σ w X Xᵀ)⁻¹
  const n = u.length / 2;
  const xx = new Float64Array(9);
  const ux = new Float64Array(6);
  for (let i = 0; i < n; i++) {
    const wi = w[i]!;
    for (let a = 0; a < 3; a++) {
      const xa = X[i * 3 + a]! * wi;
      for (let b = 0; b < 3; b++) xx[a * 3 + b]! += xa * X[i * 3 + b]!;
      ux[a]! += xa * u[i * 2]!;
      ux[3 + a]! += xa * u[i * 2 + 1]!;
    }
  }
  const inv = invert3(Array.from(xx) as Mat3);
  const identity: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  if (!inv) return { rotation: identity, scale: 1 };
  const m1 = [0, 1, 2].map((j) => ux[0]! * inv[j]! + ux[1]! * inv[3 + j]! + ux[2]! * inv[6 + j]!);
  const m2 = [0, 1, 2].map((j) => ux[3]! * inv[j]! + ux[4]! * inv[3 + j]! + ux[5]! * inv[6 + j]!);
  // Nearest pair of orthonormal rows: SVD of M via the eigen-decomposition of M Mᵀ (2×2).
  const a = dot(m1, m1);
  const b = dot(m1, m2);
  const c = dot(m2, m2);
  const mean = (a + c) / 2;
  const radius = Math.sqrt(((a - c) / 2) ** 2 + b * b);
  const l1 = mean + radius;
  const l2 = Math.max(mean - radius, 0);
  if (l2 <= 1e-12 * l1) return { rotation: identity, scale: Math.sqrt(Math.max(l1, 1e-12)) };
  const e1 = Math.abs(b) > 1e-12 ? normalize([b, l1 - a]) : a >= c ? [1, 0] : [0, 1];
  const e2 = [-e1[1]!, e1[0]!];
  const s1 = Math.sqrt(l1);
  const s2 = Math.sqrt(l2);
  const v1 = [0, 1, 2].map((j) => (e1[0]! * m1[j]! + e1[1]! * m2[j]!) / s1);
  const v2 = [0, 1, 2].map((j) => (e2[0]! * m1[j]! + e2[1]! * m2[j]!) / s2);
  const r1 = [0, 1, 2].map((j) => e1[0]! * v1[j]! + e2[0]! * v2[j]!);
  const r2 = [0, 1, 2].map((j) => e1[1]! * v1[j]! + e2[1]! * v2[j]!);
  const r3 = cross(r1, r2);
  return { rotation: [...r1, ...r2, ...r3] as Mat3, scale: (s1 + s2) / 2 };
}

function gaussNewtonStep(
  X: Float64Array,
  u: Float64Array,
  w: ArrayLike<number>,
  r: Mat3,
  s: number,
): { omega: [number, number, number]; dScale: number } | undefined {
  // Parameters: a small rotation ω applied on the left (R ← exp([ω]×) R) and the scale.
  // With Y = R X, d(Y)/dω_k = e_k × Y, so the projected derivatives are s·(e_k × Y)_{x,y}.
  const jtj = new Float64Array(16);
  const jtr = new Float64Array(4);
  const n = u.length / 2;
  const jx = new Float64Array(4);
  const jy = new Float64Array(4);
  for (let i = 0; i < n; i++) {
    const x = X[i * 3]!;
    const y = X[i * 3 + 1]!;
    const z = X[i * 3 + 2]!;
    const Y0 = r[0] * x + r[1] * y + r[2] * z;
    const Y1 = r[3] * x + r[4] * y + r[5] * z;
    const Y2 = r[6] * x + r[7] * y + r[8] * z;
    // e0 × Y = (0, −Y2, Y1); e1 × Y = (Y2, 0, −Y0); e2 × Y = (−Y1, Y0, 0)
    jx[0] = 0;
    jx[1] = s * Y2;
    jx[2] = -s * Y1;
    jx[3] = Y0;
    jy[0] = -s * Y2;
    jy[1] = 0;
    jy[2] = s * Y0;
    jy[3] = Y1;
    const rx = u[i * 2]! - s * Y0;
    const ry = u[i * 2 + 1]! - s * Y1;
    const wi = w[i]!;
    for (let a = 0; a < 4; a++) {
      jtr[a]! += wi * (jx[a]! * rx + jy[a]! * ry);
      for (let b = 0; b < 4; b++) jtj[a * 4 + b]! += wi * (jx[a]! * jx[b]! + jy[a]! * jy[b]!);
    }
  }
  const delta = solve4(jtj, jtr);
  if (!delta) return undefined;
  return { omega: [delta[0]!, delta[1]!, delta[2]!], dScale: delta[3]! };
}

function rodrigues([x, y, z]: [number, number, number]): Mat3 {
  const theta = Math.hypot(x, y, z);
  if (theta < 1e-12) return [1, -z, y, z, 1, -x, -y, x, 1];
  const [kx, ky, kz] = [x / theta, y / theta, z / theta];
  const c = Math.cos(theta);
  const s = Math.sin(theta);
  const t = 1 - c;
  return [
    c + kx * kx * t,
    kx * ky * t - kz * s,
    kx * kz * t + ky * s,
    ky * kx * t + kz * s,
    c + ky * ky * t,
    ky * kz * t - kx * s,
    kz * kx * t - ky * s,
    kz * ky * t + kx * s,
    c + kz * kz * t,
  ];
}

function solve4(a: Float64Array, b: Float64Array): Float64Array | undefined {
  // Gaussian elimination with partial pivoting on a copy of the 4×4 system.
  const m = Float64Array.from(a);
  const x = Float64Array.from(b);
  for (let col = 0; col < 4; col++) {
    let pivot = col;
    for (let row = col + 1; row < 4; row++) if (Math.abs(m[row * 4 + col]!) > Math.abs(m[pivot * 4 + col]!)) pivot = row;
    if (Math.abs(m[pivot * 4 + col]!) < 1e-12) return undefined;
    if (pivot !== col) {
      for (let k = 0; k < 4; k++) [m[col * 4 + k], m[pivot * 4 + k]] = [m[pivot * 4 + k]!, m[col * 4 + k]!];
      [x[col], x[pivot]] = [x[pivot]!, x[col]!];
    }
    for (let row = col + 1; row < 4; row++) {
      const f = m[row * 4 + col]! / m[col * 4 + col]!;
      for (let k = col; k < 4; k++) m[row * 4 + k]! -= f * m[col * 4 + k]!;
      x[row]! -= f * x[col]!;
    }
  }
  for (let row = 3; row >= 0; row--) {
    let sum = x[row]!;
    for (let k = row + 1; k < 4; k++) sum -= m[row * 4 + k]! * x[k]!;
    x[row] = sum / m[row * 4 + row]!;
  }
  return x;
}

function invert3(m: Mat3): Mat3 | undefined {
  const [a, b, c, d, e, f, g, h, i] = m;
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  if (Math.abs(det) < 1e-12) return undefined;
  return [
    A / det,
    -(b * i - c * h) / det,
    (b * f - c * e) / det,
    B / det,
    (a * i - c * g) / det,
    -(a * f - c * d) / det,
    C / det,
    -(a * h - b * g) / det,
    (a * e - b * d) / det,
  ];
}

function dot(a: number[], b: number[]): number {
  return a[0]! * b[0]! + a[1]! * b[1]! + (a[2] ?? 0) * (b[2] ?? 0);
}

function cross(a: number[], b: number[]): number[] {
  return [a[1]! * b[2]! - a[2]! * b[1]!, a[2]! * b[0]! - a[0]! * b[2]!, a[0]! * b[1]! - a[1]! * b[0]!];
}

function normalize(v: number[]): number[] {
  const len = Math.hypot(...v);
  return v.map((x) => x / len);
}
