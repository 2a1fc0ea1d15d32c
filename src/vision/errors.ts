import { AppError } from '../domain/errors.ts';

/** Errors the vision layer raises. Expected outcomes (no face, several faces) are results, not errors. */
export class VisionError extends AppError {
  constructor(code: string, message: string, status = VISION_ERROR_STATUS[code] ?? 422) {
    super(code, status, message);
    this.name = 'VisionError';
  }
}

/** HTTP status for each vision error code; the worker sends codes across threads, so statuses are looked up, not carried. */
const VISION_ERROR_STATUS: Record<string, number> = {
  invalid_image: 400,
  image_too_large: 413,
  vision_internal_error: 422,
  model_missing: 503,
  vision_worker_failed: 503,
  vision_overloaded: 503,
  vision_timeout: 504,
};

/** The input is not an image we accept: empty, truncated, not an image, an unsupported format. */
export class InvalidImageError extends VisionError {
  constructor(message: string) {
    super('invalid_image', message);
  }
}

/** The image is larger than the configured limits (bytes or pixels). */
export class ImageTooLargeError extends VisionError {
  constructor(message: string) {
    super('image_too_large', message);
  }
}

/** A model file the configured engine needs is not installed. */
export class ModelMissingError extends VisionError {
  constructor(readonly modelPath: string) {
    super('model_missing', `face model file not found: ${modelPath} (run "npm install" to fetch the models)`);
  }
}

/** A worker died or failed while processing a job. */
export class WorkerFailedError extends VisionError {
  constructor(message: string) {
    super('vision_worker_failed', message);
  }
}
