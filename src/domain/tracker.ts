/*
 * Follows faces across the frames of one camera. Each frame's detections are matched to the live
 * tracks by box overlap with a constant-velocity prediction (Hungarian assignment, so two faces
 * crossing keep their ids), helped by appearance when an embedding is present on both sides: an
 * embedding that clearly disagrees vetoes a match, and one that clearly agrees re-attaches a track
 * after a brief miss. Most frames carry no embedding — the point of tracking is that most frames
 * need detection only — so the tracker also decides WHEN a track is worth embedding
 * (`embeddingReason`), with the identity vote (track-identity.ts) saying whether it is settled.
 *
 * Pure and synchronous: the caller passes time in; nothing here reads a clock.
 */
import { boxIoU } from './geometry.ts';
import type { Box, HeadPose } from './types.ts';

/** One face found in a frame, as the tracker needs it. */
export interface TrackerDetection {
  box: Box;
  quality: { score: number; pass: boolean };
  pose: HeadPose;
  /** The face's embedding when this frame was embedded (L2-normalised); usually absent. */
  embedding?: Float32Array;
  /**
   * How to follow this face without the detector (see FramePlan); set on faces the detector placed.
   * A face that was itself followed carries the state it was followed with.
   */
  follow?: FollowState;
}

/** Where the landmarks sat in the detector's box: centroid as fractions of the box, RMS spread per box side, box aspect. */
export interface FollowAnchor {
  cx: number;
  cy: number;
  spread: number;
  aspect: number;
}

/** What the vision worker needs to follow a face between detector runs (made by the worker, kept here). */
export interface FollowState {
  /** Zero-mean unit-norm grey patch of the face box at the last detection (compared to tell the face is still there). */
  patch: Float32Array;
  anchor: FollowAnchor;
  /** Detector confidence at the last detection. */
  detectorScore: number;
}

/**
 * What the next frame needs: 'detect' runs the detector over the whole frame (with a scene
 * reference, the worker may skip it when the picture has not changed since a frame in which it
 * found nobody); 'follow' runs the landmark model only, on each track's predicted box.
 */
export type FramePlan =
  | { mode: 'detect'; sceneReference?: Uint8Array }
  | { mode: 'follow'; faces: { trackId: string; box: Box; follow: FollowState }[] };

/** How a frame's faces were found, as the worker reports it (see FramePlan). */
export interface FrameLocation {
  /** 'detected': the detector ran; 'followed': landmarks only; 'static': nothing changed, nobody there. */
  located: 'detected' | 'followed' | 'static';
  /** The frame's scene thumbnail when the detector ran (the next scene reference when it found nobody). */
  sceneThumbnail?: Uint8Array;
}

export interface FollowPolicy {
  /**
   * With faces tracked, run the detector at least every this many frames (new faces entering are
   * found then); 1 = every frame (following off).
   */
  detectEveryFrames: number;
  /** With nobody tracked and the scene unchanged, still run the detector every this many frames. */
  staticDetectEveryFrames: number;
}

/*
 * detectEveryFrames 8: at 30 fps a second face is found within ≈270 ms, inside the time-to-identity
 * budget, and the follow patch is refreshed from a detector box three to four times a second.
 * staticDetectEveryFrames 30: at most a second of an unchanged empty scene goes without a detector
 * look, a guard against a change the thumbnail is too coarse to see.
 */
export const DEFAULT_FOLLOW_POLICY: Readonly<FollowPolicy> = Object.freeze({ detectEveryFrames: 8, staticDetectEveryFrames: 30 });

export interface TrackerConfig {
  /** A detection continues a track only if its box overlaps the track's predicted box at least this much (IoU). */
  iouMatchMin: number;
  /**
   * When both a detection and a track have an embedding, a cosine below this vetoes the match however
   * well the boxes overlap (a different face stepped into the same place).
   */
  appearanceMinSimilarity: number;
  /** A detection whose embedding reaches this cosine re-attaches a track that is currently missing, without box overlap. */
  reattachMinSimilarity: number;
  /** A track not seen for this long has left. */
  leftAfterMs: number;
  /** Box-size-relative motion (box sides per second) at or under which a track counts as still. */
  stableMotionMaxPerS: number;
  /** A track still for this long is reported `stable`. */
  stableAfterMs: number;
  /** Most tracks alive at once; beyond it the longest-missing track is dropped, else new faces go untracked. */
  maxTracks: number;
  /** Motion is the least-squares velocity of the box over this recent window. */
  motionWindowMs: number;
  /** Prefix of track ids (ids are `${idPrefix}${n}`, n = 1, 2, … per tracker). */
  idPrefix: string;
}

/*
 * Defaults and why:
 * - iouMatchMin 0.3: one face in consecutive processed frames (≥ 5 fps) overlaps far more — a face
 *   moving half its width between frames still has IoU 0.33 before the velocity prediction helps —
 *   while two different faces seldom overlap that much unless one hides the other (SORT uses 0.3 too).
 * - appearanceMinSimilarity 0.3 / reattachMinSimilarity 0.5: on fr_feature (verify 0.4, search 0.5
 *   calibrated on photos taken years apart) views of one person within one scene should score well
 *   above both; the veto sits under the verification threshold so a poor view does not split a
 *   track, the re-attach needs a search-grade match because it overrides geometry. Other embedders: veto ≈ verify − 0.1,
 *   re-attach ≈ search threshold.
 * - leftAfterMs 2000: detectors lose a face for a few frames when the head turns or a hand passes,
 *   and a person at a kiosk glances down; 2 s bridges that, yet "left" still arrives promptly.
 * - stableMotionMaxPerS 0.25: the least-squares slope over 0.5 s averages detector jitter out (±1.5 px
 *   of jitter on a 120-px face at 30 fps scores < 0.1 in the tests), a head that sways while
 *   talking moves a fraction of its size per second, someone walking past whole box widths.
 * - stableAfterMs 1000: one second of standing still is a deliberate stop, not a pass-by.
 * - maxTracks 32: a door or kiosk camera sees a handful of faces; the cap bounds memory and the
 *   O(n³) assignment (32 × 32 is still microseconds) when a crowd fills the frame.
 * - motionWindowMs 500: long enough to average jitter, short enough that "stable" reacts within
 *   half a second of someone starting to move.
 */
export const DEFAULT_TRACKER_CONFIG: Readonly<TrackerConfig> = Object.freeze({
  iouMatchMin: 0.3,
  appearanceMinSimilarity: 0.3,
  reattachMinSimilarity: 0.5,
  leftAfterMs: 2000,
  stableMotionMaxPerS: 0.25,
  stableAfterMs: 1000,
  maxTracks: 32,
  motionWindowMs: 500,
  idPrefix: '',
});

/** A snapshot of one track (a copy: later updates do not change it). */
export interface TrackView {
  /** `${idPrefix}${n}`, n increasing per tracker (per camera). */
  id: string;
  /** The box where the face was last seen. */
  box: Box;
  firstSeenMs: number;
  lastSeenMs: number;
  /** Frames in which the track was matched. */
  ageFrames: number;
  /** Consecutive updates without a match (0 when matched in the latest update). */
  missedFrames: number;
  /** Speed of the box (centre and size) in box sides per second, least-squares over `motionWindowMs`. */
  motionScore: number;
  /** How long the track has been continuously at or under `stableMotionMaxPerS`, up to when it was last seen. */
  stableForMs: number;
  /** stableForMs ≥ stableAfterMs. */
  stable: boolean;
  /** Index of the detection this track matched in the latest update; null when it was missed. */
  detectionIndex: number | null;
  /** Quality score, pass and pose of the latest matched detection. */
  quality: number;
  qualityPass: boolean;
  pose: HeadPose;
  /** Best quality score seen on this track. */
  bestQuality: number;
  /** Time between the previous sighting and this one when the track was matched after a miss, else 0. */
  reacquiredAfterMs: number;
  /** Embeddings recorded for this track. */
  embeddings: number;
  lastEmbeddedMs: number | null;
  /** Best quality score among the embedded views. */
  bestEmbeddedQuality: number | null;
  /** Smallest off-axis angle, hypot(yaw, pitch) in degrees, among the embedded views. */
  bestEmbeddedOffAxisDeg: number | null;
}

export interface TrackerUpdate {
  /** Every live track, in id order: matched this frame or missing for less than leftAfterMs. */
  tracks: TrackView[];
  /** Ids of the tracks started by this update. */
  started: string[];
  /** Tracks that left in this update (each reported exactly once). */
  left: TrackView[];
  /** For each detection (by index), the id of the track it belongs to; null when it went untracked (maxTracks). */
  detectionTrackIds: (string | null)[];
}

export interface EmbeddingRecord {
  /** The id to use from now on: the track itself, or the missing track it was re-attached to. */
  trackId: string;
  /** Set when a just-started track turned out (by appearance) to be a missing one; this id is gone for good, never reported as left. */
  mergedTrackId?: string;
  /** Cosine to the track's previous embedding (or to the re-attached track's), when there was one. */
  similarityToTrack?: number;
}

const MOTION_SAMPLES = 16;
/** A missing track's box is extrapolated for at most this long; beyond it the prediction is a guess. */
const MAX_PREDICTION_MS = 500;
/** Costs at or above this mark infeasible pairs in the assignment. */
const INFEASIBLE = 1e6;

interface Track {
  id: string;
  box: Box;
  firstSeenMs: number;
  lastSeenMs: number;
  ageFrames: number;
  missedFrames: number;
  /** Ring of (t, centre x, centre y, side) samples. */
  samples: Float64Array;
  sampleCount: number;
  sampleNext: number;
  /** Velocity of centre x, centre y and side, px per ms. */
  vx: number;
  vy: number;
  vs: number;
  motionScore: number;
  stableSinceMs: number | null;
  detectionIndex: number | null;
  quality: number;
  qualityPass: boolean;
  pose: HeadPose;
  bestQuality: number;
  reacquiredAfterMs: number;
  embeddings: number;
  lastEmbeddedMs: number | null;
  lastEmbedding: Float32Array | null;
  bestEmbedding: Float32Array | null;
  bestEmbeddedQuality: number | null;
  bestEmbeddedOffAxisDeg: number | null;
  follow: FollowState | null;
}

/** The multi-face tracker of one camera. Not shared between cameras. */
export class FaceTracker {
  readonly config: Readonly<TrackerConfig>;
  private readonly live: Track[] = [];
  private nextId = 1;
  private nowMs = -Infinity;
  /** Frames planned since the last one planned with a full detector run. */
  private framesSinceDetect = Infinity;
  /** Thumbnail of the latest detector frame that found nobody, while nobody is tracked. */
  private sceneReference: Uint8Array | null = null;

  constructor(config: Partial<TrackerConfig> = {}) {
    const merged = { ...DEFAULT_TRACKER_CONFIG, ...config };
    checkConfig(merged);
    this.config = Object.freeze(merged);
  }

  /** Live tracks. */
  get size(): number {
    return this.live.length;
  }

  /**
   * Matches one frame's detections to the tracks. Time never runs backwards here: a timestamp
   * older than the previous one is treated as the previous one.
   */
  update(detections: readonly TrackerDetection[], timestampMs: number, location?: FrameLocation): TrackerUpdate {
    const now = this.advance(timestampMs);
    if (location) this.noteLocation(location, detections.length);
    for (const d of detections) checkDetection(d);
    const left = this.expire(now);

    const live = this.live;
    const detectionTrack: (Track | null)[] = new Array<Track | null>(detections.length).fill(null);
    const matchedTrack = new Uint8Array(live.length);
    if (live.length > 0 && detections.length > 0) {
      const pairs = this.assign(detections, now);
      for (let t = 0; t < pairs.length; t++) {
        const d = pairs[t]!;
        if (d < 0) continue;
        matchedTrack[t] = 1;
        detectionTrack[d] = live[t]!;
      }
    }
    for (let t = 0; t < live.length; t++) {
      if (matchedTrack[t]) continue;
      const track = live[t]!;
      track.missedFrames++;
      track.detectionIndex = null;
      track.reacquiredAfterMs = 0;
    }
    for (let d = 0; d < detections.length; d++) {
      const track = detectionTrack[d];
      if (track) this.observe(track, detections[d]!, d, now);
    }

    const started: string[] = [];
    const unmatched: number[] = [];
    for (let d = 0; d < detections.length; d++) if (!detectionTrack[d]) unmatched.push(d);
    if (unmatched.length > 0) {
      // Room first goes to the better views when not every new face fits.
      if (live.length + unmatched.length > this.config.maxTracks) {
        unmatched.sort((a, b) => detections[b]!.quality.score - detections[a]!.quality.score || a - b);
      }
      for (const d of unmatched) {
        if (live.length >= this.config.maxTracks && !this.evictMissing(left)) break;
        const track = this.start(detections[d]!, d, now);
        detectionTrack[d] = track;
        started.push(track.id);
      }
    }

    const detectionTrackIds = detectionTrack.map((t) => (t ? t.id : null));
    return { tracks: live.map((t) => this.view(t)), started, left, detectionTrackIds };
  }

  /**
   * What the next frame (arriving at timestampMs) needs: follow the tracks seen in the latest frame
   * by landmarks when each has a follow state and the detector ran recently enough; with nobody
   * seen, detect unless the scene is unchanged since the detector last found nobody; else detect. Call once per frame sent to the worker, then pass the worker's answer to
   * update(…, location). Does not move the tracker's clock.
   */
  planFrame(timestampMs: number, policy: FollowPolicy = DEFAULT_FOLLOW_POLICY): FramePlan {
    // Tracks missing from the latest frame are left to the next detector run (at most
    // detectEveryFrames away): where they are is not known, so there is nothing to follow.
    const seen = this.live.filter((t) => t.missedFrames === 0);
    if (seen.length > 0 && seen.every((t) => t.follow !== null) && this.framesSinceDetect + 1 < policy.detectEveryFrames) {
      this.framesSinceDetect++;
      const at = Math.max(timestampMs, this.nowMs);
      return { mode: 'follow', faces: seen.map((t) => ({ trackId: t.id, box: { ...predictBox(t, at) }, follow: t.follow! })) };
    }
    if (seen.length === 0 && this.sceneReference && this.framesSinceDetect + 1 < policy.staticDetectEveryFrames) {
      this.framesSinceDetect++;
      return { mode: 'detect', sceneReference: this.sceneReference };
    }
    this.framesSinceDetect = 0;
    return { mode: 'detect' };
  }

  private noteLocation(location: FrameLocation, faces: number): void {
    // A follow that failed in the worker ran the detector instead: that counts as a detector frame.
    if (location.located === 'detected') this.framesSinceDetect = 0;
    if (location.located === 'detected' && faces === 0 && location.sceneThumbnail) this.sceneReference = location.sceneThumbnail;
    else if (faces > 0) this.sceneReference = null;
  }

  /** Reports the tracks that left when no frame arrives at all (a stalled or stopped camera). */
  sweep(timestampMs: number): TrackView[] {
    return this.expire(this.advance(timestampMs));
  }

  /** Every live track ends now (a camera stop or a reset); returns them as left. */
  clear(): TrackView[] {
    const left = this.live.map((t) => this.view(t));
    this.live.length = 0;
    this.framesSinceDetect = Infinity;
    this.sceneReference = null;
    return left;
  }

  /** The track with this id, if live. */
  track(trackId: string): TrackView | undefined {
    const track = this.find(trackId);
    return track ? this.view(track) : undefined;
  }

  /** Live tracks, in id order. */
  tracks(): TrackView[] {
    return this.live.map((t) => this.view(t));
  }

  /**
   * Why this track's current view should be embedded now, or null when it need not be: see
   * `embeddingReason`. `settled` comes from the identity vote (TrackIdentityVote.isSettled).
   */
  embeddingReason(trackId: string, settled: boolean, policy: EmbeddingPolicy = DEFAULT_EMBEDDING_POLICY): EmbeddingReason | null {
    const track = this.find(trackId);
    if (!track || track.detectionIndex === null) return null;
    return embeddingReason(this.view(track), { quality: { score: track.quality, pass: track.qualityPass }, pose: track.pose }, this.nowMs, settled, policy);
  }

  /** embeddingReason(…) !== null. */
  needsEmbedding(trackId: string, settled: boolean, policy: EmbeddingPolicy = DEFAULT_EMBEDDING_POLICY): boolean {
    return this.embeddingReason(trackId, settled, policy) !== null;
  }

  /**
   * Records the embedding of a track's view (by default the view it matched in the latest update).
   * A just-started track whose first embedding matches a track that is currently missing — and was
   * never seen in the same frame as it — is merged into that track: the returned `trackId` is the
   * older id and `mergedTrackId` the id that disappears. Unknown ids return themselves unchanged.
   */
  recordEmbedding(
    trackId: string,
    embedding: Float32Array,
    timestampMs: number,
    view?: { qualityScore: number; pose: HeadPose },
  ): EmbeddingRecord {
    const track = this.find(trackId);
    if (!track) return { trackId };
    checkEmbedding(embedding);
    const now = Math.max(timestampMs, this.nowMs);
    const qualityScore = view?.qualityScore ?? track.quality;
    const pose = view?.pose ?? track.pose;

    if (track.embeddings === 0) {
      const lost = this.findReattachable(track, embedding);
      if (lost) {
        this.merge(lost.track, track);
        this.storeEmbedding(lost.track, embedding, qualityScore, pose, now);
        return { trackId: lost.track.id, mergedTrackId: trackId, similarityToTrack: lost.similarity };
      }
      this.storeEmbedding(track, embedding, qualityScore, pose, now);
      return { trackId };
    }
    const similarityToTrack = track.lastEmbedding ? cosine(track.lastEmbedding, embedding) : undefined;
    this.storeEmbedding(track, embedding, qualityScore, pose, now);
    return similarityToTrack === undefined ? { trackId } : { trackId, similarityToTrack };
  }

  private advance(timestampMs: number): number {
    if (!Number.isFinite(timestampMs)) throw new RangeError(`timestamp ${timestampMs} is not a number`);
    if (timestampMs > this.nowMs) this.nowMs = timestampMs;
    return this.nowMs;
  }

  private find(trackId: string): Track | undefined {
    for (const t of this.live) if (t.id === trackId) return t;
    return undefined;
  }

  private expire(now: number): TrackView[] {
    const left: TrackView[] = [];
    const live = this.live;
    let kept = 0;
    for (let i = 0; i < live.length; i++) {
      const t = live[i]!;
      if (now - t.lastSeenMs >= this.config.leftAfterMs) left.push(this.view(t));
      else live[kept++] = t;
    }
    live.length = kept;
    return left;
  }

  /** Drops the longest-missing track to make room; false when every track was seen in this frame. */
  private evictMissing(left: TrackView[]): boolean {
    let victim = -1;
    for (let i = 0; i < this.live.length; i++) {
      const t = this.live[i]!;
      if (t.missedFrames === 0) continue;
      if (victim < 0 || t.lastSeenMs < this.live[victim]!.lastSeenMs) victim = i;
    }
    if (victim < 0) return false;
    left.push(this.view(this.live[victim]!));
    this.live.splice(victim, 1);
    return true;
  }

  /** For each live track (by index), the detection index it takes, or −1. */
  private assign(detections: readonly TrackerDetection[], now: number): Int32Array {
    const live = this.live;
    const rows = live.length;
    const cols = detections.length;
    const cost = new Float64Array(rows * cols);
    const { iouMatchMin, appearanceMinSimilarity, reattachMinSimilarity } = this.config;
    for (let t = 0; t < rows; t++) {
      const track = live[t]!;
      const predicted = predictBox(track, now);
      const trackEmbedded = track.lastEmbedding !== null;
      for (let d = 0; d < cols; d++) {
        const det = detections[d]!;
        const iou = boxIoU(predicted, det.box);
        let score = -1;
        if (trackEmbedded && det.embedding) {
          const similarity = this.appearance(track, det.embedding);
          if (similarity >= appearanceMinSimilarity) {
            if (iou >= iouMatchMin || (track.missedFrames > 0 && similarity >= reattachMinSimilarity)) score = iou + similarity;
          }
        } else if (iou >= iouMatchMin) {
          score = iou;
        }
        // Cost 2 − score ≥ 0; infeasible pairs are left to the assignment to avoid.
        cost[t * cols + d] = score < 0 ? INFEASIBLE : 2 - score;
      }
    }
    const assignment = uncontestedAssignment(cost, rows, cols) ?? minCostAssignment(cost, rows, cols);
    for (let t = 0; t < rows; t++) {
      const d = assignment[t]!;
      if (d >= 0 && cost[t * cols + d]! >= INFEASIBLE) assignment[t] = -1;
    }
    return assignment;
  }

  private appearance(track: Track, embedding: Float32Array): number {
    let similarity = cosine(track.lastEmbedding!, embedding);
    if (track.bestEmbedding && track.bestEmbedding !== track.lastEmbedding) similarity = Math.max(similarity, cosine(track.bestEmbedding, embedding));
    return similarity;
  }

  private start(det: TrackerDetection, index: number, now: number): Track {
    const track: Track = {
      id: `${this.config.idPrefix}${this.nextId++}`,
      box: { ...det.box },
      firstSeenMs: now,
      lastSeenMs: now,
      ageFrames: 1,
      missedFrames: 0,
      samples: new Float64Array(MOTION_SAMPLES * 4),
      sampleCount: 0,
      sampleNext: 0,
      vx: 0,
      vy: 0,
      vs: 0,
      motionScore: 0,
      // Nothing is known of its motion yet: still until shown otherwise, from now on.
      stableSinceMs: now,
      detectionIndex: index,
      quality: det.quality.score,
      qualityPass: det.quality.pass,
      pose: { ...det.pose },
      bestQuality: det.quality.score,
      reacquiredAfterMs: 0,
      embeddings: 0,
      lastEmbeddedMs: null,
      lastEmbedding: null,
      bestEmbedding: null,
      bestEmbeddedQuality: null,
      bestEmbeddedOffAxisDeg: null,
      follow: det.follow ?? null,
    };
    addSample(track, now, det.box);
    this.live.push(track);
    if (det.embedding) this.storeEmbedding(track, det.embedding, det.quality.score, det.pose, now);
    return track;
  }

  private observe(track: Track, det: TrackerDetection, index: number, now: number): void {
    track.reacquiredAfterMs = track.missedFrames > 0 ? now - track.lastSeenMs : 0;
    track.box = { ...det.box };
    track.lastSeenMs = now;
    track.ageFrames++;
    track.missedFrames = 0;
    track.detectionIndex = index;
    track.quality = det.quality.score;
    track.qualityPass = det.quality.pass;
    track.pose = { ...det.pose };
    // A detection without a follow state (an engine that cannot follow) stops following this track.
    track.follow = det.follow ?? null;
    if (det.quality.score > track.bestQuality) track.bestQuality = det.quality.score;
    addSample(track, now, det.box);
    this.updateMotion(track, now);
    if (det.embedding) this.storeEmbedding(track, det.embedding, det.quality.score, det.pose, now);
  }

  private updateMotion(track: Track, now: number): void {
    estimateVelocity(track, now - this.config.motionWindowMs);
    const side = Math.sqrt(track.box.width * track.box.height);
    track.motionScore = (Math.hypot(track.vx, track.vy, track.vs) * 1000) / side;
    if (track.motionScore <= this.config.stableMotionMaxPerS) track.stableSinceMs ??= now;
    else track.stableSinceMs = null;
  }

  private storeEmbedding(track: Track, embedding: Float32Array, qualityScore: number, pose: HeadPose, now: number): void {
    const copy = Float32Array.from(embedding);
    track.lastEmbedding = copy;
    if (track.bestEmbeddedQuality === null || qualityScore > track.bestEmbeddedQuality) {
      track.bestEmbedding = copy;
      track.bestEmbeddedQuality = qualityScore;
    }
    const offAxis = offAxisDeg(pose);
    if (track.bestEmbeddedOffAxisDeg === null || offAxis < track.bestEmbeddedOffAxisDeg) track.bestEmbeddedOffAxisDeg = offAxis;
    track.embeddings++;
    track.lastEmbeddedMs = now;
  }

  private findReattachable(fresh: Track, embedding: Float32Array): { track: Track; similarity: number } | undefined {
    let best: Track | undefined;
    let bestSimilarity = -Infinity;
    for (const t of this.live) {
      // Only a track that went missing before this one appeared can be the same face.
      if (t === fresh || t.missedFrames === 0 || t.lastSeenMs >= fresh.firstSeenMs || !t.lastEmbedding) continue;
      const similarity = this.appearance(t, embedding);
      if (similarity >= this.config.reattachMinSimilarity && similarity > bestSimilarity) {
        best = t;
        bestSimilarity = similarity;
      }
    }
    return best ? { track: best, similarity: bestSimilarity } : undefined;
  }

  /** The older track continues with the fresh one's sightings; the fresh one is dropped. */
  private merge(older: Track, fresh: Track): void {
    older.reacquiredAfterMs = fresh.firstSeenMs - older.lastSeenMs;
    older.box = fresh.box;
    older.lastSeenMs = fresh.lastSeenMs;
    older.ageFrames += fresh.ageFrames;
    older.missedFrames = fresh.missedFrames;
    older.detectionIndex = fresh.detectionIndex;
    older.quality = fresh.quality;
    older.qualityPass = fresh.qualityPass;
    older.pose = fresh.pose;
    older.bestQuality = Math.max(older.bestQuality, fresh.bestQuality);
    // Motion across the gap says nothing about how the face moves now.
    older.samples = fresh.samples;
    older.sampleCount = fresh.sampleCount;
    older.sampleNext = fresh.sampleNext;
    older.vx = fresh.vx;
    older.vy = fresh.vy;
    older.vs = fresh.vs;
    older.motionScore = fresh.motionScore;
    older.stableSinceMs = fresh.stableSinceMs;
    this.live.splice(this.live.indexOf(fresh), 1);
  }

  private view(t: Track): TrackView {
    const stableForMs = t.stableSinceMs === null ? 0 : t.lastSeenMs - t.stableSinceMs;
    return {
      id: t.id,
      box: { ...t.box },
      firstSeenMs: t.firstSeenMs,
      lastSeenMs: t.lastSeenMs,
      ageFrames: t.ageFrames,
      missedFrames: t.missedFrames,
      motionScore: t.motionScore,
      stableForMs,
      stable: stableForMs >= this.config.stableAfterMs,
      detectionIndex: t.detectionIndex,
      quality: t.quality,
      qualityPass: t.qualityPass,
      pose: { ...t.pose },
      bestQuality: t.bestQuality,
      reacquiredAfterMs: t.reacquiredAfterMs,
      embeddings: t.embeddings,
      lastEmbeddedMs: t.lastEmbeddedMs,
      bestEmbeddedQuality: t.bestEmbeddedQuality,
      bestEmbeddedOffAxisDeg: t.bestEmbeddedOffAxisDeg,
    };
  }
}

function addSample(track: Track, now: number, box: Box): void {
  const i = track.sampleNext * 4;
  track.samples[i] = now;
  track.samples[i + 1] = box.x + box.width / 2;
  track.samples[i + 2] = box.y + box.height / 2;
  track.samples[i + 3] = Math.sqrt(box.width * box.height);
  track.sampleNext = (track.sampleNext + 1) % MOTION_SAMPLES;
  if (track.sampleCount < MOTION_SAMPLES) track.sampleCount++;
}

/**
 * Least-squares slope of centre and size over the samples since `windowStartMs` — always at least
 * the previous sample, so slow frame rates still measure motion. Jitter of a still face averages
 * out in the slope, where frame-to-frame differences would amplify it by the frame rate.
 */
function estimateVelocity(track: Track, windowStartMs: number): void {
  const s = track.samples;
  const newest = (track.sampleNext + MOTION_SAMPLES - 1) % MOTION_SAMPLES;
  const t0 = s[newest * 4]!;
  let n = 0;
  let st = 0;
  let sx = 0;
  let sy = 0;
  let ss = 0;
  let stt = 0;
  let stx = 0;
  let sty = 0;
  let sts = 0;
  for (let k = 0; k < track.sampleCount; k++) {
    const i = ((newest - k + MOTION_SAMPLES) % MOTION_SAMPLES) * 4;
    const time = s[i]!;
    if (k >= 2 && time < windowStartMs) break;
    const dt = time - t0;
    n++;
    st += dt;
    sx += s[i + 1]!;
    sy += s[i + 2]!;
    ss += s[i + 3]!;
    stt += dt * dt;
    stx += dt * s[i + 1]!;
    sty += dt * s[i + 2]!;
    sts += dt * s[i + 3]!;
  }
  const denominator = n * stt - st * st;
  if (n < 2 || denominator <= 0) {
    track.vx = track.vy = track.vs = 0;
    return;
  }
  track.vx = (n * stx - st * sx) / denominator;
  track.vy = (n * sty - st * sy) / denominator;
  track.vs = (n * sts - st * ss) / denominator;
}

/**
 * The usual frame: every track overlaps at most one detection and every detection at most one
 * track, so there is nothing to optimise. Null when some pair is contested.
 */
function uncontestedAssignment(cost: Float64Array, rows: number, cols: number): Int32Array | null {
  const result = new Int32Array(rows).fill(-1);
  const columnTaken = new Uint8Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if (cost[r * cols + c]! >= INFEASIBLE) continue;
      if (result[r] !== -1 || columnTaken[c]) return null;
      result[r] = c;
      columnTaken[c] = 1;
    }
  }
  return result;
}

/** Where the track's box should be now, moving at its velocity (for at most MAX_PREDICTION_MS). */
function predictBox(track: Track, now: number): Box {
  const dt = Math.min(now - track.lastSeenMs, MAX_PREDICTION_MS);
  const b = track.box;
  if (dt <= 0 || (track.vx === 0 && track.vy === 0 && track.vs === 0)) return b;
  const side = Math.sqrt(b.width * b.height);
  const scale = Math.max(0.5, (side + track.vs * dt) / side);
  const width = b.width * scale;
  const height = b.height * scale;
  const cx = b.x + b.width / 2 + track.vx * dt;
  const cy = b.y + b.height / 2 + track.vy * dt;
  return { x: cx - width / 2, y: cy - height / 2, width, height };
}

/** hypot(yaw, pitch): how far the face is turned from frontal, in degrees. */
export function offAxisDeg(pose: HeadPose): number {
  return Math.hypot(pose.yawDeg, pose.pitchDeg);
}

/** Cosine similarity of two embeddings of the same length. */
export function cosine(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new RangeError(`embeddings of different lengths (${a.length}, ${b.length}) cannot be compared`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

/**
 * Minimum-cost assignment of rows to columns (Hungarian method with potentials, O(n²m)). `cost` is
 * row-major rows × cols. Returns, per row, its column or −1; every row is assigned when rows ≤ cols,
 * every column when cols < rows.
 */
export function minCostAssignment(cost: Float64Array, rows: number, cols: number): Int32Array {
  if (cost.length !== rows * cols) throw new RangeError(`cost has ${cost.length} entries, expected ${rows}×${cols}`);
  const result = new Int32Array(rows).fill(-1);
  if (rows === 0 || cols === 0) return result;
  // The method needs n ≤ m: solve the transpose when there are more rows than columns.
  const transposed = rows > cols;
  const n = transposed ? cols : rows;
  const m = transposed ? rows : cols;
  let a = cost;
  if (transposed) {
    a = new Float64Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) a[c * rows + r] = cost[r * cols + c]!;
  }
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  const p = new Int32Array(m + 1);
  const way = new Int32Array(m + 1);
  const minv = new Float64Array(m + 1);
  const used = new Uint8Array(m + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = p[j0]!;
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const reduced = a[(i0 - 1) * m + j - 1]! - u[i0]! - v[j]!;
        if (reduced < minv[j]!) {
          minv[j] = reduced;
          way[j] = j0;
        }
        if (minv[j]! < delta) {
          delta = minv[j]!;
          j1 = j;
        }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          const row = p[j]!;
          u[row] = u[row]! + delta;
          v[j] = v[j]! - delta;
        } else {
          minv[j] = minv[j]! - delta;
        }
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0]!;
      p[j0] = p[j1]!;
      j0 = j1;
    } while (j0 !== 0);
  }
  for (let j = 1; j <= m; j++) {
    const i = p[j]!;
    if (i === 0) continue;
    if (transposed) result[j - 1] = i - 1;
    else result[i - 1] = j - 1;
  }
  return result;
}

/** When a track's view is worth an embedding (the expensive step), and when not. */
export interface EmbeddingPolicy {
  /** An unsettled track is re-embedded at most this often. */
  reembedIntervalMs: number;
  /** A settled track is re-embedded this often to catch a person swap. */
  settledReembedIntervalMs: number;
  /** A view whose quality score beats the best embedded view by this much is a better view. */
  betterViewMargin: number;
  /** A view this many degrees more frontal (hypot(yaw, pitch)) than the most frontal embedded view is a better view. */
  frontalGainDeg: number;
  /** A track matched again after missing for at least this long is re-embedded to check it is the same face. */
  verifyAfterGapMs: number;
  /** Two embeddings of one track (other than its first) are at least this far apart. */
  minIntervalMs: number;
  /** A settled track with this many embeddings gets no more. */
  maxEmbeddingsPerTrack: number;
}

/*
 * Defaults and why (fr_feature costs ≈ 76 CPU-ms per embedding here, detection + landmarks ≈ 20):
 * - reembedIntervalMs 250: a track with no clear identity yet gets up to 4 embeddings a second, so
 *   a 3-vote decision lands within ≈ 0.6 s of a face appearing, at ≈ 0.3 CPU-s/s per such face;
 * - settledReembedIntervalMs 2000: one check every 2 s costs ≈ 4 % of a core per face and notices
 *   someone else in front of a kiosk within a few seconds;
 * - betterViewMargin 0.15: small frame-to-frame changes of a still face's quality are not a better
 *   view; 0.15 on the 0..1 quality score is (e.g. a face half again as large below the size knee,
 *   or a turn from near the pose limit towards frontal);
 * - frontalGainDeg 10: embeddings change little within ±10° and noticeably beyond it, and a view
 *   10° more frontal is one a person would call "turned towards the camera";
 * - verifyAfterGapMs 500: a face lost for half a second may be a different person at the same spot;
 * - minIntervalMs 100: quality can climb a little every frame; this stops a burst of "better views";
 * - maxEmbeddingsPerTrack 20: bounds the work spent on a face whose identity is already decided
 *   (≈ 40 s of 2-s checks), however long it stays.
 */
export const DEFAULT_EMBEDDING_POLICY: Readonly<EmbeddingPolicy> = Object.freeze({
  reembedIntervalMs: 250,
  settledReembedIntervalMs: 2000,
  betterViewMargin: 0.15,
  frontalGainDeg: 10,
  verifyAfterGapMs: 500,
  minIntervalMs: 100,
  maxEmbeddingsPerTrack: 20,
});

/**
 * - new: the track has no embedding yet;
 * - better_view: clearly higher quality, or clearly more frontal without being clearly worse;
 * - reacquired: matched again after a gap (the same face, or someone else at the same spot?);
 * - unsettled: the identity vote is not settled and reembedIntervalMs passed;
 * - recheck: settled, and settledReembedIntervalMs passed.
 */
export type EmbeddingReason = 'new' | 'better_view' | 'reacquired' | 'unsettled' | 'recheck';

/**
 * Why `track`'s current view (quality, pose) should be embedded at `nowMs`, or null. A view that
 * fails the quality checks is never embedded: its identity decision would be "low quality" whatever
 * the gallery holds. A settled track stops at maxEmbeddingsPerTrack.
 */
export function embeddingReason(
  track: Pick<TrackView, 'embeddings' | 'lastEmbeddedMs' | 'bestEmbeddedQuality' | 'bestEmbeddedOffAxisDeg' | 'reacquiredAfterMs'>,
  view: { quality: { score: number; pass: boolean }; pose: HeadPose },
  nowMs: number,
  settled: boolean,
  policy: EmbeddingPolicy = DEFAULT_EMBEDDING_POLICY,
): EmbeddingReason | null {
  if (!view.quality.pass) return null;
  if (track.embeddings === 0 || track.lastEmbeddedMs === null) return 'new';
  if (settled && track.embeddings >= policy.maxEmbeddingsPerTrack) return null;
  const sinceLastMs = nowMs - track.lastEmbeddedMs;
  if (sinceLastMs < policy.minIntervalMs) return null;
  const bestQuality = track.bestEmbeddedQuality ?? -Infinity;
  if (view.quality.score >= bestQuality + policy.betterViewMargin) return 'better_view';
  if (
    track.bestEmbeddedOffAxisDeg !== null &&
    offAxisDeg(view.pose) <= track.bestEmbeddedOffAxisDeg - policy.frontalGainDeg &&
    view.quality.score > bestQuality - policy.betterViewMargin
  ) {
    return 'better_view';
  }
  if (track.reacquiredAfterMs >= policy.verifyAfterGapMs) return 'reacquired';
  if (!settled && sinceLastMs >= policy.reembedIntervalMs) return 'unsettled';
  if (settled && sinceLastMs >= policy.settledReembedIntervalMs) return 'recheck';
  return null;
}

/** embeddingReason(…) !== null. */
export function needsEmbedding(
  track: Pick<TrackView, 'embeddings' | 'lastEmbeddedMs' | 'bestEmbeddedQuality' | 'bestEmbeddedOffAxisDeg' | 'reacquiredAfterMs'>,
  view: { quality: { score: number; pass: boolean }; pose: HeadPose },
  nowMs: number,
  settled: boolean,
  policy: EmbeddingPolicy = DEFAULT_EMBEDDING_POLICY,
): boolean {
  return embeddingReason(track, view, nowMs, settled, policy) !== null;
}

function checkConfig(c: TrackerConfig): void {
  const positive = (name: keyof TrackerConfig, value: number) => {
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`tracker ${name} must be a positive number, got ${value}`);
  };
  if (!(c.iouMatchMin > 0 && c.iouMatchMin <= 1)) throw new RangeError(`tracker iouMatchMin must be in (0, 1], got ${c.iouMatchMin}`);
  for (const name of ['appearanceMinSimilarity', 'reattachMinSimilarity'] as const) {
    if (!(c[name] >= -1 && c[name] <= 1)) throw new RangeError(`tracker ${name} must be a cosine in [-1, 1], got ${c[name]}`);
  }
  positive('leftAfterMs', c.leftAfterMs);
  positive('motionWindowMs', c.motionWindowMs);
  if (!(c.stableMotionMaxPerS >= 0)) throw new RangeError(`tracker stableMotionMaxPerS must be ≥ 0, got ${c.stableMotionMaxPerS}`);
  if (!(c.stableAfterMs >= 0)) throw new RangeError(`tracker stableAfterMs must be ≥ 0, got ${c.stableAfterMs}`);
  if (!Number.isInteger(c.maxTracks) || c.maxTracks < 1) throw new RangeError(`tracker maxTracks must be a whole number ≥ 1, got ${c.maxTracks}`);
}

function checkDetection(d: TrackerDetection): void {
  const { x, y, width, height } = d.box;
  if (!Number.isFinite(x) || !Number.isFinite(y) || !(width > 0) || !(height > 0) || !Number.isFinite(width) || !Number.isFinite(height)) {
    throw new RangeError(`detection box ${JSON.stringify(d.box)} is not a box of positive size`);
  }
  if (!Number.isFinite(d.quality.score)) throw new RangeError(`detection quality score ${d.quality.score} is not a number`);
  if (d.embedding) checkEmbedding(d.embedding);
}

function checkEmbedding(embedding: Float32Array): void {
  if (embedding.length === 0) throw new RangeError('an embedding cannot be empty');
}
