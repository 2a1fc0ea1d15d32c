import { describe, expect, it } from 'vitest';
import { assessQuality, qualityScore, type QualityLimits } from './quality.ts';
import type { Box, FaceImageStats, HeadPose, QualityCheckName } from './types.ts';

const LIMITS: QualityLimits = {
  minFaceSizePx: 48,
  minSharpness: 25,
  minBrightness: 40,
  maxBrightness: 225,
  minContrast: 18,
  maxYawDeg: 45,
  maxPitchDeg: 35,
};

const GOOD_STATS: FaceImageStats = { sharpness: 200, brightness: 120, contrast: 45 };
const FRONTAL: HeadPose = { yawDeg: 0, pitchDeg: 0, rollDeg: 0 };
const square = (side: number): Box => ({ x: 10, y: 20, width: side, height: side });

function judge(overrides: { side?: number; box?: Box; stats?: Partial<FaceImageStats>; pose?: Partial<HeadPose> } = {}) {
  return assessQuality(
    { box: overrides.box ?? square(overrides.side ?? 160), pose: { ...FRONTAL, ...overrides.pose } },
    { ...GOOD_STATS, ...overrides.stats },
    LIMITS,
  );
}

function checkOf(quality: ReturnType<typeof judge>, name: QualityCheckName) {
  const check = quality.checks.find((c) => c.name === name);
  if (!check) throw new Error(`no ${name} check`);
  return check;
}

describe('assessQuality', () => {
  it('passes a large, sharp, well-lit, frontal face, with one check per criterion and no reasons', () => {
    const q = judge();
    expect(q.pass).toBe(true);
    expect(q.checks.map((c) => c.name)).toEqual(['size', 'sharpness', 'brightness', 'contrast', 'pose']);
    expect(q.checks.every((c) => c.pass && c.reason === undefined)).toBe(true);
    expect(q.sizePx).toBe(160);
  });

  it('size: the shorter side of the box, passing at the limit', () => {
    expect(checkOf(judge({ side: 48 }), 'size').pass).toBe(true);
    const small = judge({ box: { x: 0, y: 0, width: 40, height: 90 } });
    expect(small.sizePx).toBe(40);
    expect(small.pass).toBe(false);
    expect(checkOf(small, 'size')).toEqual({ name: 'size', value: 40, pass: false, reason: 'face too small: 40 px < 48 px' });
  });

  it('size: a value that rounds to the limit is printed with a decimal', () => {
    expect(checkOf(judge({ side: 47.6 }), 'size').reason).toBe('face too small: 47.6 px < 48.0 px');
  });

  it('sharpness: passes at the limit, fails below as too blurry', () => {
    expect(checkOf(judge({ stats: { sharpness: 25 } }), 'sharpness').pass).toBe(true);
    const blurry = checkOf(judge({ stats: { sharpness: 9 } }), 'sharpness');
    expect(blurry.pass).toBe(false);
    expect(blurry.reason).toBe('image too blurry: sharpness 9 < 25');
  });

  it('brightness: passes at both limits, fails as too dark or too bright', () => {
    expect(checkOf(judge({ stats: { brightness: 40 } }), 'brightness').pass).toBe(true);
    expect(checkOf(judge({ stats: { brightness: 225 } }), 'brightness').pass).toBe(true);
    expect(checkOf(judge({ stats: { brightness: 22 } }), 'brightness').reason).toBe('too dark: brightness 22 < 40');
    expect(checkOf(judge({ stats: { brightness: 240 } }), 'brightness').reason).toBe('too bright: brightness 240 > 225');
  });

  it('contrast: passes at the limit, fails below', () => {
    expect(checkOf(judge({ stats: { contrast: 18 } }), 'contrast').pass).toBe(true);
    const flat = checkOf(judge({ stats: { contrast: 7 } }), 'contrast');
    expect(flat.pass).toBe(false);
    expect(flat.reason).toMatch(/^too little contrast: 7 < 18/);
  });

  it('pose: passes at the yaw and pitch limits, either sign', () => {
    expect(checkOf(judge({ pose: { yawDeg: 45 } }), 'pose').pass).toBe(true);
    expect(checkOf(judge({ pose: { yawDeg: -45, pitchDeg: 35 } }), 'pose').pass).toBe(true);
    expect(checkOf(judge({ pose: { pitchDeg: -35 } }), 'pose').pass).toBe(true);
  });

  it('pose: a face turned or tilted too far fails with the angle that is out of bounds', () => {
    expect(checkOf(judge({ pose: { yawDeg: 52 } }), 'pose').reason).toBe('face turned too far: yaw 52° > 45°');
    expect(checkOf(judge({ pose: { yawDeg: -60, pitchDeg: 10 } }), 'pose').reason).toBe('face turned too far: yaw 60° > 45°');
    expect(checkOf(judge({ pose: { pitchDeg: 41 } }), 'pose').reason).toBe('face tilted too far up: pitch 41° > 35°');
    expect(checkOf(judge({ pose: { pitchDeg: -50, yawDeg: 20 } }), 'pose').reason).toBe('face tilted too far down: pitch 50° > 35°');
    expect(checkOf(judge({ pose: { yawDeg: 45.4 } }), 'pose').reason).toBe('face turned too far: yaw 45.4° > 45.0°');
  });

  it('pose: the value is the larger turn as a fraction of its limit', () => {
    expect(checkOf(judge({ pose: { yawDeg: 22.5, pitchDeg: 7 } }), 'pose').value).toBeCloseTo(0.5, 9);
    expect(checkOf(judge({ pose: { yawDeg: 9, pitchDeg: -17.5 } }), 'pose').value).toBeCloseTo(0.5, 9);
  });

  it('fails overall when any one check fails, and reports every failing check', () => {
    const q = judge({ side: 30, stats: { brightness: 20 }, pose: { yawDeg: 70 } });
    expect(q.pass).toBe(false);
    expect(q.checks.filter((c) => !c.pass).map((c) => c.name)).toEqual(['size', 'brightness', 'pose']);
  });
});

describe('quality score', () => {
  it('lies in 0..1 and is near 1 for an ideal view', () => {
    const ideal = judge({ side: 200, stats: { sharpness: 5000, brightness: 130, contrast: 60 } }).score;
    expect(ideal).toBeGreaterThan(0.95);
    expect(ideal).toBeLessThanOrEqual(1);
    const awful = judge({ side: 5, stats: { sharpness: 0, brightness: 0, contrast: 0 }, pose: { yawDeg: 90, pitchDeg: 80 } }).score;
    expect(awful).toBe(0);
  });

  it('prefers the more frontal view', () => {
    const scores = [0, 10, 25, 40, 55].map((yawDeg) => judge({ pose: { yawDeg } }).score);
    for (let i = 1; i < scores.length; i++) expect(scores[i]).toBeLessThan(scores[i - 1]!);
    expect(judge({ pose: { yawDeg: -25 } }).score).toBeCloseTo(judge({ pose: { yawDeg: 25 } }).score, 12);
    expect(judge({ pose: { pitchDeg: 20 } }).score).toBeLessThan(judge({ pose: { pitchDeg: 5 } }).score);
  });

  it('prefers the sharper view', () => {
    const scores = [10, 25, 60, 200, 800].map((sharpness) => judge({ stats: { sharpness } }).score);
    for (let i = 1; i < scores.length; i++) expect(scores[i]).toBeGreaterThan(scores[i - 1]!);
  });

  it('prefers the bigger view up to 2.5 × the minimum size, then stops caring', () => {
    const scores = [30, 48, 80, 110].map((side) => judge({ side }).score);
    for (let i = 1; i < scores.length; i++) expect(scores[i]).toBeGreaterThan(scores[i - 1]!);
    expect(judge({ side: 300 }).score).toBe(judge({ side: 120 }).score);
  });

  it('prefers a well-exposed face to one near either brightness limit', () => {
    const mid = judge({ stats: { brightness: 130 } }).score;
    expect(judge({ stats: { brightness: 45 } }).score).toBeLessThan(mid);
    expect(judge({ stats: { brightness: 220 } }).score).toBeLessThan(mid);
    expect(judge({ stats: { brightness: 20 } }).score).toBeLessThan(judge({ stats: { brightness: 45 } }).score);
  });

  it('a frontal sharp view beats a turned blurry one even when the turned one is bigger', () => {
    const frontalSharp = judge({ side: 90, stats: { sharpness: 300 } }).score;
    const turnedBlurry = judge({ side: 140, stats: { sharpness: 30 }, pose: { yawDeg: 40 } }).score;
    expect(frontalSharp).toBeGreaterThan(turnedBlurry);
  });

  it('is what assessQuality reports', () => {
    const stats = { sharpness: 80, brightness: 90, contrast: 30 };
    const pose = { yawDeg: 12, pitchDeg: -8, rollDeg: 3 };
    expect(assessQuality({ box: square(100), pose }, stats, LIMITS).score).toBe(qualityScore(100, stats, pose, LIMITS));
  });
});
