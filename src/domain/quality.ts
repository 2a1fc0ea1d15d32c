import type { Box, FaceImageStats, FaceQuality, HeadPose, QualityCheck } from './types.ts';

/**
 * The limits a face is judged against. The same shape as the config's vision.quality
 * (src/config/config.ts), declared here because the domain imports nothing outside itself.
 */
export interface QualityLimits {
  minFaceSizePx: number;
  minSharpness: number;
  minBrightness: number;
  maxBrightness: number;
  minContrast: number;
  maxYawDeg: number;
  maxPitchDeg: number;
}

/**
 * Judges a face for recognition or enrollment: one check per criterion (size, sharpness,
 * brightness, contrast, pose), each with a reason a user can act on when it fails, and a 0..1
 * score for choosing the better of two views of the same face.
 */
export function assessQuality(face: { box: Box; pose: HeadPose }, stats: FaceImageStats, limits: QualityLimits): FaceQuality {
  const sizePx = Math.min(face.box.width, face.box.height);
  const { yawDeg, pitchDeg } = face.pose;
  const checks: QualityCheck[] = [
    check('size', sizePx, sizePx >= limits.minFaceSizePx, () => `face too small: ${pair(sizePx, limits.minFaceSizePx, ' px < ')} px`),
    check(
      'sharpness',
      stats.sharpness,
      stats.sharpness >= limits.minSharpness,
      () => `image too blurry: sharpness ${pair(stats.sharpness, limits.minSharpness, ' < ')}`,
    ),
    check(
      'brightness',
      stats.brightness,
      stats.brightness >= limits.minBrightness && stats.brightness <= limits.maxBrightness,
      () =>
        stats.brightness < limits.minBrightness
          ? `too dark: brightness ${pair(stats.brightness, limits.minBrightness, ' < ')}`
          : `too bright: brightness ${pair(stats.brightness, limits.maxBrightness, ' > ')}`,
    ),
    check(
      'contrast',
      stats.contrast,
      stats.contrast >= limits.minContrast,
      () => `too little contrast: ${pair(stats.contrast, limits.minContrast, ' < ')} (flat light or haze)`,
    ),
    poseCheck(yawDeg, pitchDeg, limits),
  ];
  return { score: qualityScore(sizePx, stats, face.pose, limits), pass: checks.every((c) => c.pass), sizePx, checks };
}

function check(name: QualityCheck['name'], value: number, pass: boolean, reason: () => string): QualityCheck {
  return pass ? { name, value, pass } : { name, value, pass, reason: reason() };
}

/** Value = how far the head is turned, as a fraction of what is allowed (the larger of yaw and pitch); pass ≤ 1. */
function poseCheck(yawDeg: number, pitchDeg: number, limits: QualityLimits): QualityCheck {
  const yawRatio = Math.abs(yawDeg) / limits.maxYawDeg;
  const pitchRatio = Math.abs(pitchDeg) / limits.maxPitchDeg;
  const value = Math.max(yawRatio, pitchRatio);
  if (value <= 1) return { name: 'pose', value, pass: true };
  const reason =
    yawRatio >= pitchRatio
      ? `face turned too far: yaw ${pair(Math.abs(yawDeg), limits.maxYawDeg, '° > ')}°`
      : `face tilted too far ${pitchDeg > 0 ? 'up' : 'down'}: pitch ${pair(Math.abs(pitchDeg), limits.maxPitchDeg, '° > ')}°`;
  return { name: 'pose', value, pass: false, reason };
}

/**
 * 0..1, the product of one factor per criterion, each rising with what makes a view better:
 * - size: linear up to 2.5 × the minimum (≈ 120 px at the default 48 px: the embedder sees 112 px);
 * - sharpness: s / (s + minSharpness), ½ at the limit, approaching 1;
 * - pose: 1 − ½(yaw/maxYaw)² − ½(pitch/maxPitch)², 1 frontal, ½ at one limit, 0 at both;
 * - exposure: 1 well inside the brightness range, falling to ½ at its ends and to 0 beyond;
 * - contrast: linear up to 2 × the minimum.
 * Smooth, so that of two views the more frontal, sharper or bigger one scores higher.
 */
export function qualityScore(sizePx: number, stats: FaceImageStats, pose: HeadPose, limits: QualityLimits): number {
  const size = clamp01(sizePx / (2.5 * limits.minFaceSizePx));
  const sharpness = stats.sharpness / (stats.sharpness + Math.max(limits.minSharpness, 1e-9));
  const frontal = clamp01(1 - 0.5 * (pose.yawDeg / limits.maxYawDeg) ** 2 - 0.5 * (pose.pitchDeg / limits.maxPitchDeg) ** 2);
  // Exposure: a margin of a sixth of the allowed range at each end ramps from ½ (at the limit) to 1.
  const margin = Math.max((limits.maxBrightness - limits.minBrightness) / 6, 1e-9);
  const distance = Math.min(stats.brightness - limits.minBrightness, limits.maxBrightness - stats.brightness);
  const exposure = distance >= 0 ? Math.min(1, 0.5 + (0.5 * distance) / margin) : clamp01(0.5 + (0.5 * distance) / margin);
  const contrast = clamp01(stats.contrast / (2 * Math.max(limits.minContrast, 1e-9)));
  return size * sharpness * frontal * exposure * contrast;
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/**
 * "value<sep>limit" with whole numbers, or one decimal when whole numbers would read as equal
 * (47.6 px against 48 px must not print as "48 px < 48 px").
 */
function pair(value: number, limit: number, separator: string): string {
  const digits = Math.round(value) === Math.round(limit) ? 1 : 0;
  return `${value.toFixed(digits)}${separator}${limit.toFixed(digits)}`;
}
