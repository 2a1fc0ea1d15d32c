import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './test-app.ts';

/* The web UI's static files, as the server serves them (a stand-in build in a temporary folder). */

describe('web UI static serving', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-web-'));
  const root = mkdtempSync(join(tmpdir(), 'facegate-web-dist-'));
  const missing = join(root, 'not-built');
  let t: TestApp;
  let unbuilt: TestApp;

  beforeAll(async () => {
    mkdirSync(join(root, 'assets'));
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>Facegate</title><script type="module" src="/assets/app-abc123.js"></script>');
    writeFileSync(join(root, 'assets', 'app-abc123.js'), 'console.log("ui")');
    t = await startTestApp(dataDir, { ui: { root } });
    unbuilt = await startTestApp(mkdtempSync(join(tmpdir(), 'facegate-web-2-')), { ui: { root: missing } });
  });
  afterAll(async () => {
    await t?.app.close();
    await unbuilt?.app.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(root, { recursive: true, force: true });
  });

  it('answers index.html, never cached, at every page of the UI, with no key', async () => {
    for (const path of ['/', '/kiosk', '/people', '/people/123', '/attendance', '/live', '/settings', '/ws-tester', '/login']) {
      const res = await fetch(`${t.base}${path}`);
      expect([path, res.status, res.headers.get('content-type')]).toEqual([path, 200, 'text/html; charset=utf-8']);
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(await res.text()).toContain('<title>Facegate</title>');
    }
  });

  it('serves hashed assets cached for good, and nothing outside them', async () => {
    const res = await fetch(`${t.base}/assets/app-abc123.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('immutable');
    expect(await res.text()).toBe('console.log("ui")');
    for (const path of ['/assets/missing.js', '/assets/../index.html', '/index.html', '/api/v1/nope', '/other-page']) {
      const other = await fetch(`${t.base}${path}`);
      expect([path, other.status]).toEqual([path, 404]);
      expect(other.headers.get('content-type')).toContain('application/problem+json');
    }
  });

  it('says how to build the UI when it is not built', async () => {
    const res = await fetch(`${unbuilt.base}/`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe('ui_not_built');
  });
});
