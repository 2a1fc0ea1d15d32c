import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccessLevel } from '../../src/services/auth.service.ts';
import { routesFromTree } from './route-tree.ts';
import { client, createKey, startTestApp, type TestApp } from './test-app.ts';

/*
 * Walks every route the server registered (from Fastify's own route tree, so a route missing from
 * the OpenAPI document is walked too) and proves the access rules on each: a non-public route
 * answers 401 without a key, 403 with a key whose scope is too low, and neither with a key whose
 * scope suffices. Probes never reach a handler with real input: bodies are broken JSON and ids
 * are unknown, so walking the routes changes nothing.
 */

/** Routes anyone may call. A new public route must be added here on purpose. */
const PUBLIC_ROUTES = new Set([
  'GET /api/v1/system/health',
  // The web UI: its static files, and the sign-in that gives a browser its session.
  'GET /',
  'GET /login',
  'GET /kiosk',
  'GET /people',
  'GET /people/:id',
  'GET /attendance',
  'GET /live',
  'GET /settings',
  'GET /ws-tester',
  'POST /api/v1/auth/login',
  'GET /api/v1/auth/session',
]);

/** The access level each known route must have (routes not listed are still walked for consistency). */
const EXPECTED_ACCESS: Record<string, AccessLevel> = {
  'GET /api/v1/keys': 'admin',
  'POST /api/v1/keys': 'admin',
  'DELETE /api/v1/keys/:id': 'admin',
  'POST /api/v1/people': 'admin',
  'GET /api/v1/people': 'operator',
  'GET /api/v1/people/:id': 'operator',
  'PATCH /api/v1/people/:id': 'admin',
  'DELETE /api/v1/people/:id': 'admin',
  'POST /api/v1/people/:id/faces': 'operator',
  'GET /api/v1/people/:id/faces': 'operator',
  'GET /api/v1/people/:id/faces/:faceId': 'operator',
  'DELETE /api/v1/people/:id/faces/:faceId': 'admin',
  'GET /api/v1/people/:id/faces/:faceId/thumbnail': 'operator',
  'POST /api/v1/recognize': 'device',
  'POST /api/v1/verify': 'device',
  'GET /api/v1/recognition/log': 'operator',
  'GET /api/v1/gallery/status': 'operator',
  'POST /api/v1/auth/logout': 'device',
  'GET /api/v1/users': 'admin',
  'POST /api/v1/users': 'admin',
  'PUT /api/v1/users/:id/password': 'admin',
  'DELETE /api/v1/users/:id': 'admin',
};

/** The web UI's built files (one route each, named by content hash) are public too. */
const isPublic = (name: string): boolean => PUBLIC_ROUTES.has(name) || name.startsWith('GET /assets/');

const KEY_LEVELS = ['device', 'operator', 'admin'] as const;

describe('access rules on every route (route walk)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-access-'));
  let t: TestApp;
  const keys: Partial<Record<AccessLevel, string>> = {};

  beforeAll(async () => {
    t = await startTestApp(dataDir);
    keys.admin = t.printedKey!;
    const call = client(t.base, keys.admin);
    keys.operator = await createKey(call, 'operator');
    keys.device = await createKey(call, 'device');
  });
  afterAll(async () => {
    await t?.app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const probe = async (method: string, url: string, key?: string): Promise<number> => {
    const path = url.replace(/:[A-Za-z]+/g, '00000000-0000-4000-8000-000000000000').replace(/\*$/, 'x');
    const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
    const withBody = ['POST', 'PUT', 'PATCH'].includes(method);
    if (withBody) headers['content-type'] = 'application/json';
    const res = await fetch(`${t.base}${path}`, { method, headers, body: withBody ? '{' : undefined });
    await res.arrayBuffer();
    return res.status;
  };

  it('finds the routes, including every route the access table names', () => {
    const found = routesFromTree(t.app.server.printRoutes({ commonPrefix: false })).map((r) => `${r.method} ${r.url}`);
    expect(found.length).toBeGreaterThanOrEqual(Object.keys(EXPECTED_ACCESS).length + PUBLIC_ROUTES.size);
    for (const route of [...Object.keys(EXPECTED_ACCESS), ...PUBLIC_ROUTES]) expect(found).toContain(route);
  });

  it('every non-public route: 401 without a key, 403 below its scope, allowed at or above it', async () => {
    const routes = routesFromTree(t.app.server.printRoutes({ commonPrefix: false }));
    const seen: Record<string, AccessLevel> = {};
    for (const { method, url } of routes) {
      const name = `${method} ${url}`;
      const anonymous = await probe(method, url);
      if (isPublic(name)) {
        expect([name, anonymous !== 401 && anonymous !== 403]).toEqual([name, true]);
        continue;
      }
      expect([name, anonymous]).toEqual([name, 401]);
      const bogus = await probe(method, url, 'fg_not-a-real-key');
      expect([name, 'bogus key', bogus]).toEqual([name, 'bogus key', 401]);
      // The lowest scope let through is the route's level; every scope below it must be refused with 403.
      let level: AccessLevel | undefined;
      for (const scope of KEY_LEVELS) {
        const status = await probe(method, url, keys[scope]);
        expect([name, scope, status === 401]).toEqual([name, scope, false]);
        if (status !== 403 && level === undefined) level = scope;
        if (level !== undefined) expect([name, scope, status]).not.toEqual([name, scope, 403]);
      }
      expect([name, level]).not.toEqual([name, undefined]);
      seen[name] = level!;
    }
    for (const [name, level] of Object.entries(EXPECTED_ACCESS)) expect([name, seen[name]]).toEqual([name, level]);
  });
});
