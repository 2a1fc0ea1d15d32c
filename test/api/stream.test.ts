import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { cropFace } from './face-fixtures.ts';
import { faceFrame } from './frame-fixtures.ts';
import { client, createKey, startTestApp, type Json, type TestApp } from './test-app.ts';

/** A WebSocket client that queues what it receives, so tests can await the next message of a kind. */
class StreamClient {
  readonly received: Json[] = [];
  closed: { code: number; reason: string } | null = null;
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      this.received.push(isBinary ? { binary: true } : JSON.parse(data.toString()));
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<StreamClient> {
    const ws = new WebSocket(url, { headers });
    const c = new StreamClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return c;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves with (and removes) the first received message matching, waiting for it. */
  async next(match: (m: Json) => boolean, timeoutMs = 15_000): Promise<Json> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.received.findIndex(match);
      if (index >= 0) return this.received.splice(index, 1)[0];
      if (this.closed) throw new Error(`socket closed (${this.closed.code}) while waiting; received ${JSON.stringify(this.received)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; received ${JSON.stringify(this.received).slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async waitClosed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('the socket did not close');
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.closed;
  }

  send(data: string | Buffer): void {
    this.ws.send(data);
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
  }
}

const isResult = (m: Json) => m.type === 'recognition_result';
const isError = (code: string) => (m: Json) => m.type === 'error' && m.data?.code === code;

describe('WebSocket /api/v1/stream (real server)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'facegate-stream-'));
  let t: TestApp;
  let wsBase: string;
  let deviceKey: string;
  let admin: ReturnType<typeof client>;
  let frame: Buffer;
  const clients: StreamClient[] = [];

  const open = async (camera: string, key = deviceKey): Promise<StreamClient> => {
    const c = await StreamClient.open(`${wsBase}/api/v1/stream?camera=${camera}`, { 'x-api-key': key });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    t = await startTestApp(join(dir, 'data'), {
      vision: { workers: 1, image: { maxBytes: 400_000 } },
      sources: { stream: { maxMessagesPerSecond: 20 } },
    });
    wsBase = t.base.replace(/^http/, 'ws');
    admin = client(t.base, t.printedKey!);
    deviceKey = await createKey(admin, 'device');
    // The woman of sample3, on a 640×480 background.
    frame = await faceFrame(await cropFace(3, { x: 1035, y: 194, side: 308 }, 1.6));
  }, 60_000);

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
  });

  afterAll(async () => {
    // Embeddings run after a frame's result is sent; closing the vision pool under one aborts the
    // process (reported: the pipeline's close should wait for them). Let them finish first.
    await new Promise((r) => setTimeout(r, 1000));
    await t?.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a binary JPEG frame with a recognition_result', async () => {
    const c = await open('kiosk-1');
    c.send(frame);
    const result = await c.next(isResult);
    expect(result).toMatchObject({ type: 'recognition_result', camera_id: 'kiosk-1', frame_id: null, width: 640, height: 480 });
    expect(typeof result.timestamp).toBe('number');
    expect(result.faces).toHaveLength(1);
    const face = result.faces[0];
    expect(typeof face.track_id).toBe('string');
    expect(face.bbox).toHaveLength(4);
    // The face was pasted at the centre: its box lies around there.
    expect(face.bbox[0] + face.bbox[2] / 2).toBeGreaterThan(250);
    expect(face.bbox[0] + face.bbox[2] / 2).toBeLessThan(390);
    expect(typeof face.is_unknown).toBe('boolean');
  }, 30_000);

  it("answers seed 003's JSON frames, echoing frame_id and timestamp, with stable track ids", async () => {
    const c = await open('kiosk-2');
    c.send(JSON.stringify({ type: 'frame', data: frame.toString('base64'), frame_id: 41, timestamp: 1234567890 }));
    const first = await c.next(isResult);
    expect(first).toMatchObject({ frame_id: 41, timestamp: 1234567890, camera_id: 'kiosk-2' });
    c.send(JSON.stringify({ type: 'frame', data: `data:image/jpeg;base64,${frame.toString('base64')}`, frame_id: 'f-42', timestamp: 1234567990 }));
    const second = await c.next(isResult);
    expect(second).toMatchObject({ frame_id: 'f-42', timestamp: 1234567990 });
    expect(second.faces[0].track_id).toBe(first.faces[0].track_id);
  }, 30_000);

  it('answers malformed messages with an error and keeps the socket open', async () => {
    const c = await open('kiosk-3');
    const cases: [string | Buffer, string][] = [
      ['this is not json', 'invalid_json'],
      ['{"type":"subscribe"}', 'unknown_type'],
      ['{"type":"frame"}', 'invalid_message'],
      ['{"type":"frame","data":"!!!not base64!!!"}', 'invalid_base64'],
      [JSON.stringify({ type: 'frame', data: Buffer.from('hello, not an image').toString('base64') }), 'invalid_image'],
      [Buffer.from('GIF89a not accepted and not an image anyway'), 'invalid_image'],
      [Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(500_000)]), 'image_too_large'],
    ];
    for (const [message, code] of cases) {
      c.send(message);
      const error = await c.next(isError(code));
      expect(typeof error.data.message).toBe('string');
    }
    // A JPEG header with garbage after it passes the checks and fails in decoding: a result with an error, not a dead socket.
    c.send(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(100, 7)]));
    const failed = await c.next(isResult);
    expect(failed.faces).toEqual([]);
    expect(failed.error?.code).toBeTruthy();
    // Still open and working.
    c.send(frame);
    expect((await c.next(isResult)).faces).toHaveLength(1);
    const camera = (await admin('GET', '/api/v1/cameras/kiosk-3')).json;
    expect(camera.stream.rejected).toBe(cases.length);
  }, 30_000);

  it('drops messages beyond the per-connection rate limit, and says so', async () => {
    const c = await open('kiosk-4');
    for (let i = 0; i < 60; i++) c.send('{"type":"ping"}');
    const notice = await c.next(isError('rate_limited'));
    expect(notice.data.message).toContain('20 messages a second');
    await new Promise((r) => setTimeout(r, 300));
    const pongs = c.received.filter((m) => m.type === 'pong').length;
    expect(pongs).toBeGreaterThanOrEqual(20);
    expect(pongs).toBeLessThan(30);
    const camera = (await admin('GET', '/api/v1/cameras/kiosk-4')).json;
    expect(camera.stream.rateLimited).toBe(60 - pongs);
  });

  it('a transient push camera is listed while streaming and gone after', async () => {
    const c = await open('kiosk-5');
    c.send('{"type":"ping"}');
    await c.next((m) => m.type === 'pong');
    const listed = (await admin('GET', '/api/v1/cameras/kiosk-5')).json;
    expect(listed).toMatchObject({ kind: 'push', origin: 'transient', state: 'running', stream: { connected: true } });
    c.close();
    await c.waitClosed();
    await new Promise((r) => setTimeout(r, 100));
    expect((await admin('GET', '/api/v1/cameras/kiosk-5')).status).toBe(404);
  });

  it('a newer client replaces the older one on the same camera', async () => {
    const first = await open('kiosk-6');
    const second = await open('kiosk-6');
    await first.next(isError('replaced'));
    expect((await first.waitClosed()).code).toBe(4409);
    second.send(frame);
    expect((await second.next(isResult)).camera_id).toBe('kiosk-6');
  }, 30_000);

  it('refuses streams to server-read and stopped cameras, with an error then a close', async () => {
    expect((await admin('POST', '/api/v1/cameras', { id: 'rtsp-cam', name: 'RTSP', kind: 'rtsp', url: 'rtsp://127.0.0.1:1/x', autoStart: false })).status).toBe(201);
    const c = await open('rtsp-cam');
    await c.next(isError('not_a_push_camera'));
    expect((await c.waitClosed()).code).toBe(4409);

    expect((await admin('POST', '/api/v1/cameras', { id: 'kiosk-7', name: 'Kiosk 7', kind: 'push' })).status).toBe(201);
    const streaming = await open('kiosk-7');
    expect((await admin('POST', '/api/v1/cameras/kiosk-7/stop')).json.state).toBe('stopped');
    await streaming.next(isError('camera_stopped'));
    await streaming.waitClosed();
    const refused = await open('kiosk-7');
    await refused.next(isError('camera_stopped'));
    expect((await refused.waitClosed()).code).toBe(4409);
    await admin('POST', '/api/v1/cameras/kiosk-7/start');
    const again = await open('kiosk-7');
    again.send('{"type":"ping"}');
    await again.next((m) => m.type === 'pong');

    const badId = await open('bad%2Fid');
    await badId.next(isError('invalid_camera_id'));
    expect((await badId.waitClosed()).code).toBe(4400);
  });

  it('needs a device key, by header or ?key=', async () => {
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${wsBase}/api/v1/stream?camera=kiosk-8`);
      ws.on('error', () => undefined);
      ws.on('unexpected-response', (req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
        req.destroy();
      });
      ws.on('open', () => resolve(101));
    });
    expect(refused).toBe(401);
    const viaQuery = await StreamClient.open(`${wsBase}/api/v1/stream?camera=kiosk-8&key=${encodeURIComponent(deviceKey)}`);
    clients.push(viaQuery);
    viaQuery.send('{"type":"ping"}');
    await viaQuery.next((m) => m.type === 'pong');
    // A plain GET is told to upgrade.
    const plain = await fetch(`${t.base}/api/v1/stream?camera=kiosk-8`, { headers: { 'x-api-key': deviceKey } });
    expect(plain.status).toBe(426);
  });
});
