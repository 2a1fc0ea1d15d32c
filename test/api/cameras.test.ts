import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FFMPEG_MISSING_MESSAGE } from '../../src/sources/ffmpeg-probe.ts';
import { SKIP_WITHOUT_FFMPEG, makeVideo } from '../sources/video-fixtures.ts';
import { client, createKey, startTestApp, type Json, type TestApp } from './test-app.ts';

async function waitFor<T>(probe: () => Promise<T>, accept: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 100));
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

describe.skipIf(SKIP_WITHOUT_FFMPEG)('cameras API (real server, ffmpeg file cameras)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'facegate-cameras-'));
  const dataDir = join(dir, 'data');
  let t: TestApp;
  let admin: ReturnType<typeof client>;
  let operator: ReturnType<typeof client>;
  let device: ReturnType<typeof client>;
  let adminKey: string;

  beforeAll(async () => {
    t = await startTestApp(dataDir, { realtime: { defaultMaxFps: 2 } });
    adminKey = t.printedKey!;
    admin = client(t.base, adminKey);
    operator = client(t.base, await createKey(admin, 'operator'));
    device = client(t.base, await createKey(admin, 'device'));
    // The default file root, created at start.
    // No face in it: these tests are about cameras, and a frame without faces is never embedded,
    // so closing the app never races an embedding (closing the vision pool under one aborts the process).
    const blank = join(dir, 'blank.png');
    const pixels = Buffer.alloc(320 * 240 * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7) % 251;
    await sharp(pixels, { raw: { width: 320, height: 240, channels: 3 } }).png().toFile(blank);
    await makeVideo(join(dataDir, 'videos'), 'clip.mp4', { photo: blank, seconds: 2, fps: 10, width: 640, height: 480 });
    writeFileSync(join(dir, 'outside.mp4'), 'not in the root');
    symlinkSync(join(dir, 'outside.mp4'), join(dataDir, 'videos', 'escape.mp4'));
  }, 60_000);

  afterAll(async () => {
    await t?.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a file camera, starts it, counts its frames, stops it and kills ffmpeg', async () => {
    const created = await admin('POST', '/api/v1/cameras', { name: 'Lobby file', kind: 'file', path: 'clip.mp4', loop: true, maxFps: 3, autoStart: false });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      id: 'lobby-file',
      name: 'Lobby file',
      kind: 'file',
      source: join(dataDir, 'videos', 'clip.mp4'),
      maxFps: 3,
      enabled: false,
      loop: true,
      origin: 'api',
      state: 'stopped',
      lastError: null,
      stream: null,
    });

    const started = await operator('POST', '/api/v1/cameras/lobby-file/start');
    expect(started.status).toBe(200);
    expect(started.json.enabled).toBe(true);
    expect(['starting', 'running']).toContain(started.json.state);
    const running: Json = await waitFor(
      async () => (await operator('GET', '/api/v1/cameras/lobby-file')).json,
      (c: Json) => c.state === 'running' && c.stats.framesIn >= 3 && c.stats.framesProcessed >= 1,
      20_000,
      'frames through the pipeline',
    );
    expect(running.ffmpeg.pid).toBeGreaterThan(0);
    expect(running.stats.fps).toBeLessThanOrEqual(4);
    const pid = running.ffmpeg.pid as number;

    const list = await operator('GET', '/api/v1/cameras');
    expect(list.status).toBe(200);
    expect(list.json.items.map((c: Json) => c.id)).toContain('lobby-file');

    const stopped = await operator('POST', '/api/v1/cameras/lobby-file/stop');
    expect(stopped.status).toBe(200);
    expect(stopped.json).toMatchObject({ state: 'stopped', enabled: false });
    expect(stopped.json.ffmpeg.pid).toBeNull();
    expect(isAlive(pid)).toBe(false);
  }, 40_000);

  it('a file camera without loop plays once and ends', async () => {
    const created = await admin('POST', '/api/v1/cameras', { id: 'once', name: 'Once', kind: 'file', path: join(dataDir, 'videos', 'clip.mp4') });
    expect(created.status).toBe(201);
    const ended: Json = await waitFor(async () => (await operator('GET', '/api/v1/cameras/once')).json, (c: Json) => c.state === 'ended', 15_000, 'the end of the file');
    expect(ended.stats.framesIn).toBeGreaterThanOrEqual(3);
    expect(ended.lastError).toBeNull();
  }, 20_000);

  it('refuses file paths outside the allowed roots, whatever the trick', async () => {
    for (const path of ['../facegate.db', '/etc/passwd', 'escape.mp4', 'missing.mp4', '../../outside.mp4', 'clip.mp4/..']) {
      const res = await admin('POST', '/api/v1/cameras', { name: 'bad', kind: 'file', path });
      expect(res.status, path).toBe(400);
      expect(res.type).toContain('application/problem+json');
      expect(res.json.code, path).toBe('invalid_camera_source');
    }
  });

  it('validates kinds, fields and URLs with a 400 problem', async () => {
    const cases: [Json, string][] = [
      [{ name: 'x', kind: 'webcam', device: '/dev/video0' }, 'validation_failed'],
      [{ name: 'x', kind: 'rtsp' }, 'invalid_camera_source'],
      [{ name: 'x', kind: 'rtsp', url: 'http://10.0.0.5/stream' }, 'invalid_camera_source'],
      [{ name: 'x', kind: 'mjpeg', url: 'file:///etc/passwd' }, 'invalid_camera_source'],
      [{ name: 'x', kind: 'rtsp', url: 'rtsp://10.0.0.5/s', device: '/dev/video0' }, 'invalid_camera_source'],
      [{ name: 'x', kind: 'v4l2', device: '/dev/sda' }, 'invalid_camera_source'],
      [{ name: 'x', kind: 'push', loop: true }, 'invalid_camera_source'],
      [{ name: 'x', kind: 'push', extra: 1 }, 'validation_failed'],
      [{ name: 'x', kind: 'push', id: 'has/slash' }, 'validation_failed'],
      [{ name: 'x', kind: 'push', maxFps: 0 }, 'validation_failed'],
      [{ kind: 'push' }, 'validation_failed'],
    ];
    for (const [body, code] of cases) {
      const res = await admin('POST', '/api/v1/cameras', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.code, JSON.stringify(body)).toBe(code);
    }
  });

  it('hides URL credentials, refuses a taken id, deletes', async () => {
    const created = await admin('POST', '/api/v1/cameras', { id: 'gate', name: 'Gate', kind: 'rtsp', url: 'rtsp://admin:hunter2@127.0.0.1:1/stream', autoStart: false });
    expect(created.status).toBe(201);
    expect(created.json.source).toBe('rtsp://***@127.0.0.1:1/stream');
    const listed = await operator('GET', '/api/v1/cameras');
    expect(JSON.stringify(listed.json)).not.toContain('hunter2');
    expect((await admin('POST', '/api/v1/cameras', { id: 'gate', name: 'Gate 2', kind: 'push' })).status).toBe(409);
    // An id made from the name.
    const push = await admin('POST', '/api/v1/cameras', { name: 'Kiosk Entrée', kind: 'push' });
    expect(push.json).toMatchObject({ id: 'kiosk-entree', kind: 'push', state: 'idle', source: null, ffmpeg: null, stream: { connected: false } });

    expect((await admin('DELETE', '/api/v1/cameras/gate')).status).toBe(204);
    expect((await operator('GET', '/api/v1/cameras/gate')).status).toBe(404);
    expect((await admin('DELETE', '/api/v1/cameras/gate')).status).toBe(404);
    expect((await operator('POST', '/api/v1/cameras/gate/start')).status).toBe(404);
  });

  it('enforces access: operators read and start/stop, admins define and delete, devices none of it', async () => {
    expect((await operator('POST', '/api/v1/cameras', { name: 'op', kind: 'push' })).status).toBe(403);
    expect((await operator('DELETE', '/api/v1/cameras/kiosk-entree')).status).toBe(403);
    expect((await device('GET', '/api/v1/cameras')).status).toBe(403);
    expect((await device('POST', '/api/v1/cameras/kiosk-entree/stop')).status).toBe(403);
    expect((await fetch(`${t.base}/api/v1/cameras`)).status).toBe(401);
  });

  it('keeps definitions across a restart: enabled cameras start again, stopped ones stay stopped; config cameras are rewritten from the config', async () => {
    const looping = await admin('POST', '/api/v1/cameras', { id: 'looping', name: 'Looping', kind: 'file', path: 'clip.mp4', loop: true });
    expect(looping.status).toBe(201);
    await t.app.close();

    t = await startTestApp(dataDir, {
      realtime: { defaultMaxFps: 2 },
      cameras: [{ id: 'cfg-file', name: 'From config', kind: 'file', path: 'clip.mp4', loop: true, maxFps: 1 }],
    });
    admin = client(t.base, adminKey);
    const cameras: Json = await waitFor(
      async () => (await admin('GET', '/api/v1/cameras')).json.items,
      (items: Json) => items.find((c: Json) => c.id === 'looping')?.state === 'running' && items.find((c: Json) => c.id === 'cfg-file')?.state === 'running',
      20_000,
      'the enabled cameras to run again',
    );
    const byId = Object.fromEntries(cameras.map((c: Json) => [c.id, c]));
    expect(byId['lobby-file']).toMatchObject({ state: 'stopped', enabled: false });
    expect(byId['kiosk-entree']).toMatchObject({ kind: 'push', state: 'idle' });
    expect(byId['cfg-file']).toMatchObject({ origin: 'config', name: 'From config', maxFps: 1 });
    const del = await admin('DELETE', '/api/v1/cameras/cfg-file');
    expect(del.status).toBe(409);
    expect(del.json.code).toBe('camera_in_config');
    expect((await admin('POST', '/api/v1/cameras/cfg-file/stop')).json.state).toBe('stopped');
  }, 90_000);
});

describe('cameras API without ffmpeg', () => {
  const dir = mkdtempSync(join(tmpdir(), 'facegate-noffmpeg-'));
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp(join(dir, 'data'), { sources: { ffmpegPath: join(dir, 'no-such-ffmpeg') } });
  }, 60_000);
  afterAll(async () => {
    await t?.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an ffmpeg camera is unavailable with a clear message; the rest of the server runs', async () => {
    const admin = client(t.base, t.printedKey!);
    const created = await admin('POST', '/api/v1/cameras', { id: 'door', name: 'Door', kind: 'rtsp', url: 'rtsp://127.0.0.1:1/stream' });
    expect(created.status).toBe(201);
    expect(created.json.state).toBe('unavailable');
    expect(created.json.lastError).toContain(FFMPEG_MISSING_MESSAGE);
    expect((await admin('GET', '/api/v1/cameras/door')).json.state).toBe('unavailable');
    const push = await admin('POST', '/api/v1/cameras', { id: 'kiosk', name: 'Kiosk', kind: 'push' });
    expect(push.json.state).toBe('idle');
    expect((await fetch(`${t.base}/api/v1/system/health`)).status).toBe(200);
  });
});
