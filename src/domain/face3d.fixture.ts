import type { Point } from './types.ts';

/*
 * Test fixture (unit tests of enrollment's parallax check, domain and service): a rough 3D face
 * seen by a pinhole camera, so a turned head shows parallax and a turned photo of it does not.
 */

/** Eyes and mouth at depth 0, the nose tip 30 units out, the outline up to 20 back. */
export const FACE3D: readonly (readonly [number, number, number])[] = [
  [-16, -18, 0],
  [16, -18, 0],
  [0, 0, 30],
  [-12, 18, 0],
  [12, 18, 0],
  [-30, -5, -20],
  [30, -5, -20],
  [0, 35, -5],
];

/** FACE3D turned by yawDeg and projected around (center, center) at scale; flat: a photo of it (all depths 0). */
export function projectFace3D(yawDeg: number, options: { flat?: boolean; center: number; scale: number }): Point[] {
  const r = (yawDeg * Math.PI) / 180;
  return FACE3D.map(([x, y, z0]) => {
    const z = options.flat === true ? 0 : z0;
    const xr = x * Math.cos(r) + z * Math.sin(r);
    const zr = -x * Math.sin(r) + z * Math.cos(r);
    const f = 500 / (500 + zr);
    return { x: options.center + xr * f * options.scale, y: options.center + y * f * options.scale };
  });
}
