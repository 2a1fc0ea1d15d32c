import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../src/app.ts';
import { parseConfig } from '../../src/config/config.ts';

describe('HTTP server (real server on a random port)', () => {
  let app: App;
  let base: string;

  beforeAll(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'facegate-api-'));
    app = await createApp(parseConfig({ dataDir, server: { port: 0, host: '127.0.0.1', logLevel: 'silent' }, vision: { workers: 1 } }));
    base = await app.server.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await app.close();
  });

  it('reports health without credentials', async () => {
    const res = await fetch(`${base}/api/v1/system/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; version: string; vision: { workers: number; engine: string } };
    expect(body.status).toBe('ok');
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(body.vision).toMatchObject({ workers: 1, engine: 'onnx' });
  });

  it('answers an unknown route with problem+json, not HTML or a stack trace', async () => {
    const res = await fetch(`${base}/api/v1/nope?x=1`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 404, code: 'not_found', detail: 'no route for GET /api/v1/nope' });
  });
});
