import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFaceFixtures } from '../api/face-fixtures.ts';
import { client, createKey, startTestApp, type Json, type TestApp } from '../api/test-app.ts';

describe('audit log through the API', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-audit-'));
  let t: TestApp;
  let call: ReturnType<typeof client>;

  beforeAll(async () => {
    t = await startTestApp(dataDir);
    call = client(t.base, t.printedKey!);
  });
  afterAll(async () => {
    await t?.app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('records who changed what: people, faces, keys; reads are not audited; admins only', async () => {
    const person = await call('POST', '/api/v1/people', { name: 'Audit Person' });
    expect(person.status).toBe(201);
    const id = person.json.id as string;
    await call('PATCH', `/api/v1/people/${id}`, { name: 'Renamed Person' });
    const image = (await loadFaceFixtures()).a1.toString('base64');
    const faces = await call('POST', `/api/v1/people/${id}/faces`, { images: [image] });
    expect([200, 201]).toContain(faces.status);
    await call('GET', `/api/v1/people/${id}`);
    const operatorKey = await createKey(call, 'operator');
    expect((await client(t.base, operatorKey)('GET', '/api/v1/audit')).status).toBe(403);
    await call('DELETE', `/api/v1/people/${id}`);

    const log = await call('GET', `/api/v1/audit?targetId=${id}`);
    expect(log.status).toBe(200);
    const actions = (log.json.items as Json[]).map((e) => e.action);
    expect(actions).toEqual(['DELETE /api/v1/people/:id', 'POST /api/v1/people/:id/faces', 'PATCH /api/v1/people/:id', 'POST /api/v1/people']);
    const [deleted, , patched, created] = log.json.items as Json[];
    expect(created).toMatchObject({ targetType: 'person', targetId: id, details: { status: 201, body: { name: 'Audit Person' } } });
    expect(patched.details.body).toEqual({ name: 'Renamed Person' });
    expect(deleted.actor).toMatch(/^key:/);
    expect(deleted.actorName).toBe('first-start admin key');
    // The uploaded image never reaches the log.
    expect(JSON.stringify(log.json)).not.toContain(image.slice(0, 100));

    const keys = await call('GET', '/api/v1/audit?action=POST%20/api/v1/keys');
    expect(keys.json.items).toHaveLength(1);
    expect(JSON.stringify(keys.json.items)).not.toContain(operatorKey);
    expect((await call('GET', '/api/v1/audit?action=GET')).json.items).toEqual([]);
  });

  it('records attendance corrections: a manual mark and a revocation, with the reason', async () => {
    const bob = (await call('POST', '/api/v1/people', { name: 'Bob Attend' })).json;
    const marked = await call('POST', '/api/v1/attendance/mark', { personId: bob.id, note: 'forgot his badge' });
    expect(marked.status).toBe(201);
    const revoked = await call('POST', `/api/v1/attendance/logs/${marked.json.id}/revoke`, { reason: 'marked the wrong Bob' });
    expect(revoked.status).toBe(200);
    const log = (await call('GET', `/api/v1/audit?targetId=${marked.json.id}`)).json.items as Json[];
    expect(log.map((e) => [e.action, e.targetType])).toEqual([
      ['POST /api/v1/attendance/logs/:id/revoke', 'attendance_log'],
      ['POST /api/v1/attendance/mark', 'attendance'],
    ]);
    expect(log[0].details.body).toEqual({ reason: 'marked the wrong Bob' });
    expect(log[1].details.body).toMatchObject({ personId: bob.id, note: 'forgot his badge' });
  });
});
