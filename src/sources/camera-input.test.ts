import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkCameraUrl, checkVideoDevice, ffmpegArgs, redactUrl, resolveVideoFile } from './camera-input.ts';

describe('camera input checks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'facegate-input-'));
  const root = join(dir, 'videos');
  const outside = join(dir, 'secret');
  mkdirSync(join(root, 'sub'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(root, 'sub', 'clip.mp4'), 'x');
  writeFileSync(join(outside, 'passwd.mp4'), 'x');
  symlinkSync(join(outside, 'passwd.mp4'), join(root, 'link.mp4'));
  symlinkSync(outside, join(root, 'linkdir'));

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('resolves files under a root, relative or absolute', () => {
    expect(resolveVideoFile('sub/clip.mp4', [root])).toBe(join(root, 'sub', 'clip.mp4'));
    expect(resolveVideoFile(join(root, 'sub', 'clip.mp4'), [outside, root])).toBe(join(root, 'sub', 'clip.mp4'));
  });

  it.each([
    ['../secret/passwd.mp4', 'must lie under'],
    ['sub/../../secret/passwd.mp4', 'must lie under'],
    ['/etc/passwd', 'must lie under'],
    ['.', 'must lie under'],
    ['link.mp4', 'after following links'],
    ['linkdir/passwd.mp4', 'after following links'],
    ['sub/missing.mp4', 'does not exist'],
    ['sub/clip.mp4\0.txt', 'NUL'],
  ])('refuses %s', (path, message) => {
    expect(() => resolveVideoFile(path, [root])).toThrow(message);
  });

  it('refuses every file when no root is allowed', () => {
    expect(() => resolveVideoFile('sub/clip.mp4', [])).toThrow('disabled');
  });

  it('accepts only rtsp(s) URLs for rtsp and http(s) for mjpeg', () => {
    expect(checkCameraUrl('rtsp', 'rtsp://user:pw@10.0.0.5:554/stream1')).toBe('rtsp://user:pw@10.0.0.5:554/stream1');
    expect(checkCameraUrl('rtsp', 'rtsps://cam.local/live')).toBe('rtsps://cam.local/live');
    expect(checkCameraUrl('mjpeg', 'http://cam.local/video.mjpg')).toBe('http://cam.local/video.mjpg');
    for (const [kind, url] of [
      ['rtsp', 'http://cam.local/x'],
      ['mjpeg', 'rtsp://cam.local/x'],
      ['mjpeg', 'file:///etc/passwd'],
      ['mjpeg', 'concat:/etc/passwd'],
      ['rtsp', 'not a url'],
    ] as const) {
      expect(() => checkCameraUrl(kind, url)).toThrow();
    }
  });

  it('accepts only /dev/videoN devices', () => {
    expect(checkVideoDevice('/dev/video0')).toBe('/dev/video0');
    expect(() => checkVideoDevice('/dev/sda')).toThrow();
    expect(() => checkVideoDevice('/dev/video0/../sda')).toThrow();
  });

  it('redacts credentials', () => {
    expect(redactUrl('rtsp://admin:hunter2@10.0.0.5/stream')).toBe('rtsp://***@10.0.0.5/stream');
    expect(redactUrl('http://cam/x')).toBe('http://cam/x');
  });

  it('builds ffmpeg arguments per kind', () => {
    const output = { maxFps: 10, maxWidthPx: 1280, jpegQuality: 5 };
    const rtsp = ffmpegArgs({ kind: 'rtsp', url: 'rtsp://cam/s' }, output);
    expect(rtsp.join(' ')).toContain('-rtsp_transport tcp -i rtsp://cam/s');
    expect(rtsp.slice(-3)).toEqual(['-f', 'image2pipe', 'pipe:1']);
    expect(rtsp).toContain('mjpeg');
    expect(ffmpegArgs({ kind: 'v4l2', device: '/dev/video0' }, output).join(' ')).toContain('-f v4l2 -i /dev/video0');
    expect(ffmpegArgs({ kind: 'file', path: '/v/a.mp4', loop: true }, output).join(' ')).toContain('-re -stream_loop -1 -i /v/a.mp4');
    expect(ffmpegArgs({ kind: 'file', path: '/v/a.mp4', loop: false }, output).join(' ')).not.toContain('stream_loop');
    expect(ffmpegArgs({ kind: 'file', path: '/v/a.mp4', loop: false }, { ...output, maxFps: 0 }).join(' ')).not.toContain('select');
  });
});
