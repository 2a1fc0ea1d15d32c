import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FfmpegSource, type SourceState } from '../../src/sources/ffmpeg-source.ts';
import type { Frame, FrameSink } from '../../src/sources/frame.ts';
import { SKIP_WITHOUT_FFMPEG, demoPhoto, makeVideo, waitFor } from '../sources/video-fixtures.ts';

class CollectingSink implements FrameSink {
  readonly frames: Frame[] = [];
  offer(frame: Frame): void {
    this.frames.push(frame);
  }
}

/* ffmpeg killed in the middle of a stream (a crash, the OOM killer): a clear error, then it comes back by itself. */
describe.skipIf(SKIP_WITHOUT_FFMPEG)('camera faults: ffmpeg dies mid-stream', () => {
  const dir = mkdtempSync(join(tmpdir(), 'facegate-camfault-'));
  let video: string;
  beforeAll(async () => {
    video = await makeVideo(dir, 'loop.mp4', { photo: demoPhoto('sample1.jpg'), seconds: 1, fps: 10, width: 320, height: 240 });
  }, 30_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports the failure with its cause and reconnects with a new ffmpeg; frames flow again', async () => {
    const sink = new CollectingSink();
    const states: SourceState[] = [];
    const source = new FfmpegSource({
      cameraId: 'cam-fault',
      input: { kind: 'file', path: video, loop: true },
      sink,
      output: { maxFps: 30, maxWidthPx: 640, jpegQuality: 5 },
      ffmpegPath: 'ffmpeg',
      maxFrameBytes: 5 * 1024 * 1024,
      reconnect: { initialDelayMs: 100, maxDelayMs: 400, maxAttempts: 0 },
      stallTimeoutMs: 10_000,
      stopTimeoutMs: 2000,
      onStateChange: (status) => states.push(status.state),
    });
    try {
      await source.start();
      await waitFor(() => sink.frames.length > 5, 10_000, 'frames');
      const firstPid = source.status().pid!;
      process.kill(firstPid, 'SIGKILL');
      await waitFor(() => states.includes('reconnecting'), 5000, 'the failure to be noticed');
      expect(source.status().lastError).toMatch(/SIGKILL|signal|exit/i);
      const framesAtFailure = sink.frames.length;
      await waitFor(() => source.state === 'running' && sink.frames.length > framesAtFailure + 5, 10_000, 'frames again');
      expect(source.status().pid).not.toBe(firstPid);
      expect(source.status().counters.spawns).toBeGreaterThanOrEqual(2);
    } finally {
      await source.stop();
    }
  }, 30_000);
});
