import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { limitClassOf, looseObjectPaths } from '../../src/api/hardening.ts';
import { routesFromTree } from '../api/route-tree.ts';
import { client, createKey, startTestApp, type TestApp } from '../api/test-app.ts';

/** Whether a WebSocket upgrade from `origin` is accepted (true) or refused (the HTTP status). */
function wsOpens(url: string, origin: string): Promise<true | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { origin });
    ws.once('open', () => {
      ws.close();
      resolve(true);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.once('error', () => resolve(0));
  });
}

describe('HTTP hardening (real server)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-hardening-'));
  let t: TestApp;
  let admin: string;

  beforeAll(async () => {
    t = await startTestApp(dataDir, {
      security: { corsOrigins: ['https://kiosk.example'], rateLimit: { recognitionPerKey: 3, recognitionPerIp: 5, uploadPerKey: 100, uploadPerIp: 100, loginPerIp: 2 } },
    });
    admin = t.printedKey!;
  });
  afterAll(async () => {
    await t?.app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('CORS: a configured origin may read answers, any other origin gets no CORS headers', async () => {
    const ok = await fetch(`${t.base}/api/v1/system/health`, { headers: { origin: 'https://kiosk.example' } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://kiosk.example');
    const evil = await fetch(`${t.base}/api/v1/system/health`, { headers: { origin: 'https://evil.example' } });
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await fetch(`${t.base}/api/v1/people`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('CORS is closed by default (no origins configured)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'facegate-cors-'));
    const other = await startTestApp(dir);
    try {
      const res = await fetch(`${other.base}/api/v1/system/health`, { headers: { origin: 'https://kiosk.example' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await other.app.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses WebSocket upgrades from foreign origins, accepts its own and configured ones', async () => {
    const url = `${t.base.replace('http', 'ws')}/api/v1/events?key=${admin}`;
    expect(await wsOpens(url, 'https://evil.example')).toBe(403);
    expect(await wsOpens(url, 'https://kiosk.example')).toBe(true);
    expect(await wsOpens(url, t.base)).toBe(true);
  });

  it('sends security headers, and no-store on API answers', async () => {
    const res = await fetch(`${t.base}/api/v1/system/health`);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('rate limits recognition per key and per IP with a 429 problem', async () => {
    const call = client(t.base, admin);
    const device = await createKey(call, 'device');
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await call('POST', '/api/v1/recognize', { image: 'AAAA' })).status);
    expect(statuses.slice(0, 3).every((s) => s !== 429)).toBe(true);
    const limited = await fetch(`${t.base}/api/v1/recognize`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: '{}' });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await limited.json()).toMatchObject({ status: 429, code: 'rate_limited' });
    // Another key from the same address: its own budget, until the address's limit (5) is spent.
    const other = client(t.base, device);
    const otherStatuses: number[] = [];
    for (let i = 0; i < 3; i++) otherStatuses.push((await other('POST', '/api/v1/recognize', {})).status);
    expect(otherStatuses[0]).not.toBe(429);
    expect(otherStatuses).toContain(429);
    // Other routes are not limited by it.
    expect((await call('GET', '/api/v1/people')).status).toBe(200);
  });

  it('classifies routes into limit classes', () => {
    expect(limitClassOf('POST', '/api/v1/recognize')).toBe('recognition');
    expect(limitClassOf('POST', '/api/v1/verify')).toBe('recognition');
    expect(limitClassOf('POST', '/api/v1/people/:id/faces')).toBe('upload');
    expect(limitClassOf('POST', '/api/v1/people/import')).toBe('upload');
    expect(limitClassOf('POST', '/api/v1/enrollments')).toBe('upload');
    expect(limitClassOf('POST', '/api/v1/auth/login')).toBe('login');
    expect(limitClassOf('GET', '/api/v1/people')).toBe('none');
    expect(limitClassOf('DELETE', '/api/v1/people/:id')).toBe('none');
  });

  it('finds loose objects in schemas (what stops the server from starting)', () => {
    expect(looseObjectPaths(z.strictObject({ a: z.string(), b: z.array(z.strictObject({ c: z.number() })) }))).toEqual([]);
    expect(looseObjectPaths(z.strictObject({ a: z.object({ c: z.number() }) }))).toEqual(['body.a']);
    expect(looseObjectPaths(z.object({}).optional())).toEqual(['body']);
    expect(looseObjectPaths(z.union([z.strictObject({}), z.looseObject({})]))).toEqual(['body']);
    expect(looseObjectPaths(z.strictObject({ n: z.array(z.object({})).nullish() }))).toEqual(['body.n[]']);
  });

  it('every route with a JSON body refuses an unknown field with a 400 problem (route walk)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'facegate-strict-'));
    const open = await startTestApp(dir, { security: { rateLimit: { enabled: false } } });
    try {
      const key = open.printedKey!;
      const routes = routesFromTree(open.app.server.printRoutes({ commonPrefix: false })).filter((r) => ['POST', 'PUT', 'PATCH'].includes(r.method));
      expect(routes.length).toBeGreaterThan(5);
      const results: string[] = [];
      for (const { method, url } of routes) {
        const path = url.replace(/:[A-Za-z]+/g, '00000000-0000-4000-8000-000000000000').replace(/\*$/, 'x');
        const res = await fetch(`${open.base}${path}`, {
          method,
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ zzUnknownField: 1 }),
        });
        const type = res.headers.get('content-type') ?? '';
        const body = (await res.json().catch(() => ({}))) as { code?: string };
        // 400 validation_failed, or an earlier 4xx (404 unknown id, 415 multipart-only): never accepted.
        results.push(`${method} ${url} ${res.status < 300 || res.status >= 500 ? `ACCEPTED ${res.status}` : 'refused'} ${type.includes('problem+json') ? '' : type} ${body.code ?? ''}`);
      }
      expect(results.filter((r) => r.includes('ACCEPTED'))).toEqual([]);
    } finally {
      await open.app.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
