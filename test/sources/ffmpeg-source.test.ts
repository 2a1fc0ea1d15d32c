import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FfmpegInput } from '../../src/sources/camera-input.ts';
import { FFMPEG_MISSING_MESSAGE } from '../../src/sources/ffmpeg-probe.ts';
import { FfmpegSource, type FfmpegSourceOptions, type SourceState } from '../../src/sources/ffmpeg-source.ts';
import type { Frame, FrameSink } from '../../src/sources/frame.ts';
import { SKIP_WITHOUT_FFMPEG, demoPhoto, makeVideo, waitFor } from './video-fixtures.ts';

/** Keeps every frame it is offered (the tests look at all of them). */
class CollectingSink implements FrameSink {
  readonly frames: Frame[] = [];
  offer(frame: Frame): void {
    this.frames.push(frame);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(SKIP_WITHOUT_FFMPEG)('FfmpegSource', () => {
  const dir = mkdtempSync(join(tmpdir(), 'facegate-ffmpeg-'));
  const sources: FfmpegSource[] = [];
  let threeSeconds: string;
  let oneSecond: string;

  function source(input: FfmpegInput, overrides: Partial<FfmpegSourceOptions> = {}): { source: FfmpegSource; sink: CollectingSink; states: SourceState[] } {
    const sink = new CollectingSink();
    const states: SourceState[] = [];
    const s = new FfmpegSource({
      cameraId: 'cam-1',
      input,
      sink,
      output: { maxFps: 30, maxWidthPx: 1280, jpegQuality: 5 },
      ffmpegPath: 'ffmpeg',
      maxFrameBytes: 5 * 1024 * 1024,
      reconnect: { initialDelayMs: 50, maxDelayMs: 200, maxAttempts: 0 },
      stallTimeoutMs: 10_000,
      stopTimeoutMs: 2000,
      onStateChange: (status) => states.push(status.state),
      ...overrides,
    });
    sources.push(s);
    return { source: s, sink, states };
  }

  beforeAll(async () => {
    [threeSeconds, oneSecond] = await Promise.all([
      makeVideo(dir, 'three.mp4', { photo: demoPhoto('sample3.jpg'), seconds: 3, fps: 10, width: 640, height: 480 }),
      makeVideo(dir, 'one.mp4', { photo: demoPhoto('sample1.jpg'), seconds: 1, fps: 10, width: 640, height: 480 }),
    ]);
  }, 30_000);

  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.stop()));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('plays a file at its own rate, offers each frame as a JPEG, then ends', async () => {
    const { source: s, sink, states } = source({ kind: 'file', path: threeSeconds, loop: false });
    const startedAt = Date.now();
    await s.start();
    await waitFor(() => s.state === 'ended', 15_000, 'the end of the file');
    const elapsedMs = Date.now() - startedAt;
    expect(states).toEqual(['starting', 'running', 'ended']);
    // -re: 3 s of video take about 3 s, not the fraction of a second decoding takes.
    expect(elapsedMs).toBeGreaterThan(2500);
    expect(sink.frames.length).toBeGreaterThanOrEqual(28);
    expect(sink.frames.length).toBeLessThanOrEqual(31);
    expect(sink.frames.map((f) => f.seq)).toEqual(sink.frames.map((_, i) => i + 1));
    expect(sink.frames.every((f) => f.cameraId === 'cam-1' && f.bytes[0] === 0xff && f.bytes[1] === 0xd8)).toBe(true);
    const meta = await sharp(Buffer.from(sink.frames[10]!.bytes)).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: 640, height: 480 });
    const status = s.status();
    expect(status.counters).toMatchObject({ framesOut: sink.frames.length, framesDiscarded: 0, spawns: 1 });
    expect(status.pid).toBeNull();
    expect(status.lastError).toBeNull();
  }, 20_000);

  it('caps the frame rate and the width', async () => {
    const { source: s, sink } = source(
      { kind: 'file', path: threeSeconds, loop: false },
      { output: { maxFps: 4, maxWidthPx: 320, jpegQuality: 8 } },
    );
    await s.start();
    await waitFor(() => s.state === 'ended', 15_000, 'the end of the file');
    // 3 s at ≤ 4 fps (from 10 fps: every third frame, 3.3 fps).
    expect(sink.frames.length).toBeGreaterThanOrEqual(9);
    expect(sink.frames.length).toBeLessThanOrEqual(13);
    const meta = await sharp(Buffer.from(sink.frames[0]!.bytes)).metadata();
    expect(meta).toMatchObject({ width: 320, height: 240 });
  }, 20_000);

  it('loops a file until stopped, and stop kills ffmpeg', async () => {
    const { source: s, sink, states } = source({ kind: 'file', path: oneSecond, loop: true });
    await s.start();
    // One pass is 10 frames: more than 15 means it looped.
    await waitFor(() => sink.frames.length > 15, 10_000, 'a second pass over the file');
    expect(s.state).toBe('running');
    expect(s.status().fps).toBeGreaterThan(5);
    const pid = s.status().pid;
    expect(pid).toBeGreaterThan(0);
    expect(isAlive(pid!)).toBe(true);
    await s.stop();
    expect(s.state).toBe('stopped');
    expect(isAlive(pid!)).toBe(false);
    expect(states.at(-1)).toBe('stopped');
    const framesAtStop = sink.frames.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(sink.frames.length).toBe(framesAtStop);
  }, 20_000);

  it('a missing file: error, reconnecting with backoff, then gives up as stopped', async () => {
    const { source: s, states } = source(
      { kind: 'file', path: join(dir, 'missing.mp4'), loop: false },
      { reconnect: { initialDelayMs: 100, maxDelayMs: 400, jitterRatio: 0, maxAttempts: 3 } },
    );
    const retryDelays: number[] = [];
    let reconnectingAt = 0;
    const startedAt = Date.now();
    await s.start();
    await waitFor(() => {
      const status = s.status();
      if (status.state === 'reconnecting' && status.sinceMs !== reconnectingAt) {
        reconnectingAt = status.sinceMs;
        retryDelays.push(status.nextRetryAtMs! - status.sinceMs);
      }
      return status.state === 'stopped';
    }, 15_000, 'the source to give up');
    expect(states).toEqual(['starting', 'error', 'reconnecting', 'starting', 'error', 'reconnecting', 'starting', 'error', 'reconnecting', 'starting', 'error', 'stopped']);
    expect(retryDelays).toEqual([100, 200, 400]);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(700);
    const status = s.status();
    expect(status.lastError).toContain('gave up after 4 failed attempts');
    expect(status.lastError).toContain('No such file or directory');
    expect(status.stderrTail.join('\n')).toContain('missing.mp4');
    expect(status.counters.spawns).toBe(4);
  }, 20_000);

  it('ffmpeg missing: unavailable with a clear message, whether the check or the spawn finds it', async () => {
    const { source: checked } = source({ kind: 'file', path: oneSecond, loop: false }, { ffmpegPath: '/nonexistent/bin/ffmpeg' });
    await checked.start();
    expect(checked.state).toBe('unavailable');
    expect(checked.status().lastError).toContain(FFMPEG_MISSING_MESSAGE);

    // The check passed (ffmpeg removed since), the spawn fails.
    const { source: spawned, states } = source(
      { kind: 'file', path: oneSecond, loop: false },
      { ffmpegPath: '/nonexistent/bin/ffmpeg', probe: async () => ({ ok: true, version: 'test' }) },
    );
    await spawned.start();
    await waitFor(() => spawned.state !== 'starting', 5000, 'the spawn to fail');
    expect(spawned.state).toBe('unavailable');
    expect(states).toEqual(['starting', 'unavailable']);
    expect(spawned.status().lastError).toContain(FFMPEG_MISSING_MESSAGE);
    // Starting again checks again (ffmpeg may have been installed meanwhile).
    await spawned.start();
    await waitFor(() => spawned.state !== 'starting', 5000, 'the spawn to fail again');
    expect(spawned.state).toBe('unavailable');
    await spawned.stop();
    expect(spawned.state).toBe('stopped');
  });

  describe('network inputs', () => {
    let tcp: TcpServer;
    let http: HttpServer;
    const sockets = new Set<Socket>();
    let frameJpegs: Buffer[];

    beforeAll(async () => {
      // Accepts connections and never answers: a camera that hangs.
      tcp = createTcpServer((socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
      frameJpegs = await Promise.all(
        [40, 120, 200].map((grey) => sharp({ create: { width: 320, height: 240, channels: 3, background: { r: grey, g: grey, b: grey } } }).jpeg().toBuffer()),
      );
      // An IP camera's MJPEG stream: multipart/x-mixed-replace, one JPEG per part, 10 fps.
      http = createHttpServer((req, res) => {
        res.writeHead(200, { 'content-type': 'multipart/x-mixed-replace; boundary=frame' });
        let i = 0;
        const timer = setInterval(() => {
          const jpeg = frameJpegs[i++ % frameJpegs.length]!;
          res.write(`--frame\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
          res.write(jpeg);
          res.write('\r\n');
        }, 100);
        req.socket.on('close', () => clearInterval(timer));
      });
      http.on('connection', (socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    });

    afterAll(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => tcp.close(r));
      await new Promise((r) => http.close(r));
    });

    it('reads an HTTP MJPEG stream', async () => {
      const port = (http.address() as { port: number }).port;
      const { source: s, sink } = source({ kind: 'mjpeg', url: `http://127.0.0.1:${port}/video` });
      await s.start();
      await waitFor(() => sink.frames.length >= 5, 10_000, 'five frames from the MJPEG stream');
      expect(s.state).toBe('running');
      const meta = await sharp(Buffer.from(sink.frames[0]!.bytes)).metadata();
      expect(meta).toMatchObject({ format: 'jpeg', width: 320, height: 240 });
    }, 15_000);

    it('a camera that accepts and never sends: the stall watchdog kills ffmpeg and it reconnects', async () => {
      const port = (tcp.address() as { port: number }).port;
      const { source: s, states } = source({ kind: 'rtsp', url: `rtsp://127.0.0.1:${port}/stream` }, { stallTimeoutMs: 400 });
      await s.start();
      const firstPid = s.status().pid;
      await waitFor(() => s.status().counters.spawns >= 2, 10_000, 'a reconnect');
      expect(states.slice(0, 4)).toEqual(['starting', 'error', 'reconnecting', 'starting']);
      expect(s.status().stderrTail.join('\n')).toMatch(/no frame within \d+ ms of starting/);
      expect(isAlive(firstPid!)).toBe(false);
    }, 15_000);
  });
});
