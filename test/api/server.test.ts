import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../src/app.ts';
import { parseConfig } from '../../src/config/config.ts';

describe('HTTP server (real server on a random port)', () => {
  let app: App;
  let base: string;
  let adminKey: string;
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-api-'));

  beforeAll(async () => {
    const logs: string[] = [];
    app = await createApp(parseConfig({ dataDir, server: { logLevel: 'silent' }, vision: { workers: 1 } }), (m) => logs.push(m));
    base = await app.server.listen({ port: 0, host: '127.0.0.1' });
    adminKey = /fg_[A-Za-z0-9_-]+/.exec(logs.join('\n'))?.[0] ?? '';
  });
  afterAll(async () => {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints an admin key once on first start', () => {
    expect(adminKey).toMatch(/^fg_/);
  });

  it('reports health without credentials', async () => {
    const res = await fetch(`${base}/api/v1/system/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; version: string; vision: { workers: number; engine: string } };
    expect(body.status).toBe('ok');
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(body.vision).toMatchObject({ workers: 1, engine: 'onnx' });
    expect((body as unknown as { store: unknown }).store).toEqual({ status: 'ok' });
  });

  it('answers an unknown route with problem+json, not HTML or a stack trace', async () => {
    const res = await fetch(`${base}/api/v1/nope?x=1`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 404, code: 'not_found', detail: 'no route for GET /api/v1/nope' });
  });

  it('answers a malformed %-escape or an over-long path parameter with problem+json (the router answers these itself)', async () => {
    const headers = { authorization: `Bearer ${adminKey}` };
    for (const [path, status, code] of [
      ['/api/v1/people/%FF', 400, 'bad_url'],
      [`/api/v1/people/${'x'.repeat(101)}/faces`, 414, 'max_param_length'],
    ] as const) {
      const res = await fetch(`${base}${path}`, { headers });
      expect([path, res.status, res.headers.get('content-type')]).toEqual([path, status, 'application/problem+json; charset=utf-8']);
      expect(await res.json()).toMatchObject({ status, code });
    }
  });

  it('serves the OpenAPI document offline at /docs', async () => {
    const res = await fetch(`${base}/docs/json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toContain('/api/v1/system/health');
    const page = await fetch(`${base}/docs/static/index.html`);
    expect(page.status).toBe(200);
  });

  it('keys: scopes are enforced, keys are shown once and can be revoked', async () => {
    const admin = { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' };
    expect((await fetch(`${base}/api/v1/keys`)).status).toBe(401);
    expect((await fetch(`${base}/api/v1/keys`, { headers: { 'x-api-key': 'fg_wrong' } })).status).toBe(401);
    const created = await fetch(`${base}/api/v1/keys`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'kiosk 1', scopes: ['device'] }) });
    expect(created.status).toBe(201);
    const device = (await created.json()) as { id: string; key: string; prefix: string };
    expect(device.key.startsWith(device.prefix)).toBe(true);
    const listed = (await (await fetch(`${base}/api/v1/keys`, { headers: admin })).json()) as { items: Record<string, unknown>[] };
    expect(JSON.stringify(listed)).not.toContain(device.key);
    const forbidden = await fetch(`${base}/api/v1/keys`, { headers: { 'x-api-key': device.key } });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get('content-type')).toContain('application/problem+json');
    expect((await fetch(`${base}/api/v1/keys/${device.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${adminKey}` } })).status).toBe(204);
    expect((await fetch(`${base}/api/v1/keys`, { headers: { 'x-api-key': device.key } })).status).toBe(401);
  });

  it('describes the models and thresholds in force, and reloads the models without dropping requests', async () => {
    const admin = { authorization: `Bearer ${adminKey}` };
    const info = (await (await fetch(`${base}/api/v1/system/info`, { headers: admin })).json()) as Record<string, unknown>;
    expect(info).toMatchObject({ engine: 'onnx', embeddingModelId: 'fr_feature@faceplugin-0.0.1', thresholds: { verify: 0.4, search: 0.5 }, gallery: { size: 0 } });
    const image = await (await import('node:fs/promises')).readFile('node_modules/@vladmandic/face-api/demo/sample2.jpg');
    const during = app.vision.analyze(image, { embed: 'none', liveness: false });
    const reload = await fetch(`${base}/api/v1/system/reload-models`, { method: 'POST', headers: admin });
    expect(reload.status).toBe(200);
    expect(((await reload.json()) as { workers: number }).workers).toBe(1);
    expect((await during).faces.length).toBeGreaterThan(0);
    expect((await app.vision.analyze(image, { embed: 'none', liveness: false })).faces.length).toBeGreaterThan(0);
  });

  it('rejects unknown fields and wrong types with a 400 problem', async () => {
    const res = await fetch(`${base}/api/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x', scopes: ['root'], extra: true }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('validation_failed');
    const bad = await fetch(`${base}/api/v1/keys`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body: '{"name": ' });
    expect(bad.status).toBe(400);
  });

  it('refuses text with a NUL character in a path, a query or a body (PostgreSQL cannot store it: a 500 there)', async () => {
    const headers = { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' };
    for (const [method, path, body, at] of [
      ['GET', '/api/v1/people/a%00b', undefined, 'params.id'],
      ['GET', '/api/v1/people?search=%00', undefined, 'query.search'],
      ['POST', '/api/v1/people', JSON.stringify({ name: 'Ann\u0000' }), 'body.name'],
      ['POST', '/api/v1/people', JSON.stringify({ name: 'Ann', metadata: { tags: ['ok', 'x\u0000'] } }), 'body.metadata.tags[1]'],
      ['POST', '/api/v1/keys', JSON.stringify({ name: 'k', scopes: ['device'], ['\u0000']: 1 }), 'body.\u0000'],
    ] as const) {
      const res = await fetch(`${base}${path}`, { method, headers, body });
      expect([path, res.status, res.headers.get('content-type')]).toEqual([path, 400, 'application/problem+json; charset=utf-8']);
      expect(await res.json()).toMatchObject({ code: 'validation_failed', detail: `${at} contains a NUL character (\\u0000)` });
    }
    const form = new FormData();
    form.append('cameraId', 'door\u0000');
    form.append('image', new Blob([new Uint8Array([0xff, 0xd8])], { type: 'image/jpeg' }), 'x.jpg');
    const multipart = await fetch(`${base}/api/v1/recognize`, { method: 'POST', headers: { authorization: headers.authorization }, body: form });
    expect([multipart.status, ((await multipart.json()) as { detail: string }).detail]).toEqual([400, 'field "cameraId" contains a NUL character (\\u0000)']);
    const people = (await (await fetch(`${base}/api/v1/people`, { headers })).json()) as { total: number };
    expect(people.total).toBe(0);
  });
});
