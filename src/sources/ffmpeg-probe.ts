import { execFile } from 'node:child_process';

/** Shown wherever an ffmpeg camera cannot run because ffmpeg is absent. */
export const FFMPEG_MISSING_MESSAGE = "ffmpeg is not installed: install Debian's ffmpeg to read RTSP/HTTP/V4L2/file cameras";

export type FfmpegProbe = { ok: true; version: string } | { ok: false; message: string };

const found = new Map<string, string>();

/**
 * Runs `<ffmpegPath> -version`. A success is remembered per path; a failure is not, so that
 * installing ffmpeg while the server runs makes the next camera start work.
 */
export async function probeFfmpeg(ffmpegPath: string, timeoutMs = 5000): Promise<FfmpegProbe> {
  const known = found.get(ffmpegPath);
  if (known !== undefined) return { ok: true, version: known };
  return new Promise((resolve) => {
    execFile(ffmpegPath, ['-hide_banner', '-version'], { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === 'ENOENT' ? `${ffmpegPath} not found` : code === 'EACCES' ? `${ffmpegPath} is not executable` : `${ffmpegPath} -version failed`;
        resolve({ ok: false, message: `${FFMPEG_MISSING_MESSAGE} (${why})` });
        return;
      }
      const version = /ffmpeg version (\S+)/.exec(stdout)?.[1] ?? 'unknown';
      found.set(ffmpegPath, version);
      resolve({ ok: true, version });
    });
  });
}
