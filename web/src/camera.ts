/* The browser camera: getUserMedia with clear messages when it is denied or missing. */

export type CameraProblem = { kind: 'denied' | 'missing' | 'insecure' | 'busy' | 'other'; message: string };

export async function openCamera(constraints: MediaTrackConstraints = { width: { ideal: 1280 }, height: { ideal: 720 }, facingMode: 'user' }): Promise<MediaStream> {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw {
      kind: 'insecure',
      message: 'This browser gives no camera access here. Open Facegate over HTTPS (or on localhost) in a current browser.',
    } satisfies CameraProblem;
  }
  try {
    return await navigator.mediaDevices.getUserMedia({ video: constraints, audio: false });
  } catch (err) {
    const name = err instanceof DOMException ? err.name : '';
    if (name === 'NotAllowedError' || name === 'SecurityError') {
      throw { kind: 'denied', message: 'Camera access was denied. Allow the camera for this site in the browser’s address bar, then reload.' } satisfies CameraProblem;
    }
    if (name === 'NotFoundError' || name === 'OverconstrainedError' || name === 'DevicesNotFoundError') {
      throw { kind: 'missing', message: 'No camera was found. Connect a camera and reload this page.' } satisfies CameraProblem;
    }
    if (name === 'NotReadableError' || name === 'AbortError') {
      throw { kind: 'busy', message: 'The camera is in use by another program or could not start. Close the other program and reload.' } satisfies CameraProblem;
    }
    throw { kind: 'other', message: `The camera could not be opened (${name || String(err)}).` } satisfies CameraProblem;
  }
}

export function isCameraProblem(value: unknown): value is CameraProblem {
  return typeof value === 'object' && value !== null && 'kind' in value && 'message' in value;
}

/** One JPEG of the video's current frame, scaled so its longer side is at most maxSidePx. */
export function grabJpeg(video: HTMLVideoElement, canvas: HTMLCanvasElement, maxSidePx = 640, quality = 0.8): Promise<Blob | null> {
  const w = video.videoWidth;
  const h = video.videoHeight;
  if (!w || !h) return Promise.resolve(null);
  const scale = Math.min(1, maxSidePx / Math.max(w, h));
  canvas.width = Math.round(w * scale);
  canvas.height = Math.round(h * scale);
  const ctx = canvas.getContext('2d');
  if (!ctx) return Promise.resolve(null);
  ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
}
