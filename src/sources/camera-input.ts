import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { AppError } from '../domain/errors.ts';

/** Where a camera's frames come from. 'push' cameras are fed by a client over WebSocket; the others are read by ffmpeg. */
export const CAMERA_KINDS = ['rtsp', 'mjpeg', 'v4l2', 'file', 'push'] as const;
export type CameraKind = (typeof CAMERA_KINDS)[number];

/** An input ffmpeg reads. */
export type FfmpegInput =
  | { kind: 'rtsp'; url: string }
  | { kind: 'mjpeg'; url: string }
  | { kind: 'v4l2'; device: string }
  | { kind: 'file'; path: string; loop: boolean };

export interface FfmpegOutputOptions {
  /** Frames per second at most (ffmpeg drops the others; it never duplicates frames); 0 = as the camera sends them. */
  maxFps: number;
  /** Frames wider than this are scaled down, keeping the aspect ratio. */
  maxWidthPx: number;
  /** ffmpeg's MJPEG quantiser, 2 (best) .. 31 (smallest). */
  jpegQuality: number;
}

const URL_PROTOCOLS: Record<'rtsp' | 'mjpeg', readonly string[]> = {
  rtsp: ['rtsp:', 'rtsps:'],
  mjpeg: ['http:', 'https:'],
};

function invalid(message: string): AppError {
  return new AppError('invalid_camera_source', 400, message);
}

/** Checks a camera URL: rtsp/rtsps for 'rtsp', http/https for 'mjpeg'; anything else (file:, concat:, pipes) is refused. */
export function checkCameraUrl(kind: 'rtsp' | 'mjpeg', url: string): string {
  if (!URL.canParse(url)) throw invalid(`the ${kind} camera URL is not a valid URL`);
  const parsed = new URL(url);
  if (!URL_PROTOCOLS[kind].includes(parsed.protocol)) {
    throw invalid(`a ${kind} camera URL must start with ${URL_PROTOCOLS[kind].map((p) => `${p}//`).join(' or ')}`);
  }
  if (!parsed.hostname) throw invalid(`the ${kind} camera URL has no host`);
  if (/[\s\0]/.test(url)) throw invalid(`the ${kind} camera URL contains whitespace or control characters`);
  return parsed.toString();
}

/** Checks a V4L2 device path: /dev/video<N> only. */
export function checkVideoDevice(device: string): string {
  if (!/^\/dev\/video\d{1,3}$/.test(device)) throw invalid('a v4l2 camera device must be /dev/video<N>');
  return device;
}

function isInside(root: string, target: string): boolean {
  const rel = relative(root, target);
  return rel === '' ? false : !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

/**
 * Resolves a video file path against the allowed roots: a relative path is taken under the first
 * root; the result, and its real path after symlinks, must lie inside one of the roots. The file
 * must exist. Returns the real path, so that what ffmpeg opens is what was checked.
 */
export function resolveVideoFile(path: string, allowedRoots: readonly string[]): string {
  if (allowedRoots.length === 0) throw invalid('file cameras are disabled: sources.allowedFileRoots is empty');
  if (path.includes('\0')) throw invalid('the video file path contains a NUL character');
  const roots = allowedRoots.map((r) => resolve(r));
  const candidate = isAbsolute(path) ? resolve(path) : resolve(roots[0]!, path);
  const inRoot = roots.some((root) => isInside(root, candidate));
  if (!inRoot) throw invalid(`the video file must lie under ${roots.join(' or ')}`);
  let real: string;
  try {
    real = realpathSync(candidate);
  } catch {
    throw invalid(`the video file ${path} does not exist`);
  }
  const realRoots = roots.map((root) => {
    try {
      return realpathSync(root);
    } catch {
      return root;
    }
  });
  if (!realRoots.some((root) => isInside(root, real))) throw invalid(`the video file must lie under ${roots.join(' or ')} (after following links)`);
  return real;
}

/** ffmpeg's arguments for one input: quiet, no stdin, MJPEG frames on stdout. */
export function ffmpegArgs(input: FfmpegInput, output: FfmpegOutputOptions): string[] {
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error'];
  switch (input.kind) {
    case 'rtsp':
      args.push('-rtsp_transport', 'tcp', '-i', input.url);
      break;
    case 'mjpeg':
      args.push('-i', input.url);
      break;
    case 'v4l2':
      args.push('-f', 'v4l2', '-i', input.device);
      break;
    case 'file':
      // -re: play the file at its own frame rate, as a camera would deliver it.
      args.push('-re', ...(input.loop ? ['-stream_loop', '-1'] : []), '-i', input.path);
      break;
  }
  const width = Math.max(2, Math.floor(output.maxWidthPx / 2) * 2);
  const filters: string[] = [];
  if (output.maxFps > 0) {
    // select keeps a frame once ~1/maxFps has passed since the last kept one: a slower camera is
    // never padded with duplicates (the fps filter would), and a faster one is thinned. The 0.9
    // lets a 30 fps camera capped at 10 give 10 fps rather than 7.5 (frame times are not exact).
    const minIntervalS = 0.9 / output.maxFps;
    filters.push(`select='isnan(prev_selected_t)+gte(t-prev_selected_t\\,${minIntervalS.toFixed(4)})'`);
  }
  filters.push(`scale=w='trunc(min(iw\\,${width})/2)*2':h=-2`);
  args.push(
    '-an',
    '-vf',
    filters.join(','),
    '-fps_mode',
    'passthrough',
    '-pix_fmt',
    'yuvj420p',
    '-c:v',
    'mjpeg',
    '-q:v',
    String(Math.round(Math.min(31, Math.max(2, output.jpegQuality)))),
    '-f',
    'image2pipe',
    'pipe:1',
  );
  return args;
}

/** A camera source as status shows it, without credentials in URLs. */
export function describeInput(input: FfmpegInput): string {
  switch (input.kind) {
    case 'rtsp':
    case 'mjpeg':
      return redactUrl(input.url);
    case 'v4l2':
      return input.device;
    case 'file':
      return input.path;
  }
}

/** The URL with any user name and password replaced by ***. */
export function redactUrl(url: string): string {
  if (!URL.canParse(url)) return url.replace(/\/\/[^@/]*@/, '//***@');
  const parsed = new URL(url);
  if (!parsed.username && !parsed.password) return url;
  parsed.username = '***';
  parsed.password = '';
  return parsed.toString();
}
