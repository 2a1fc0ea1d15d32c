import type { Point } from './types.ts';

/*
 * Active liveness for guided capture: a head turning is a 3D motion, a photo turned in front of
 * the camera is a plane. The landmarks of two views of one plane are related exactly by a
 * homography (a perspective warp); the landmarks of two views of a head are not, because the
 * nose, the face outline and the eyes sit at different depths (parallax). So: fit a homography
 * from the frontal capture's landmarks to each turned capture's, and measure what it leaves
 * unexplained, relative to the eye distance. A flat spoof leaves only landmark noise.
 */

/** Solves the n×n system a·x = b in place by Gaussian elimination with partial pivoting; null when singular. */
function solve(a: number[][], b: number[]): number[] | null {
  const n = b.length;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[pivot]![col]!)) pivot = r;
    if (Math.abs(a[pivot]![col]!) < 1e-12) return null;
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    [b[col], b[pivot]] = [b[pivot]!, b[col]!];
    for (let r = col + 1; r < n; r++) {
      const f = a[r]![col]! / a[col]![col]!;
      for (let c = col; c < n; c++) a[r]![c]! -= f * a[col]![c]!;
      b[r]! -= f * b[col]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = b[r]!;
    for (let c = r + 1; c < n; c++) s -= a[r]![c]! * x[c]!;
    x[r] = s / a[r]![r]!;
  }
  return x;
}

/** Centres points and scales them to unit mean distance (conditioning for the fit). */
function normalise(points: readonly Point[]): { points: Point[]; scale: number } {
  const cx = points.reduce((s, p) => s + p.x, 0) / points.length;
  const cy = points.reduce((s, p) => s + p.y, 0) / points.length;
  const d = points.reduce((s, p) => s + Math.hypot(p.x - cx, p.y - cy), 0) / points.length || 1;
  return { points: points.map((p) => ({ x: (p.x - cx) / d, y: (p.y - cy) / d })), scale: d };
}

/**
 * RMS distance between `to` and `from` mapped by the least-squares homography from→to, in units
 * of `to`'s spread (mean distance from the centroid). Needs at least 5 pairs (4 determine it).
 */
export function homographyResidual(from: readonly Point[], to: readonly Point[]): number {
  if (from.length !== to.length || from.length < 5) throw new RangeError('homographyResidual needs at least 5 point pairs, equally many');
  const a = normalise(from).points;
  const b = normalise(to).points;
  const ata = Array.from({ length: 8 }, () => new Array<number>(8).fill(0));
  const atb = new Array<number>(8).fill(0);
  const addRow = (row: number[], rhs: number): void => {
    for (let i = 0; i < 8; i++) {
      atb[i]! += row[i]! * rhs;
      for (let j = 0; j < 8; j++) ata[i]![j]! += row[i]! * row[j]!;
    }
  };
  for (let i = 0; i < a.length; i++) {
    const { x, y } = a[i]!;
    const { x: u, y: v } = b[i]!;
    addRow([x, y, 1, 0, 0, 0, -x * u, -y * u], u);
    addRow([0, 0, 0, x, y, 1, -x * v, -y * v], v);
  }
  const h = solve(ata, atb);
  if (!h) return Number.POSITIVE_INFINITY;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const { x, y } = a[i]!;
    const w = h[6]! * x + h[7]! * y + 1;
    const u = (h[0]! * x + h[1]! * y + h[2]!) / w;
    const v = (h[3]! * x + h[4]! * y + h[5]!) / w;
    sum += (u - b[i]!.x) ** 2 + (v - b[i]!.y) ** 2;
  }
  return Math.sqrt(sum / a.length);
}

export interface PlanarView {
  yawDeg: number;
  pitchDeg: number;
  landmarks5: readonly Point[];
  landmarks?: readonly Point[];
}

export interface ParallaxAssessment {
  /** The largest homography residual between the most frontal view and any view turned at least minTurnDeg; null when no view turned enough. */
  parallax: number | null;
  /** Views compared. */
  compared: number;
  /** Largest turn compared, degrees (yaw or pitch from the frontal view). */
  maxTurnDeg: number;
}

/**
 * How much the views of a guided capture disagree with one plane. Uses the full landmark set
 * when every view has one of the same length, else the five alignment points.
 */
export function assessParallax(views: readonly PlanarView[], minTurnDeg = 10): ParallaxAssessment {
  if (views.length < 2) return { parallax: null, compared: 0, maxTurnDeg: 0 };
  const frontal = views.reduce((best, v) => (Math.hypot(v.yawDeg, v.pitchDeg) < Math.hypot(best.yawDeg, best.pitchDeg) ? v : best));
  const full = views.every((v) => v.landmarks && v.landmarks.length >= 5 && v.landmarks.length === frontal.landmarks?.length);
  const pointsOf = (v: PlanarView): readonly Point[] => (full ? v.landmarks! : v.landmarks5);
  let parallax: number | null = null;
  let compared = 0;
  let maxTurnDeg = 0;
  for (const v of views) {
    if (v === frontal) continue;
    const turn = Math.max(Math.abs(v.yawDeg - frontal.yawDeg), Math.abs(v.pitchDeg - frontal.pitchDeg));
    if (turn < minTurnDeg) continue;
    const r = homographyResidual(pointsOf(frontal), pointsOf(v));
    if (!Number.isFinite(r)) continue;
    compared++;
    maxTurnDeg = Math.max(maxTurnDeg, turn);
    parallax = parallax === null ? r : Math.max(parallax, r);
  }
  return { parallax, compared, maxTurnDeg };
}
