import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser } from 'playwright-core';
import sharp from 'sharp';
import { projectPath } from '../src/config/paths.ts';
import { FFMPEG_AVAILABLE } from '../test/sources/video-fixtures.ts';

/*
 * Debian's Chromium driven by playwright-core (Playwright's own browser download cannot work
 * here). .ci/run installs chromium; on a machine without it (or without ffmpeg, which makes the
 * fake camera's video) the e2e tests are skipped with a warning, except under CI.
 */

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_AVAILABLE = existsSync(CHROMIUM_PATH);
export const SKIP_E2E = (!CHROMIUM_AVAILABLE || !FFMPEG_AVAILABLE) && !process.env.CI;
if (SKIP_E2E) console.warn(`chromium (${CHROMIUM_PATH}) or ffmpeg is not installed: skipping the browser tests (apt install chromium ffmpeg to run them)`);

const run = promisify(execFile);

/** Builds the web UI from the current source (about 2 s), so the tests never run a stale web/dist. */
export async function buildWebUi(): Promise<void> {
  await run(process.execPath, [projectPath('scripts/build-web.mjs')]);
}

/** Chromium with a fake webcam that plays `video` (a .y4m file) in a loop, and auto-accepts the camera prompt. */
export function launchChromium(video?: string, options: { fakeCamera?: boolean } = {}): Promise<Browser> {
  const fakeCamera = options.fakeCamera ?? true;
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...(fakeCamera ? ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'] : []),
      ...(fakeCamera && video ? [`--use-file-for-fake-video-capture=${video}`] : []),
    ],
  });
}

/**
 * A .y4m clip for the fake webcam: the still JPEG centred on a 640×480 frame, `seconds` long.
 * Chromium loops it, so the camera shows the same face for as long as the test needs.
 */
export async function makeFakeCameraVideo(dir: string, name: string, jpeg: Buffer, seconds = 2, fps = 10): Promise<string> {
  const still = join(dir, `${name}.jpg`);
  await writeFile(still, await sharp(jpeg).resize(640, 480, { fit: 'contain', background: '#3a3f44' }).jpeg({ quality: 92 }).toBuffer());
  const out = join(dir, `${name}.y4m`);
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-loop', '1', '-i', still, '-t', String(seconds), '-r', String(fps), '-pix_fmt', 'yuv420p', '-f', 'yuv4mpegpipe', out]);
  return out;
}
