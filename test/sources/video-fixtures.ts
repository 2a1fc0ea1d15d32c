import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectPath } from '../../src/config/paths.ts';

/**
 * Tests that read video through ffmpeg run wherever Debian's ffmpeg is installed (.ci/run installs
 * it). On a developer machine without it they are skipped with a warning; under CI they must run.
 */
export const FFMPEG_AVAILABLE = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;
export const SKIP_WITHOUT_FFMPEG = !FFMPEG_AVAILABLE && !process.env.CI;
if (SKIP_WITHOUT_FFMPEG) console.warn('ffmpeg is not installed: skipping the tests that read video (apt install ffmpeg to run them)');

const run = promisify(execFile);

/** A face-api demo photo (group photos; sample1 and sample3 show the same woman). */
export function demoPhoto(name: string): string {
  return projectPath(join('node_modules', '@vladmandic', 'face-api', 'demo', name));
}

export interface VideoSpec {
  /** A still photo shown for the whole clip. */
  photo: string;
  seconds: number;
  fps: number;
  width: number;
  height: number;
}

/**
 * Makes an MPEG-4 clip of a still photo with ffmpeg (the mpeg4 encoder is built into every
 * ffmpeg, no external codec library needed). Returns the file path.
 */
export async function makeVideo(dir: string, name: string, spec: VideoSpec): Promise<string> {
  const out = join(dir, name);
  await run('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-loop', '1', '-i', spec.photo,
    '-t', String(spec.seconds), '-r', String(spec.fps),
    '-vf', `scale=${spec.width}:${spec.height},format=yuv420p`,
    '-c:v', 'mpeg4', '-q:v', '5', out,
  ]);
  return out;
}

/** Polls `condition` every 20 ms; throws naming `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
