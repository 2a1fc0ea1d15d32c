import type { Box, HeadPose, Point } from './types.ts';

/*
 * Enrollment, the pure part: the guided multi-angle capture state machine, the circular-scan
 * coverage grid, the "same person throughout" check and the choice of templates. No I/O: the
 * enrollment service feeds observations of frames in (faces with pose, size, quality) and, for
 * the faces this file asks for, their embeddings and liveness; it does the saving.
 *
 * Poses follow src/domain/types.ts HeadPose: yaw > 0 = the subject turned to their own left,
 * pitch > 0 = looking up.
 */

/** One pose the guided capture asks for. */
export interface EnrollmentAngle {
  /** front, left, right, up, down … (the event's angle_name and the template's pose label). */
  name: string;
  yawDeg: number;
  pitchDeg: number;
  /** The pose counts as reached when both |yaw − target| and |pitch − target| are within this. */
  toleranceDeg: number;
  /** What the person is told, e.g. "Turn your head slightly left". */
  instruction: string;
}

/** Seed 000's five angles; the targets are moderate because the estimates run low at large angles. */
export const DEFAULT_ENROLLMENT_ANGLES: readonly EnrollmentAngle[] = [
  { name: 'front', yawDeg: 0, pitchDeg: 0, toleranceDeg: 10, instruction: 'Look straight at the camera' },
  { name: 'left', yawDeg: 25, pitchDeg: 0, toleranceDeg: 12, instruction: 'Turn your head slightly to your left' },
  { name: 'right', yawDeg: -25, pitchDeg: 0, toleranceDeg: 12, instruction: 'Turn your head slightly to your right' },
  { name: 'up', yawDeg: 0, pitchDeg: 15, toleranceDeg: 10, instruction: 'Tilt your head slightly up' },
  { name: 'down', yawDeg: 0, pitchDeg: -15, toleranceDeg: 10, instruction: 'Tilt your head slightly down' },
];

export interface GuidedCaptureConfig {
  angles: readonly EnrollmentAngle[];
  /** Good frames captured per angle. */
  framesPerAngle: number;
  /** The face must stay in the target pose this long before a frame is captured, in milliseconds. */
  holdMs: number;
  /** Consecutive frames whose pose differs more than this (degrees, yaw or pitch) mean the head is moving. */
  maxPoseStepDeg: number;
  /** Liveness (0..1) below which a capture is refused as a possible spoof. */
  minLiveness: number;
  /** A capture less similar than this to the ones before (cosine, their medoid) means the person changed. */
  consistencyMinSimilarity: number;
  /** The whole capture must finish within this, in milliseconds. */
  timeoutMs: number;
}

/** One face of an observed frame, as the guided capture and the scan judge it. */
export interface ObservedFace {
  box: Box;
  pose: HeadPose;
  /** Smaller side of the box, in pixels. */
  sizePx: number;
  /** 0..1. */
  qualityScore: number;
  /** Every quality check except the pose one passed (enrollment asks for turned poses on purpose). */
  qualityPass: boolean;
  /** Why quality failed, for the UI. */
  qualityReasons: readonly string[];
  landmarks5: readonly Point[];
  landmarks?: readonly Point[];
}

/** A frame reduced to what enrollment needs: its usable faces (big enough) and the number of smaller ones. */
export interface FrameObservation {
  atMs: number;
  /** Faces at least the minimum face size. */
  faces: readonly ObservedFace[];
}

export type GuidanceProblem = 'no_face' | 'several_faces' | 'low_quality' | 'off_pose' | 'moving' | 'holding' | 'not_live' | 'ready';

export interface Guidance {
  angle: EnrollmentAngle;
  /** 1-based. */
  angleNumber: number;
  totalAngles: number;
  /** Percent of all frames to capture, captured so far. */
  progress: number;
  /** The face's pose minus the target pose (degrees); null without a single face. */
  poseError: { yaw: number; pitch: number } | null;
  problem: GuidanceProblem;
}

/** A face this frame is good enough to capture: the caller embeds it and calls accept(). */
export interface CaptureCandidate {
  face: ObservedFace;
  angle: EnrollmentAngle;
  atMs: number;
}

/** A captured frame of the enrollment: the face with its embedding (L2-normalised). */
export interface Capture {
  angleName: string;
  pose: HeadPose;
  qualityScore: number;
  liveness: number | null;
  embedding: Float32Array;
  landmarks5: readonly Point[];
  landmarks?: readonly Point[];
  atMs: number;
}

export type GuidedStatus = 'capturing' | 'done' | 'failed';
export type GuidedFailure = 'timeout' | 'person_changed' | 'planar_spoof';

export type ObserveResult = { kind: 'guide'; guidance: Guidance } | { kind: 'candidate'; guidance: Guidance; candidate: CaptureCandidate } | { kind: 'failed'; reason: GuidedFailure };

export type AcceptResult =
  | { kind: 'captured'; guidance: Guidance }
  | { kind: 'rejected'; reason: 'not_live' | 'stale'; guidance: Guidance }
  | { kind: 'angle_complete'; angle: EnrollmentAngle; progress: number; next: Guidance | null }
  | { kind: 'failed'; reason: GuidedFailure; similarity?: number };

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) dot += a[i]! * b[i]!;
  return dot;
}

/**
 * The capture whose mean similarity to the others is highest, and each capture's similarity to it.
 * With one embedding it is its own medoid.
 */
export function medoid(embeddings: readonly Float32Array[]): { index: number; similarities: number[] } {
  if (embeddings.length === 0) throw new RangeError('medoid of nothing');
  let best = 0;
  let bestMean = -Infinity;
  for (let i = 0; i < embeddings.length; i++) {
    let sum = 0;
    for (let j = 0; j < embeddings.length; j++) if (j !== i) sum += cosine(embeddings[i]!, embeddings[j]!);
    const mean = embeddings.length > 1 ? sum / (embeddings.length - 1) : 1;
    if (mean > bestMean) {
      bestMean = mean;
      best = i;
    }
  }
  return { index: best, similarities: embeddings.map((e) => cosine(e, embeddings[best]!)) };
}

export type ConsistencyCheck = { consistent: true; minSimilarity: number } | { consistent: false; outliers: number[]; minSimilarity: number };

/**
 * Every capture must be the same person as the others: each one's cosine similarity to the
 * medoid capture must reach minSimilarity (the verification threshold). A swap of people
 * mid-enrollment leaves one group far from the other's medoid.
 */
export function checkConsistency(embeddings: readonly Float32Array[], minSimilarity: number): ConsistencyCheck {
  if (embeddings.length < 2) return { consistent: true, minSimilarity: 1 };
  const { similarities } = medoid(embeddings);
  const lowest = Math.min(...similarities);
  const outliers = similarities.flatMap((s, i) => (s < minSimilarity ? [i] : []));
  return outliers.length === 0 ? { consistent: true, minSimilarity: lowest } : { consistent: false, outliers, minSimilarity: lowest };
}

export type CaptureScreening =
  | { kind: 'consistent'; keep: number[]; dropped: number[]; minSimilarity: number }
  | { kind: 'inconsistent'; outliers: number[]; minSimilarity: number; secondPerson: boolean };

/**
 * The consistency check of a scan's kept frames, tolerant of a few stray views: frames far from
 * the medoid are dropped when they are few (≤ maxStrayShare of all) and unlike each other (bad
 * detections, blur); when they resemble each other they are someone else, and the enrollment is
 * inconsistent whatever their number.
 */
export function screenCaptures(embeddings: readonly Float32Array[], minSimilarity: number, maxStrayShare = 0.2): CaptureScreening {
  const check = checkConsistency(embeddings, minSimilarity);
  const all = embeddings.map((_, i) => i);
  if (check.consistent) return { kind: 'consistent', keep: all, dropped: [], minSimilarity: check.minSimilarity };
  const strays = check.outliers;
  const secondPerson = strays.length >= 2 && strays.some((i, a) => strays.some((j, b) => b > a && cosine(embeddings[i]!, embeddings[j]!) >= minSimilarity));
  if (secondPerson || strays.length > maxStrayShare * embeddings.length) return { kind: 'inconsistent', outliers: strays, minSimilarity: check.minSimilarity, secondPerson };
  const keep = all.filter((i) => !strays.includes(i));
  return { kind: 'consistent', keep, dropped: strays, minSimilarity: check.minSimilarity };
}

/** A candidate template: anything with a pose label, a quality and an embedding. */
export interface TemplateCandidate {
  label: string;
  qualityScore: number;
  embedding: Float32Array;
}

/**
 * The best k templates per pose label: by quality, skipping near-copies (cosine above
 * maxSimilarity to one already chosen for that label) while other candidates remain, so the k
 * differ. Output order: labels in first-seen order, best first within a label.
 */
export function selectTemplates<T extends TemplateCandidate>(candidates: readonly T[], perPose: number, maxSimilarity = 0.97): T[] {
  const byLabel = new Map<string, T[]>();
  for (const c of candidates) {
    const list = byLabel.get(c.label) ?? [];
    list.push(c);
    byLabel.set(c.label, list);
  }
  const chosen: T[] = [];
  for (const list of byLabel.values()) {
    const sorted = [...list].sort((a, b) => b.qualityScore - a.qualityScore);
    const picked: T[] = [];
    const skipped: T[] = [];
    for (const c of sorted) {
      if (picked.length >= perPose) break;
      if (picked.some((p) => cosine(p.embedding, c.embedding) > maxSimilarity)) skipped.push(c);
      else picked.push(c);
    }
    // Too few distinct views: fill with the best near-copies rather than keep fewer.
    for (const c of skipped) if (picked.length < perPose) picked.push(c);
    chosen.push(...picked);
  }
  return chosen;
}

const round1 = (v: number): number => Math.round(v * 10) / 10;

/**
 * Guided multi-angle capture (seed 000): the angles in order; an angle's frame is a candidate
 * only when exactly one usable face is in view, its quality passes, its pose is within the
 * tolerance of the target, and it has been held there (steady) for holdMs. The caller embeds the
 * candidate (with liveness) and calls accept(): a live capture of the same person counts.
 */
export class GuidedCapture {
  private angleIndex = 0;
  private readonly captures: Capture[] = [];
  private perAngle = 0;
  /** When the current in-pose, steady streak began. */
  private holdSinceMs: number | null = null;
  private lastPose: HeadPose | null = null;
  private failure: GuidedFailure | null = null;
  /** Time of the last frame captured (a frame is captured once, later frames must be newer). */
  private lastCaptureAtMs = -Infinity;

  constructor(
    private readonly config: GuidedCaptureConfig,
    readonly startedAtMs: number,
  ) {
    if (config.angles.length === 0) throw new RangeError('guided capture needs at least one angle');
    if (!Number.isInteger(config.framesPerAngle) || config.framesPerAngle < 1) throw new RangeError('framesPerAngle must be a whole number ≥ 1');
  }

  get status(): GuidedStatus {
    if (this.failure) return 'failed';
    return this.angleIndex >= this.config.angles.length ? 'done' : 'capturing';
  }

  get failureReason(): GuidedFailure | null {
    return this.failure;
  }

  get captured(): readonly Capture[] {
    return this.captures;
  }

  get totalFrames(): number {
    return this.config.angles.length * this.config.framesPerAngle;
  }

  get progress(): number {
    return Math.round((100 * this.captures.length) / this.totalFrames);
  }

  /** The angle being captured, or null when done. */
  get currentAngle(): EnrollmentAngle | null {
    return this.config.angles[this.angleIndex] ?? null;
  }

  get angleNumber(): number {
    return Math.min(this.angleIndex + 1, this.config.angles.length);
  }

  /** Fails the capture on timeout; returns true when it did. */
  tick(nowMs: number): boolean {
    if (this.status !== 'capturing') return false;
    if (nowMs - this.startedAtMs > this.config.timeoutMs) {
      this.failure = 'timeout';
      return true;
    }
    return false;
  }

  /** Marks the capture failed for a reason found outside (a planar spoof at the end). */
  fail(reason: GuidedFailure): void {
    if (this.status === 'capturing' || this.status === 'done') this.failure = reason;
  }

  /** Judges one frame. */
  observe(frame: FrameObservation): ObserveResult {
    if (this.tick(frame.atMs)) return { kind: 'failed', reason: 'timeout' };
    if (this.failure) return { kind: 'failed', reason: this.failure };
    const angle = this.currentAngle;
    if (!angle) throw new Error('the guided capture is done');
    const guidance = (problem: GuidanceProblem, face?: ObservedFace): Guidance => ({
      angle,
      angleNumber: this.angleIndex + 1,
      totalAngles: this.config.angles.length,
      progress: this.progress,
      poseError: face ? { yaw: round1(face.pose.yawDeg - angle.yawDeg), pitch: round1(face.pose.pitchDeg - angle.pitchDeg) } : null,
      problem,
    });
    if (frame.faces.length !== 1) {
      this.holdSinceMs = null;
      this.lastPose = null;
      return { kind: 'guide', guidance: guidance(frame.faces.length === 0 ? 'no_face' : 'several_faces') };
    }
    const face = frame.faces[0]!;
    const previous = this.lastPose;
    this.lastPose = face.pose;
    if (!face.qualityPass) {
      this.holdSinceMs = null;
      return { kind: 'guide', guidance: guidance('low_quality', face) };
    }
    const inPose = Math.abs(face.pose.yawDeg - angle.yawDeg) <= angle.toleranceDeg && Math.abs(face.pose.pitchDeg - angle.pitchDeg) <= angle.toleranceDeg;
    if (!inPose) {
      this.holdSinceMs = null;
      return { kind: 'guide', guidance: guidance('off_pose', face) };
    }
    const moving =
      previous !== null &&
      (Math.abs(face.pose.yawDeg - previous.yawDeg) > this.config.maxPoseStepDeg || Math.abs(face.pose.pitchDeg - previous.pitchDeg) > this.config.maxPoseStepDeg);
    if (moving) {
      this.holdSinceMs = frame.atMs;
      if (this.config.holdMs > 0) return { kind: 'guide', guidance: guidance('moving', face) };
    }
    this.holdSinceMs ??= frame.atMs;
    if (frame.atMs - this.holdSinceMs < this.config.holdMs) return { kind: 'guide', guidance: guidance('holding', face) };
    if (frame.atMs <= this.lastCaptureAtMs) return { kind: 'guide', guidance: guidance('holding', face) };
    return { kind: 'candidate', guidance: guidance('ready', face), candidate: { face, angle, atMs: frame.atMs } };
  }

  /** Takes an embedded candidate (liveness null = not measured). */
  accept(candidate: CaptureCandidate, embedding: Float32Array, liveness: number | null): AcceptResult {
    if (this.failure) return { kind: 'failed', reason: this.failure };
    const angle = this.currentAngle;
    const guidance = (): Guidance => ({
      angle: angle ?? candidate.angle,
      angleNumber: this.angleNumber,
      totalAngles: this.config.angles.length,
      progress: this.progress,
      poseError: { yaw: round1(candidate.face.pose.yawDeg - candidate.angle.yawDeg), pitch: round1(candidate.face.pose.pitchDeg - candidate.angle.pitchDeg) },
      problem: 'ready',
    });
    // The angle moved on while this candidate was being embedded, or a newer frame was captured.
    if (angle?.name !== candidate.angle.name || candidate.atMs <= this.lastCaptureAtMs) return { kind: 'rejected', reason: 'stale', guidance: guidance() };
    if (liveness !== null && liveness < this.config.minLiveness) {
      this.holdSinceMs = null;
      return { kind: 'rejected', reason: 'not_live', guidance: { ...guidance(), problem: 'not_live' } };
    }
    if (this.captures.length > 0) {
      const all = [...this.captures.map((c) => c.embedding), embedding];
      const { index, similarities } = medoid(all);
      // The newcomer against the medoid of everything so far (itself when it is the medoid: then the lowest other).
      const similarity = index === all.length - 1 ? Math.min(...similarities.slice(0, -1)) : similarities[all.length - 1]!;
      if (similarity < this.config.consistencyMinSimilarity) {
        this.failure = 'person_changed';
        return { kind: 'failed', reason: 'person_changed', similarity };
      }
    }
    this.captures.push({
      angleName: candidate.angle.name,
      pose: candidate.face.pose,
      qualityScore: candidate.face.qualityScore,
      liveness,
      embedding,
      landmarks5: candidate.face.landmarks5,
      ...(candidate.face.landmarks ? { landmarks: candidate.face.landmarks } : {}),
      atMs: candidate.atMs,
    });
    this.lastCaptureAtMs = candidate.atMs;
    this.perAngle++;
    if (this.perAngle < this.config.framesPerAngle) return { kind: 'captured', guidance: guidance() };
    const done = candidate.angle;
    this.angleIndex++;
    this.perAngle = 0;
    this.holdSinceMs = null;
    const nextAngle = this.currentAngle;
    return {
      kind: 'angle_complete',
      angle: done,
      progress: this.progress,
      next: nextAngle
        ? { angle: nextAngle, angleNumber: this.angleIndex + 1, totalAngles: this.config.angles.length, progress: this.progress, poseError: null, problem: 'off_pose' }
        : null,
    };
  }
}

// ---- circular scan ----

export interface ScanGridConfig {
  /** Bin edges of yaw, ascending, in degrees: n edges make n − 1 bins. */
  yawEdgesDeg: readonly number[];
  /** Bin edges of pitch, ascending, in degrees. */
  pitchEdgesDeg: readonly number[];
  /** Frames kept per bin (the best by quality); only these are embedded. */
  keepPerBin: number;
}

export interface ScanBin {
  yawDeg: [number, number];
  pitchDeg: [number, number];
  /** Frames kept (≤ keepPerBin). */
  kept: number;
  bestQuality: number | null;
}

export interface ScanCoverageSummary {
  bins: ScanBin[];
  coveredBins: number;
  totalBins: number;
  /** Percent of bins holding at least one frame. */
  coverage: number;
}

function binOf(edges: readonly number[], value: number): number {
  for (let i = 0; i < edges.length - 1; i++) {
    // The last bin includes its upper edge.
    if (value >= edges[i]! && (value < edges[i + 1]! || (i === edges.length - 2 && value === edges[i + 1]!))) return i;
  }
  return -1;
}

/** The pose label of a scan bin: frontal when it holds (0, 0), else by its centre like poseLabel. */
export function scanBinLabel(bin: Pick<ScanBin, 'yawDeg' | 'pitchDeg'>): string {
  const yaw = (bin.yawDeg[0] + bin.yawDeg[1]) / 2;
  const pitch = (bin.pitchDeg[0] + bin.pitchDeg[1]) / 2;
  const holdsZero = bin.yawDeg[0] <= 0 && bin.yawDeg[1] >= 0 && bin.pitchDeg[0] <= 0 && bin.pitchDeg[1] >= 0;
  if (holdsZero) return 'front';
  if (Math.abs(yaw) >= Math.abs(pitch)) return yaw > 0 ? 'left' : 'right';
  return pitch > 0 ? 'up' : 'down';
}

/**
 * The circular scan's coverage of a yaw × pitch grid: each bin keeps its best keepPerBin frames by
 * quality, so however many frames arrive, only bins × keepPerBin are ever embedded.
 */
export class ScanCoverage<T> {
  private readonly bins: { quality: number; item: T; pose: HeadPose }[][];
  private readonly yawBins: number;
  private readonly pitchBins: number;

  constructor(private readonly config: ScanGridConfig) {
    const ascending = (edges: readonly number[]) => edges.length >= 2 && edges.every((e, i) => i === 0 || e > edges[i - 1]!);
    if (!ascending(config.yawEdgesDeg) || !ascending(config.pitchEdgesDeg)) throw new RangeError('bin edges must be ascending, at least two');
    if (!Number.isInteger(config.keepPerBin) || config.keepPerBin < 1) throw new RangeError('keepPerBin must be a whole number ≥ 1');
    this.yawBins = config.yawEdgesDeg.length - 1;
    this.pitchBins = config.pitchEdgesDeg.length - 1;
    this.bins = Array.from({ length: this.yawBins * this.pitchBins }, () => []);
  }

  /** Offers a frame's face: kept when its bin has room or it beats the bin's worst; returns what it displaced. */
  offer(pose: HeadPose, quality: number, item: T): { kept: boolean; bin: number | null; evicted?: T } {
    const y = binOf(this.config.yawEdgesDeg, pose.yawDeg);
    const p = binOf(this.config.pitchEdgesDeg, pose.pitchDeg);
    if (y < 0 || p < 0) return { kept: false, bin: null };
    const index = p * this.yawBins + y;
    const bin = this.bins[index]!;
    if (bin.length < this.config.keepPerBin) {
      bin.push({ quality, item, pose });
      bin.sort((a, b) => b.quality - a.quality);
      return { kept: true, bin: index };
    }
    const worst = bin[bin.length - 1]!;
    if (quality <= worst.quality) return { kept: false, bin: index };
    bin[bin.length - 1] = { quality, item, pose };
    bin.sort((a, b) => b.quality - a.quality);
    return { kept: true, bin: index, evicted: worst.item };
  }

  private binRange(index: number): Pick<ScanBin, 'yawDeg' | 'pitchDeg'> {
    const y = index % this.yawBins;
    const p = Math.floor(index / this.yawBins);
    return {
      yawDeg: [this.config.yawEdgesDeg[y]!, this.config.yawEdgesDeg[y + 1]!],
      pitchDeg: [this.config.pitchEdgesDeg[p]!, this.config.pitchEdgesDeg[p + 1]!],
    };
  }

  /** Every kept frame with its bin's pose label, best bins first in grid order. */
  kept(): { item: T; quality: number; pose: HeadPose; label: string; bin: number }[] {
    return this.bins.flatMap((bin, index) => bin.map((e) => ({ ...e, label: scanBinLabel(this.binRange(index)), bin: index })));
  }

  summary(): ScanCoverageSummary {
    const bins = this.bins.map((bin, index) => ({ ...this.binRange(index), kept: bin.length, bestQuality: bin[0] ? Math.round(bin[0].quality * 1000) / 1000 : null }));
    const covered = bins.filter((b) => b.kept > 0).length;
    return { bins, coveredBins: covered, totalBins: bins.length, coverage: Math.round((100 * covered) / bins.length) };
  }
}
