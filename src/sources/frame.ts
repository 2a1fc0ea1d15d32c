/**
 * The contract between frame sources (a browser streaming over WebSocket, an ffmpeg camera) and
 * the camera pipeline. Sources offer frames; the pipeline keeps only the newest pending frame per
 * camera (latest frame wins), so memory stays flat however fast frames arrive.
 */

/** One encoded video frame from a camera. */
export interface Frame {
  cameraId: string;
  /** Increasing per camera, assigned by the source. */
  seq: number;
  /** When the server received (or ffmpeg produced) the frame, epoch ms. */
  receivedAtMs: number;
  /** The client's own timestamp, echoed back in results (seed 003's `timestamp`). */
  clientTimestamp?: number;
  /** The client's frame id, echoed back in results (seed 003's `frame_id`). */
  frameId?: string | number;
  /** The encoded image (JPEG from browsers and ffmpeg). */
  bytes: Uint8Array;
}

/** Where sources put frames. Never blocks: a frame that cannot be processed in time is dropped and counted. */
export interface FrameSink {
  offer(frame: Frame): void;
}

/** One face in a processed frame, as seed 003's `recognition_result` carries it (plus pose). */
export interface RecognitionResultFace {
  track_id: string;
  person_id: string | null;
  name: string | null;
  /** Similarity of the identity decision (0..1); for an unknown face, the best similarity seen. */
  confidence: number;
  /** [x, y, width, height] in the frame's pixels. */
  bbox: [number, number, number, number];
  is_unknown: boolean;
  /** Quality score 0..1 of this face in this frame. */
  quality: number;
  /** Liveness 0..1 (1 = live) when measured for this track, else null. */
  liveness: number | null;
  /** Why the face is unknown, when it is (no_face, low_quality, below_threshold, ambiguous, spoof_suspected, pending). */
  reason?: string;
  pose?: { yaw: number; pitch: number; roll: number };
}

/** What the server answers for each processed frame of a stream. */
export interface RecognitionResultMessage {
  type: 'recognition_result';
  camera_id: string;
  frame_id: string | number | null;
  faces: RecognitionResultFace[];
  /** The client's timestamp when it sent one, else the server's receive time (epoch ms). */
  timestamp: number;
  /** Frame size the boxes refer to (0 when the frame could not be decoded). */
  width: number;
  height: number;
  /** Set when this frame could not be processed (a corrupt JPEG…): faces is empty, the stream goes on. */
  error?: { code: string; message: string };
}

/** The pipeline as sources and stream endpoints see it. */
export interface FramePipeline extends FrameSink {
  /** Results of processed frames of one camera; returns the unsubscribe function. */
  onResult(cameraId: string, listener: (result: RecognitionResultMessage) => void): () => void;
}
