import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import sharp from 'sharp';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/domain/random.ts';
import { loadFaceFixtures, type FaceFixtures } from '../api/face-fixtures.ts';
import { routesFromTree } from '../api/route-tree.ts';
import { startTestApp, type TestApp } from '../api/test-app.ts';

/*
 * Malformed input on every input route of the real server: at least 10,000 requests and WebSocket
 * messages (random and mutated JPEG/PNG bytes, truncated files, huge dimensions, bad base64,
 * malformed, deep and oversized JSON, wrong types, unknown fields). Every answer must be a 4xx
 * (or a 2xx where the input happens to be acceptable), never a 500, and the server must be alive
 * and back to its memory baseline afterwards. Cheap cases run in bulk, image cases fewer.
 */

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const ID = '00000000-0000-4000-8000-000000000000';

interface Case {
  method: string;
  path: string;
  body?: string | Buffer | FormData;
  type?: string;
}

describe('fuzzing every input route', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-fuzz-'));
  let t: TestApp;
  let key: string;
  let fx: FaceFixtures;
  let personId: string;
  const rnd = seededRandom(0xfacade);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
  const randomBytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));

  beforeAll(async () => {
    fx = await loadFaceFixtures();
    t = await startTestApp(dataDir, { security: { rateLimit: { enabled: false } }, vision: { workers: 1, maxQueue: 256, image: { maxBytes: 2 * 1024 * 1024 } } });
    key = t.printedKey!;
    const res = await fetch(`${t.base}/api/v1/people`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{"name":"Fuzz Target"}' });
    personId = ((await res.json()) as { id: string }).id;
  });
  afterAll(async () => {
    await t?.app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** Mutations of a real image: flipped bytes, cut short, chunks repeated or zeroed, header damage. */
  function mutate(image: Buffer): Buffer {
    const out = Buffer.from(image);
    switch (Math.floor(rnd() * 5)) {
      case 0:
        for (let i = 0; i < 1 + rnd() * 20; i++) out[Math.floor(rnd() * out.length)] = Math.floor(rnd() * 256);
        return out;
      case 1:
        return out.subarray(0, Math.floor(rnd() * out.length));
      case 2:
        return Buffer.concat([out.subarray(0, 20 + Math.floor(rnd() * 200)), randomBytes(200), out.subarray(400)]);
      case 3:
        out.fill(0, 2 + Math.floor(rnd() * 100), 2 + Math.floor(rnd() * 100) + 300);
        return out;
      default:
        for (let i = 0; i < 8; i++) out[2 + Math.floor(rnd() * 30)] = Math.floor(rnd() * 256);
        return out;
    }
  }

  /** A PNG whose header claims huge dimensions, with a tiny body. */
  function hugePngHeader(width: number, height: number): Buffer {
    const png = Buffer.alloc(33 + 12);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(png, 0);
    png.writeUInt32BE(13, 8);
    png.write('IHDR', 12, 'latin1');
    png.writeUInt32BE(width, 16);
    png.writeUInt32BE(height, 20);
    png[24] = 8;
    png[25] = 2;
    png.write('IEND', 37, 'latin1');
    return png;
  }

  const JSON_GARBAGE = ['{', '}', '[', 'null', 'true', '0', '"x"', '{"a":', '{"a":1,}', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}', '\u0000', '{"a":"\\ud800"}', 'NaN', '{"a":1e999}', '[[[[[[[[[[]]]]]]]]]]'];
  const WRONG_VALUES: unknown[] = [null, true, 0, -1, 1e308, 'x', '', [], {}, [1, 2], { a: 1 }, 'x'.repeat(5000), -0.5, '../../etc/passwd', '<script>', '%00', 'data:image/jpeg;base64,', '😀'.repeat(100)];
  const FIELDS = ['name', 'externalId', 'email', 'image', 'images', 'url', 'urls', 'people', 'classStudents', 'scopes', 'cameraId', 'trackId', 'kind', 'id', 'decision', 'camera_id', 'onExisting', 'metadata', 'active', 'threshold'];

  function jsonCase(method: string, path: string): Case {
    const r = rnd();
    let body: string;
    if (r < 0.2) body = pick(JSON_GARBAGE);
    else if (r < 0.35) body = randomBytes(1 + Math.floor(rnd() * 200)).toString('latin1');
    else if (r < 0.4) body = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    else if (r < 0.41) body = JSON.stringify({ [pick(FIELDS)]: 'y'.repeat(3_000_000 + Math.floor(rnd() * 2_000_000)) });
    else {
      const obj: Record<string, unknown> = {};
      for (let i = 0; i < 1 + rnd() * 4; i++) obj[rnd() < 0.2 ? `unknown_${i}` : pick(FIELDS)] = pick(WRONG_VALUES);
      body = JSON.stringify(obj);
    }
    return { method, path, body, type: rnd() < 0.9 ? 'application/json' : pick(['text/plain', 'application/xml', 'application/json; charset=utf-16', 'multipart/form-data; boundary=x']) };
  }

  function imageCase(method: string, path: string, images: Buffer[]): Case {
    const img = pick(images);
    const r = rnd();
    const bytes = r < 0.6 ? mutate(img) : r < 0.75 ? randomBytes(Math.floor(rnd() * 4000)) : r < 0.85 ? hugePngHeader(100_000 + Math.floor(rnd() * 1e6), 100_000) : img.subarray(0, Math.floor(rnd() * 50));
    if (rnd() < 0.5) {
      const form = new FormData();
      form.append(rnd() < 0.9 ? 'image' : 'file', new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' }), 'x.jpg');
      return { method, path, body: form };
    }
    const field = path.includes('verify') ? 'image1' : rnd() < 0.5 ? 'image' : 'images';
    let text = bytes.toString('base64');
    if (rnd() < 0.2) text = text.slice(0, Math.max(1, text.length - 1 - Math.floor(rnd() * 3))) + pick(['*', '!', '===', ' ', '\n']);
    return { method, path, body: JSON.stringify({ [field]: field === 'images' ? [text] : text }), type: 'application/json' };
  }

  async function send(c: Case): Promise<number> {
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (c.type) headers['content-type'] = c.type;
    try {
      const res = await fetch(`${t.base}${c.path}`, { method: c.method, headers, body: c.body });
      await res.arrayBuffer();
      return res.status;
    } catch {
      return -1; // the server closed the connection (e.g. a body over the limit): not a crash by itself
    }
  }

  /** Runs `count` cases made on demand (so only the ones in flight are in memory). */
  async function runAll(count: number, make: (i: number) => Case, concurrency: number): Promise<Map<number, number>> {
    const counts = new Map<number, number>();
    let next = 0;
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          const c = make(next++);
          const status = await send(c);
          counts.set(status, (counts.get(status) ?? 0) + 1);
          if (status >= 500 && failures.length < 10) failures.push(`${status} ${c.method} ${c.path} ${typeof c.body === 'string' ? c.body.slice(0, 80) : '(binary/form)'}`);
        }
      }),
    );
    expect(failures).toEqual([]);
    return counts;
  }

  function heapMb(): number {
    gc();
    gc();
    return process.memoryUsage().heapUsed / 1e6;
  }

  it('≥ 10,000 malformed inputs: no 500, no crash, memory back to baseline', async () => {
    const routes = routesFromTree(t.app.server.printRoutes({ commonPrefix: false }))
      .filter((r) => ['POST', 'PUT', 'PATCH'].includes(r.method))
      .map((r) => ({ method: r.method, path: r.url.replace(/:id\b/, personId).replace(/:[A-Za-z]+/g, ID) }));
    const imageRoutes = routes.filter((r) => /recognize|verify|faces$/.test(r.path));
    expect(imageRoutes.length).toBeGreaterThanOrEqual(3);
    const real = [fx.a1, fx.b1, await sharp(fx.a1).png().toBuffer(), fx.noFace];
    // Small images: mutations that still decode are analysed, so keep them cheap.
    const small = await Promise.all(real.map((b) => sharp(b).resize(160).jpeg().toBuffer()));

    // Warm-up (JIT, pools, first decode), then the baseline.
    const warm = routes.flatMap((r) => [jsonCase(r.method, r.path), jsonCase(r.method, r.path)]);
    await runAll(warm.length, (i) => warm[i]!, 8);
    await runAll(imageRoutes.length * 3, (i) => imageCase(imageRoutes[i % imageRoutes.length]!.method, imageRoutes[i % imageRoutes.length]!.path, small), 4);
    const baselineMb = heapMb();

    const JSON_CASES = 9000;
    const IMAGE_CASES = 500;
    const jsonCounts = await runAll(
      JSON_CASES,
      () => {
        const r = pick(routes);
        return jsonCase(r.method, r.path);
      },
      16,
    );
    // A decompression bomb through every image route: a 12k × 12k PNG of one colour (~100 kB).
    const bomb = await sharp({ create: { width: 12_000, height: 12_000, channels: 3, background: '#808080' } }).png({ compressionLevel: 9 }).toBuffer();
    const imageCounts = await runAll(
      IMAGE_CASES,
      () => {
        const r = pick(imageRoutes);
        return imageCase(r.method, r.path, rnd() < 0.8 ? small : real);
      },
      4,
    );
    for (const r of imageRoutes) {
      const form = new FormData();
      form.append(r.path.includes('verify') ? 'image1' : 'image', new Blob([new Uint8Array(bomb)], { type: 'image/png' }), 'bomb.png');
      const res = await fetch(`${t.base}${r.path}`, { method: r.method, headers: { authorization: `Bearer ${key}` }, body: form });
      const body = (await res.json()) as { added?: number; results?: Array<{ status: string; reason: string }> };
      // Refused from the header (too many pixels): a 4xx, or for face uploads (answered per photo) a refused photo.
      const refused = (res.status >= 400 && res.status < 500) || (body.added === 0 && body.results?.[0]?.status === 'refused');
      expect([r.path, res.status, refused]).toEqual([r.path, res.status, true]);
    }

    // WebSocket: the stream (binary and text frames) and the events socket.
    let wsMessages = 0;
    for (const path of ['/api/v1/stream?camera=fuzz-cam', '/api/v1/events']) {
      const ws = new WebSocket(`${t.base.replace('http', 'ws')}${path}${path.includes('?') ? '&' : '?'}key=${key}`);
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      ws.on('message', () => undefined);
      for (let i = 0; i < 600; i++) {
        const r = rnd();
        if (r < 0.3) ws.send(randomBytes(Math.floor(rnd() * 3000)));
        else if (r < 0.5) ws.send(mutate(pick(small)));
        else if (r < 0.6) ws.send(JSON.stringify({ type: 'frame', data: pick(['', '!!!', randomBytes(300).toString('base64'), mutate(pick(small)).toString('base64')]), frame_id: pick(WRONG_VALUES) }));
        else if (r < 0.8) ws.send(pick(JSON_GARBAGE));
        else ws.send(JSON.stringify({ type: pick(['ping', 'frame', 'subscribe', 'decision', 'x', 1, null]), [pick(FIELDS)]: pick(WRONG_VALUES) }));
        wsMessages++;
        if (i % 50 === 0) await new Promise((r2) => setTimeout(r2, 20));
      }
      await new Promise((r2) => setTimeout(r2, 300));
      ws.close();
    }
    // An oversized WebSocket message: the socket is closed (1009), the server stays up.
    const big = new WebSocket(`${t.base.replace('http', 'ws')}/api/v1/stream?camera=fuzz-big&key=${key}`);
    await new Promise((resolve) => big.once('open', resolve));
    const closed = new Promise<number>((resolve) => big.once('close', resolve));
    big.send(Buffer.alloc(5 * 1024 * 1024, 1));
    expect(await closed).toBe(1009);
    wsMessages++;

    const total = JSON_CASES + IMAGE_CASES + imageRoutes.length + wsMessages;
    expect(total).toBeGreaterThanOrEqual(10_000);
    for (const counts of [jsonCounts, imageCounts]) for (const status of counts.keys()) expect(status).toBeLessThan(500);
    expect([...jsonCounts.keys()].some((s) => s >= 400 && s < 500)).toBe(true);

    // Alive, the worker still answering, and memory back where it was.
    const health = await fetch(`${t.base}/api/v1/system/health`);
    expect(health.status).toBe(200);
    const ok = await fetch(`${t.base}/api/v1/recognize`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ image: fx.a1.toString('base64') }) });
    expect(ok.status).toBe(200);
    await new Promise((r) => setTimeout(r, 500));
    const afterMb = heapMb();
    expect(afterMb - baselineMb).toBeLessThan(40);
  }, 600_000);
});
