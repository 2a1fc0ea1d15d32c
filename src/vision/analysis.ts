import type { FollowState, FrameLocation, FramePlan } from '../domain/tracker.ts';
import type { DetectedFace, FaceQuality } from '../domain/types.ts';
import type { Embedding, VisionStage } from './face-engine.ts';

/** Which faces of an image to embed: embedding is the expensive step, so callers ask for what they need. */
export type EmbedSelection = 'all' | 'none' | 'largest';

export interface AnalyzeOptions {
  embed: EmbedSelection;
  /** Score liveness for every face (costs ≈12 CPU-ms a face). */
  liveness: boolean;
  /** Overrides the configured maximum number of faces. */
  maxFaces?: number;
  /** Look harder for small faces in large images (uploaded group photos); see DetectOptions. */
  findSmallFaces?: boolean;
  /** Head-pose estimator: 'fast' (landmark fit) for tracked camera frames; see DetectOptions. */
  pose?: 'accurate' | 'fast';
  /** Return each embedded face's aligned 112×112 crop as a JPEG (the template thumbnail), made in the worker. */
  alignedThumbnails?: boolean;
  /**
   * A camera frame's plan from its tracker (FaceTracker.planFrame): follow the tracked faces by
   * landmarks only, or detect (skipping the detector when a scene reference shows nothing changed).
   * The answer then says how the faces were found (AnalyzeResult.location) and carries each
   * detected face's follow state.
   */
  follow?: FramePlan;
  /**
   * Camera frames: served after interactive calls (REST recognition, uploads). A latest-frame
   * pipeline loses nothing by waiting (a newer frame replaces the old); a person at a REST call does.
   */
  background?: boolean;
}

/** One face as the pipeline reports it. */
export interface AnalyzedFace extends DetectedFace {
  quality: FaceQuality;
  /** 0..1, 1 = live; absent when not asked for. */
  liveness?: number;
  /** Present for the faces selected for embedding. */
  embedding?: Embedding;
  /** The aligned 112×112 face as JPEG bytes; present for embedded faces when alignedThumbnails was asked for. */
  alignedJpeg?: Uint8Array;
  /** With a follow plan: how to follow this face in the next frames (absent when the engine cannot follow). */
  follow?: FollowState;
}

/** Embeds faces already detected in this image (by an earlier analyze of the same frame). */
export interface EmbedFacesOptions {
  liveness: boolean;
  alignedThumbnails?: boolean;
  /** As AnalyzeOptions.background. */
  background?: boolean;
}

export interface EmbeddedFace {
  embedding: Embedding;
  liveness?: number;
  alignedJpeg?: Uint8Array;
}

export interface EmbedFacesResult {
  /** One entry per face asked for, in the same order. */
  faces: EmbeddedFace[];
  timingsMs: Partial<Record<VisionStage, number>>;
}

export interface AnalyzeResult {
  /** Size of the image the faces' coordinates refer to (after EXIF rotation and any downscale). */
  width: number;
  height: number;
  faces: AnalyzedFace[];
  /** Wall-clock milliseconds spent per stage inside the worker. */
  timingsMs: Partial<Record<VisionStage, number>>;
  /** With a follow plan: how the faces were found. */
  location?: FrameLocation;
}
