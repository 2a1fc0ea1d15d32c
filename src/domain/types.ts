/** Shared value types of the face pipeline. Pure data: no I/O, no classes. */

/** A point in image pixels; x grows to the right, y grows downwards. */
export interface Point {
  x: number;
  y: number;
}

/** An axis-aligned box in image pixels, from its top-left corner. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * Head pose in degrees. One sign convention everywhere in Facegate:
 * - yawDeg > 0: the subject turns to their own left (the face points towards the image's right);
 * - pitchDeg > 0: the subject looks up;
 * - rollDeg > 0: the head tilts towards the subject's own left shoulder (the eye line turns
 *   clockwise in the image).
 * A frontal face is (0, 0, 0). A horizontal flip of the image negates yaw and roll.
 */
export interface HeadPose {
  yawDeg: number;
  pitchDeg: number;
  rollDeg: number;
}

/**
 * The five alignment points in the ArcFace template order: the eye on the image's left
 * (the subject's right eye), the eye on the image's right, the nose tip, the mouth corner
 * on the image's left, the mouth corner on the image's right.
 */
export type Landmarks5 = [Point, Point, Point, Point, Point];

/** A decoded image: 8-bit RGB, interleaved, row-major, no padding (length = width × height × 3). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** What a face detector and landmarker find for one face. */
export interface DetectedFace {
  box: Box;
  /** Detector confidence, 0..1. */
  score: number;
  landmarks5: Landmarks5;
  /** The landmarker's full point set where it has one (68 points for the ONNX route, 468 for Human's mesh). */
  landmarks?: Point[];
  pose: HeadPose;
}

/** Pixel statistics of a face crop that quality is judged on. */
export interface FaceImageStats {
  /** Variance of the Laplacian of the grey face crop, normalised to a 112-px face; higher = sharper. */
  sharpness: number;
  /** Mean grey level of the face crop, 0..255. */
  brightness: number;
  /** Standard deviation of the grey level of the face crop, 0..255. */
  contrast: number;
}

export type QualityCheckName = 'size' | 'sharpness' | 'brightness' | 'contrast' | 'pose';

export interface QualityCheck {
  name: QualityCheckName;
  value: number;
  pass: boolean;
  /** Why it failed, in words a user can act on; absent when it passed. */
  reason?: string;
}

export interface FaceQuality {
  /** 0..1, higher is better; used to choose the better of two views of a face. */
  score: number;
  pass: boolean;
  /** Smaller side of the face box, in pixels. */
  sizePx: number;
  checks: QualityCheck[];
}
