import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFaceFixtures } from './face-fixtures.ts';
import { DEMO_FACES, swayingPhotoFrames } from './frame-fixtures.ts';
import { client, createKey, startTestApp, type Json, type TestApp } from './test-app.ts';
import { streamFrames, WsPeer } from './ws-peer.ts';

/*
 * Recognition sessions (seed 004) on a real server: start one on a camera, stream an enrolled
 * face over WebSocket, stop it and get who was seen — the seed's recognizedStudents (rollNo,
 * timestamp) with first/last seen and the best confidence.
 */

describe('recognition sessions API (real server, real models)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-sessions-'));
  let t: TestApp;
  let admin: ReturnType<typeof client>;
  let operator: ReturnType<typeof client>;
  let deviceKey: string;
  let anna: Json;
  let ben: Json;
  const sockets: WsPeer[] = [];

  beforeAll(async () => {
    t = await startTestApp(dataDir);
    admin = client(t.base, t.printedKey!);
    operator = client(t.base, await createKey(admin, 'operator'));
    deviceKey = await createKey(admin, 'device');
    const fx = await loadFaceFixtures();
    anna = (await admin('POST', '/api/v1/people', { name: 'Anna', externalId: '13030824141' })).json;
    expect((await admin('POST', `/api/v1/people/${anna.id}/faces`, { images: [fx.a3.toString('base64')] })).json.added).toBe(1);
    ben = (await admin('POST', '/api/v1/people', { name: 'Ben', externalId: 'R-2' })).json;
  }, 60_000);

  afterAll(async () => {
    await Promise.all(sockets.map((s) => s.close()));
    await t?.app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('start, stream the enrolled face, stop: recognizedStudents names them with first/last seen and best confidence', async () => {
    const started = await operator('POST', '/api/v1/sessions', { camera_id: 'room-101', label: 'Algebra', roster: ['13030824141', ben.id] });
    expect(started.status).toBe(201);
    const session = started.json;
    expect(session).toMatchObject({ cameraId: 'room-101', label: 'Algebra', status: 'running', stoppedAt: null });
    expect(session.roster).toEqual([
      { ref: '13030824141', personId: anna.id },
      { ref: ben.id, personId: ben.id },
    ]);
    expect((await operator('POST', '/api/v1/sessions', { camera_id: 'room-101' })).json).toMatchObject({ status: 409, code: 'session_running' });

    const startedAt = Date.now();
    const stream = await WsPeer.open(`${t.base.replace(/^http/, 'ws')}/api/v1/stream?camera=room-101`, deviceKey);
    sockets.push(stream);
    await streamFrames(stream, await swayingPhotoFrames(DEMO_FACES.annaIn1, 8), 24, 10);
    await stream.waitFor((m) => m.type === 'recognition_result' && m.faces[0]?.person_id === anna.id);

    const running = await operator('GET', `/api/v1/sessions/${session.id}`);
    expect(running.json.recognizedStudents.map((s: Json) => s.personId)).toEqual([anna.id]);

    const stopped = await operator('POST', `/api/v1/sessions/${session.id}/stop`);
    expect(stopped.status).toBe(200);
    expect(stopped.json.session).toMatchObject({ id: session.id, status: 'stopped' });
    expect(stopped.json.recognizedStudents).toHaveLength(1);
    const row = stopped.json.recognizedStudents[0];
    expect(row).toMatchObject({ personId: anna.id, externalId: '13030824141', name: 'Anna', rollNo: '13030824141' });
    expect(row.firstSeen).toBeGreaterThanOrEqual(startedAt);
    expect(row.lastSeen).toBeGreaterThan(row.firstSeen);
    expect(row.lastSeen).toBeLessThanOrEqual(Date.now());
    expect(row.bestConfidence).toBeGreaterThan(0.5);
    expect(row.timestamp).toBe(new Date(row.firstSeen).toISOString());
    expect(stopped.json.notOnRoster).toEqual([]);
    expect(stopped.json.absent).toEqual([{ ref: ben.id, personId: ben.id, externalId: 'R-2', name: 'Ben' }]);

    // Stopped sessions are kept and listed; a second stop is refused.
    expect((await operator('POST', `/api/v1/sessions/${session.id}/stop`)).json).toMatchObject({ status: 409, code: 'session_stopped' });
    const list = await operator('GET', '/api/v1/sessions?cameraId=room-101');
    expect(list.json).toMatchObject({ total: 1, items: [{ id: session.id, status: 'stopped' }] });
    expect((await operator('GET', `/api/v1/sessions/${session.id}`)).json.recognizedStudents).toEqual(stopped.json.recognizedStudents);
  }, 60_000);

  it('without a roster everyone recognised counts; bad input is a 4xx problem, devices may not start sessions', async () => {
    const session = (await operator('POST', '/api/v1/sessions', { cameraId: 'room-102' })).json;
    const report = (await operator('POST', `/api/v1/sessions/${session.id}/stop`)).json;
    expect(report).toMatchObject({ recognizedStudents: [], notOnRoster: [], absent: null, session: { roster: null } });

    expect((await operator('POST', '/api/v1/sessions', {})).json).toMatchObject({ status: 400, code: 'validation_failed' });
    expect((await operator('POST', '/api/v1/sessions', { camera_id: 'x', extra: 1 })).status).toBe(400);
    expect((await operator('POST', '/api/v1/sessions', { camera_id: 'x', roster: 'nope' })).status).toBe(400);
    expect((await operator('GET', '/api/v1/sessions/does-not-exist')).json).toMatchObject({ status: 404, code: 'session_not_found' });
    expect((await operator('POST', '/api/v1/sessions/does-not-exist/stop')).status).toBe(404);
    expect((await operator('GET', '/api/v1/sessions?limit=0')).status).toBe(400);
    const device = client(t.base, deviceKey);
    expect((await device('POST', '/api/v1/sessions', { camera_id: 'room-103' })).status).toBe(403);
    expect((await device('GET', '/api/v1/sessions')).status).toBe(403);
  });
});
