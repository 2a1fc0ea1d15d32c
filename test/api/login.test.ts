import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { client, createKey, startTestApp, type Json, type TestApp } from './test-app.ts';

/* Web UI sign-in through the real server: passwords, key sessions, cookies, CSRF, lockout. */

interface Browser {
  cookie: string;
  csrf: string;
  setCookie: string;
}

describe('web UI sign-in (users, sessions, CSRF, lockout)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-login-'));
  let t: TestApp;
  let admin: ReturnType<typeof client>;

  beforeAll(async () => {
    // The per-IP rate limit on logins (security.rateLimit) is not what this tests: the lockout is.
    t = await startTestApp(dataDir, { ui: { maxFailedLogins: 3, lockoutMinutes: 1 }, security: { rateLimit: { loginPerIp: 10_000 } } });
    admin = client(t.base, t.printedKey!);
  });
  afterAll(async () => {
    await t?.app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const login = async (body: unknown): Promise<{ status: number; json: Json; browser?: Browser }> => {
    const res = await fetch(`${t.base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const json: Json = await res.json();
    const setCookie = res.headers.get('set-cookie') ?? '';
    const cookie = /fg_session=[^;]+/.exec(setCookie)?.[0];
    return { status: res.status, json, ...(cookie ? { browser: { cookie, csrf: json.csrfToken as string, setCookie } } : {}) };
  };

  const asBrowser = (b: Browser, method: string, path: string, body?: unknown, csrf = true) =>
    fetch(`${t.base}${path}`, {
      method,
      headers: { cookie: b.cookie, ...(csrf ? { 'x-csrf-token': b.csrf } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it('an admin creates a user; the user signs in and works with the cookie, CSRF-checked', async () => {
    const created = await admin('POST', '/api/v1/users', { name: 'ada', role: 'operator', password: 'correct horse' });
    expect(created.status).toBe(201);
    expect(created.json).not.toHaveProperty('passwordHash');
    expect((await admin('POST', '/api/v1/users', { name: 'ada', role: 'admin', password: 'another one' })).status).toBe(409);
    expect((await admin('POST', '/api/v1/users', { name: 'bob', role: 'admin', password: 'short' })).status).toBe(400);

    const ok = await login({ username: 'ada', password: 'correct horse' });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ signedIn: true, name: 'ada', level: 'operator', via: 'password' });
    const b = ok.browser!;
    expect(b.setCookie).toMatch(/HttpOnly/i);
    expect(b.setCookie).toMatch(/SameSite=Strict/i);
    expect(b.setCookie).not.toMatch(/Secure/i); // plain HTTP here; Secure behind TLS

    const session = await (await asBrowser(b, 'GET', '/api/v1/auth/session')).json();
    expect(session).toMatchObject({ signedIn: true, name: 'ada', level: 'operator', csrfToken: b.csrf });
    // The session says when it ends, as the sign-in did (it answered null before).
    expect(typeof ok.json.expiresAt).toBe('number');
    expect((session as Json).expiresAt).toBe(ok.json.expiresAt);
    expect((await asBrowser(b, 'GET', '/api/v1/people')).status).toBe(200);
    // The operator's scope holds: admin routes are refused.
    expect((await asBrowser(b, 'GET', '/api/v1/keys')).status).toBe(403);
    // A change without the CSRF header is refused, with a wrong one too; with it, it goes through.
    expect((await asBrowser(b, 'POST', '/api/v1/cameras/none/start', undefined, false)).status).toBe(403);
    const wrong = await fetch(`${t.base}/api/v1/auth/logout`, { method: 'POST', headers: { cookie: b.cookie, 'x-csrf-token': 'nope' } });
    expect(wrong.status).toBe(403);
    expect(((await wrong.json()) as Json).code).toBe('csrf_failed');

    // The session cookie opens the event WebSocket from this origin, not from another.
    const open = (origin: string) =>
      new Promise<number | 'open'>((resolve) => {
        const ws = new WebSocket(`${t.base.replace('http', 'ws')}/api/v1/events`, { headers: { cookie: b.cookie, origin } });
        ws.on('open', () => {
          ws.close();
          resolve('open');
        });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('error', () => resolve(0));
      });
    expect(await open(t.base)).toBe('open');
    expect(await open('https://evil.example')).toBe(403);

    expect((await asBrowser(b, 'POST', '/api/v1/auth/logout')).status).toBe(204);
    expect((await asBrowser(b, 'GET', '/api/v1/people')).status).toBe(401);
    expect(await (await asBrowser(b, 'GET', '/api/v1/auth/session')).json()).toMatchObject({ signedIn: false });
  });

  it('a kiosk signs in with its device key; revoking the key ends the session', async () => {
    expect((await login({ key: 'fg_unknown' })).status).toBe(401);
    const deviceKey = await createKey(admin, 'device');
    const res = await login({ key: deviceKey });
    expect(res.json).toMatchObject({ signedIn: true, level: 'device', via: 'key' });
    const b = res.browser!;
    expect((await asBrowser(b, 'GET', '/api/v1/events')).status).toBe(200);
    expect((await asBrowser(b, 'GET', '/api/v1/people')).status).toBe(403);
    const keys = await admin('GET', '/api/v1/keys');
    const id = (keys.json.items as Json[]).find((k) => deviceKey.startsWith(k.prefix)).id as string;
    expect((await admin('DELETE', `/api/v1/keys/${id}`)).status).toBe(204);
    expect((await asBrowser(b, 'GET', '/api/v1/events')).status).toBe(401);
  });

  it('locks a user out after repeated failures, and the address too', async () => {
    await admin('POST', '/api/v1/users', { name: 'eve', role: 'admin', password: 'right password' });
    for (let i = 0; i < 3; i++) expect((await login({ username: 'eve', password: `guess ${i}` })).status).toBe(401);
    // Even the right password is refused while the lockout lasts.
    const locked = await login({ username: 'eve', password: 'right password' });
    expect(locked.status).toBe(429);
    expect(locked.json.code).toBe('locked_out');
    // An admin setting the password lifts it.
    const users = await admin('GET', '/api/v1/users');
    const eve = (users.json.items as Json[]).find((u) => u.name === 'eve');
    expect((await admin('PUT', `/api/v1/users/${eve.id}/password`, { password: 'a new password' })).status).toBe(204);
    expect((await login({ username: 'eve', password: 'a new password' })).status).toBe(200);
  });

  it('locks out a client address that keeps failing over many user names', async () => {
    // 3 per user × 4 per address: the 12th failure locks the address, even for a right password.
    for (let i = 0; i < 12; i++) expect((await login({ username: `nobody${i}`, password: 'whatever' })).status).toBe(401);
    expect((await login({ username: 'eve', password: 'a new password' })).status).toBe(429);
  });
});
