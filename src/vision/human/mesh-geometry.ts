import type { Box, HeadPose, Landmarks5, Point } from '../../domain/types.ts';

/**
 * Geometry on Human's 468-point face mesh (MediaPipe FaceMesh indices): the five ArcFace points,
 * the face box, head pose, and the square face crop Human's face models expect. Pure functions.
 */

/** Contour of the subject's right eye: the eye on the image's left in an unmirrored photo. */
export const MESH_EYE_IMAGE_LEFT: readonly number[] = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246];
/** Contour of the subject's left eye: the eye on the image's right. */
export const MESH_EYE_IMAGE_RIGHT: readonly number[] = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466];
export const MESH_NOSE_TIP = 1;
export const MESH_MOUTH_IMAGE_LEFT = 61;
export const MESH_MOUTH_IMAGE_RIGHT = 291;
export const MESH_POINT_COUNT = 468;

/**
 * Human's face models (faceres, antispoof, liveness) were fed a square crop whose side is 1.4 × the
 * BlazeFace box; measured on the face-api demo photos, that side is a median 1.5 × the larger side
 * of the mesh's bounding box (1.35–1.77).
 */
export const FACE_CROP_SCALE = 1.5;

/** A mesh point as Human gives it: [x, y] in image pixels, with z where the mesh has depth. */
export type MeshPoint = readonly number[];

function meanPoint(mesh: readonly MeshPoint[], indices: readonly number[]): Point {
  let x = 0;
  let y = 0;
  for (const i of indices) {
    const p = mesh[i]!;
    x += p[0]!;
    y += p[1]!;
  }
  return { x: x / indices.length, y: y / indices.length };
}

function point(mesh: readonly MeshPoint[], index: number): Point {
  const p = mesh[index]!;
  return { x: p[0]!, y: p[1]! };
}

/** The five ArcFace alignment points from the mesh: eye centres (mean of 16 contour points), nose tip, mouth corners. */
export function landmarks5FromMesh(mesh: readonly MeshPoint[]): Landmarks5 {
  return [
    meanPoint(mesh, MESH_EYE_IMAGE_LEFT),
    meanPoint(mesh, MESH_EYE_IMAGE_RIGHT),
    point(mesh, MESH_NOSE_TIP),
    point(mesh, MESH_MOUTH_IMAGE_LEFT),
    point(mesh, MESH_MOUTH_IMAGE_RIGHT),
  ];
}

/** The bounding box of a point set (unclamped). */
export function pointsBox(points: readonly MeshPoint[] | readonly Point[]): Box {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const p of points) {
    const x = Array.isArray(p) ? (p as MeshPoint)[0]! : (p as Point).x;
    const y = Array.isArray(p) ? (p as MeshPoint)[1]! : (p as Point).y;
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  return { x: minX, y: minY, width: maxX - minX, height: maxY - minY };
}

/** Clamps a box to the image; a box wholly outside collapses to zero size at the nearest edge. */
export function clampToImage(box: Box, width: number, height: number): Box {
  const x0 = Math.min(Math.max(box.x, 0), width);
  const y0 = Math.min(Math.max(box.y, 0), height);
  const x1 = Math.min(Math.max(box.x + box.width, 0), width);
  const y1 = Math.min(Math.max(box.y + box.height, 0), height);
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** Image roll of the eye line in degrees, in Facegate's sign: > 0 when the line turns clockwise in the image. */
export function eyeLineRollDeg(landmarks5: Landmarks5): number {
  const [left, right] = landmarks5;
  return (Math.atan2(right.y - left.y, right.x - left.x) * 180) / Math.PI;
}

/**
 * Yaw and pitch from the mesh by Human's own method (an orthonormal frame from forehead 10, chin 152
 * and the cheek points 234 and 454), with one fix: Human divides x and y by 2/3 of its crop side but
 * leaves z in mesh units (1/192 of the crop side), which flattens every angle; here all three axes
 * are in pixels. On Pointing'04 (|yaw| ≤ 45°, |pitch| ≤ 30°) this takes the median yaw error from
 * 10.4° (Human's angle) to 5.4°.
 *
 * zPxPerUnit converts mesh z into pixels: Human's crop side / the mesh model's input size.
 * Roll is the eye line's (see eyeLineRollDeg): it is Facegate's definition of roll, and on
 * Pointing'04, where heads are held upright, it spreads less than the frame's roll (median |roll|
 * 2.2° against 4.0°). Signs follow src/domain/types.ts: yaw > 0 faces the image's right,
 * pitch > 0 looks up.
 */
export function poseFromMesh(mesh: readonly MeshPoint[], zPxPerUnit: number, landmarks5: Landmarks5): HeadPose {
  const at = (i: number): [number, number, number] => {
    const p = mesh[i]!;
    return [p[0]!, p[1]!, (p[2] ?? 0) * zPxPerUnit];
  };
  const top = at(10);
  const chin = at(152);
  const cheekImageLeft = at(234);
  const cheekImageRight = at(454);
  const down = normalize(sub(chin, top));
  let across = normalize(sub(cheekImageRight, cheekImageLeft));
  const forward = normalize(cross(across, down));
  across = cross(down, forward);
  // Human's Euler decomposition of the frame [across; down; forward], with its signs turned into ours.
  const m10 = down[0];
  const m00 = across[0];
  const m20 = forward[0];
  const m11 = down[1];
  const m12 = down[2];
  const yawRad = Math.abs(m10) < 1 ? Math.atan2(-m20, m00) : 0;
  const pitchRad = Math.abs(m10) < 1 ? Math.atan2(-m12, m11) : 0;
  return {
    yawDeg: finiteOrZero((yawRad * 180) / Math.PI),
    pitchDeg: finiteOrZero((pitchRad * 180) / Math.PI),
    rollDeg: finiteOrZero(eyeLineRollDeg(landmarks5)),
  };
}

/** The square (centre, side in pixels) Human's face models take a face from, centred on the mesh. */
export interface FaceSquare {
  centerX: number;
  centerY: number;
  sidePx: number;
}

/** The face crop square for a face box (the mesh's bounding box). */
export function faceSquareFromBox(box: Box, scale = FACE_CROP_SCALE): FaceSquare {
  return {
    centerX: box.x + box.width / 2,
    centerY: box.y + box.height / 2,
    sidePx: scale * Math.max(box.width, box.height),
  };
}

type Vec3 = [number, number, number];

function sub(a: Vec3, b: Vec3): Vec3 {
  return [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
}

function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

function normalize(v: Vec3): Vec3 {
  const n = Math.hypot(v[0], v[1], v[2]) || 1;
  return [v[0] / n, v[1] / n, v[2] / n];
}

function finiteOrZero(v: number): number {
  return Number.isFinite(v) ? v : 0;
}
