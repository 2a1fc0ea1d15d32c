/**
 * Errors the vision layer raises. Each has a stable code; the API maps them to 4xx answers.
 * Expected outcomes (no face, several faces) are results, not errors.
 */
export class VisionError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'VisionError';
  }
}

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
