import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../src/config/paths.ts';
import { loadFaceFixtures, type FaceFixtures } from './face-fixtures.ts';
import { DEMO_FACES, swayingPhotoFrames } from './frame-fixtures.ts';
import { client, createKey, startTestApp, type Json, type TestApp } from './test-app.ts';
import { streamFrames, WsPeer } from './ws-peer.ts';

/*
 * Attendance end to end on a real server with the real models: an enrolled face streamed over
 * WebSocket on a session's camera is checked in once (under the session), the same face on two
 * more cameras at once changes only the check-out, the reports, the CSV (API and CLI) agree, and
 * revoking the check-in makes the identity decision stop naming that person for that face.
 */

const run = promisify(execFile);

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out; last value ${JSON.stringify(value).slice(0, 400)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('attendance API (real server, real models)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-attendance-'));
  let t: TestApp;
  let admin: ReturnType<typeof client>;
  let operator: ReturnType<typeof client>;
  let device: ReturnType<typeof client>;
  let deviceKey: string;
  let fx: FaceFixtures;
  let anna: Json;
  let ben: Json;
  let cara: Json;
  let annaFrames: Buffer[];
  const sockets: WsPeer[] = [];
  const ws = (camera: string) => WsPeer.open(`${t.base.replace(/^http/, 'ws')}/api/v1/stream?camera=${camera}`, deviceKey).then((peer) => (sockets.push(peer), peer));

  beforeAll(async () => {
    // Start 00:00 with no grace: everyone is late, so "late" is deterministic whatever the time of the run.
    t = await startTestApp(dataDir, { attendance: { timeZone: 'Europe/Berlin', dayBoundary: '00:00', startTime: '00:00', flushEveryMs: 500 } });
    admin = client(t.base, t.printedKey!);
    operator = client(t.base, await createKey(admin, 'operator'));
    deviceKey = await createKey(admin, 'device');
    device = client(t.base, deviceKey);
    fx = await loadFaceFixtures();
    anna = (await admin('POST', '/api/v1/people', { name: 'Anna', externalId: '13030824141', department: 'Lab' })).json;
    expect((await admin('POST', `/api/v1/people/${anna.id}/faces`, { images: [fx.a3.toString('base64')] })).json.added).toBe(1);
    ben = (await admin('POST', '/api/v1/people', { name: 'Ben', externalId: 'R-2', department: 'Ops' })).json;
    cara = (await admin('POST', '/api/v1/people', { name: '=HYPERLINK("http://evil")', department: 'Lab' })).json;
    annaFrames = await swayingPhotoFrames(DEMO_FACES.annaIn1, 8);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(sockets.map((s) => s.close()));
    await t?.app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('checks a streamed face in once, under the running session, across three cameras', async () => {
    const session = (await operator('POST', '/api/v1/sessions', { camera_id: 'room-a', label: 'Algebra' })).json;
    const roomA = await ws('room-a');
    await streamFrames(roomA, annaFrames, 24, 10);
    const logs = await until(
      () => operator('GET', '/api/v1/attendance/logs'),
      (r) => r.json.total === 1,
    );
    const first = logs.json.items[0];
    expect(first).toMatchObject({
      personId: anna.id,
      name: 'Anna',
      externalId: '13030824141',
      department: 'Lab',
      method: 'recognition',
      cameraId: 'room-a',
      sessionId: session.id,
      late: true,
      revoked: false,
      hasSnapshot: true,
    });
    expect(first.agreeingFrames).toBeGreaterThanOrEqual(3);
    expect(first.similarity).toBeGreaterThan(0.5);
    expect(first.liveness).toBeGreaterThan(0.2);
    expect(first.checkInTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0[12]:00$/);
    const snapshot = await fetch(`${t.base}/api/v1/attendance/logs/${first.id}/snapshot`, { headers: { authorization: `Bearer ${t.printedKey}` } });
    expect(snapshot.headers.get('content-type')).toBe('image/jpeg');
    expect(Buffer.from(await snapshot.arrayBuffer()).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));

    // The event went out once, on the stream and the polling ring (webhooks and MQTT get the same).
    const polled = await until(
      () => device('GET', '/api/v1/events?after=0&limit=500&types=attendance_checked_in'),
      (r) => r.json.events.length >= 1,
    );
    expect(polled.json.events).toHaveLength(1);
    expect(polled.json.events[0]).toMatchObject({ type: 'attendance_checked_in', camera_id: 'room-a', data: { person_id: anna.id, record_id: first.id, session_id: session.id, method: 'recognition', late: true } });

    // The same face on two more cameras at the same moment: no second check-in, a later check-out.
    const [doorB, hallC] = await Promise.all([ws('door-b'), ws('hall-c')]);
    await Promise.all([streamFrames(doorB, annaFrames, 24, 10), streamFrames(hallC, annaFrames, 24, 10)]);
    await Promise.all([
      doorB.waitFor((m) => m.type === 'recognition_result' && m.faces[0]?.person_id === anna.id),
      hallC.waitFor((m) => m.type === 'recognition_result' && m.faces[0]?.person_id === anna.id),
    ]);
    const after = await until(
      () => operator('GET', '/api/v1/attendance/logs'),
      (r) => r.json.items[0]?.checkOutAt > first.checkOutAt,
    );
    expect(after.json.total).toBe(1);
    expect(after.json.items[0]).toMatchObject({ id: first.id, checkInAt: first.checkInAt, cameraId: 'room-a' });
    expect((await device('GET', '/api/v1/events?after=0&limit=500&types=attendance_checked_in')).json.events).toHaveLength(1);

    // Stopping the session: seed 004's recognizedStudents plus the check-ins made under it.
    const stopped = (await operator('POST', `/api/v1/sessions/${session.id}/stop`)).json;
    expect(stopped.recognizedStudents).toEqual([expect.objectContaining({ personId: anna.id, rollNo: '13030824141', timestamp: expect.any(String) })]);
    expect(stopped.checkIns).toEqual([expect.objectContaining({ id: first.id, personId: anna.id, externalId: '13030824141' })]);
    expect((await operator('GET', `/api/v1/attendance/logs?sessionId=${session.id}`)).json.total).toBe(1);
    expect((await operator('GET', '/api/v1/attendance/logs?cameraId=door-b')).json.total).toBe(0);
  }, 90_000);

  it('answers today, stats, history, status, marks by hand and exports safe CSV (API and CLI)', async () => {
    const today = (await operator('GET', '/api/v1/attendance/today')).json;
    expect(today.timeZone).toBe('Europe/Berlin');
    expect(today.counts).toEqual({ expected: 3, present: 1, late: 1, absent: 2 });
    expect(today.present.map((r: Json) => r.personId)).toEqual([anna.id]);
    expect(today.absent.map((p: Json) => p.personId).sort()).toEqual([ben.id, cara.id].sort());

    // Operators mark by hand; a second mark of the same day is a 409, a device may not mark.
    const marked = await operator('POST', '/api/v1/attendance/mark', { personId: cara.id, note: 'forgot badge' });
    expect(marked.status).toBe(201);
    expect(marked.json).toMatchObject({ method: 'manual', note: 'forgot badge', markedBy: 'operator test key', day: today.day });
    expect((await operator('POST', '/api/v1/attendance/mark', { personId: cara.id })).json).toMatchObject({ status: 409, code: 'already_checked_in' });
    expect((await operator('POST', '/api/v1/attendance/mark', { personId: 'nobody' })).json).toMatchObject({ status: 404 });
    expect((await operator('POST', '/api/v1/attendance/mark', { personId: cara.id, at: 'yesterday' })).status).toBe(400);
    expect((await device('POST', '/api/v1/attendance/mark', { personId: ben.id })).status).toBe(403);

    const stats = (await operator('GET', `/api/v1/attendance/stats?from=${today.day}&to=${today.day}`)).json;
    expect(stats.days).toEqual([expect.objectContaining({ day: today.day, present: 2, late: 2 })]);
    expect(stats.departments).toEqual([
      expect.objectContaining({ department: 'Lab', totals: expect.objectContaining({ present: 2, late: 2 }) }),
      expect.objectContaining({ department: 'Ops', totals: expect.objectContaining({ present: 0 }) }),
    ]);
    expect((await operator('GET', '/api/v1/attendance/stats?from=2026-02-30')).status).toBe(400);
    expect((await operator('GET', '/api/v1/attendance/stats?from=2020-01-01&to=2026-01-01')).json).toMatchObject({ status: 400, code: 'validation_failed' });
    // The last day there is (the days were listed up to the day after it: a 500), and a span of millennia.
    expect((await operator('GET', '/api/v1/attendance/stats?to=9999-12-31')).json).toMatchObject({ from: '9999-12-25', to: '9999-12-31' });
    expect((await operator('GET', '/api/v1/attendance/stats?from=0100-01-01&to=9999-12-31')).json).toMatchObject({ status: 400, code: 'validation_failed' });

    const history = (await operator('GET', `/api/v1/attendance/people/${anna.id}`)).json;
    expect(history).toMatchObject({ person: { id: anna.id, name: 'Anna' }, total: 1 });
    expect((await operator('GET', `/api/v1/attendance/employee/${anna.id}`)).json.total).toBe(1);
    expect((await operator('GET', '/api/v1/attendance/people/nobody')).status).toBe(404);
    expect((await device('GET', `/api/v1/attendance/check-in-status/${anna.id}`)).json).toMatchObject({ personId: anna.id, checkedIn: true, day: today.day });
    expect((await device('GET', `/api/v1/attendance/check-in-status/${ben.id}`)).json).toMatchObject({ checkedIn: false, record: null });
    expect((await device('GET', '/api/v1/attendance/logs')).status).toBe(403);

    const filtered = (await operator('GET', `/api/v1/attendance/logs?from=${today.day}&to=${today.day}&department=Lab&method=manual&limit=1`)).json;
    expect(filtered).toMatchObject({ total: 1, limit: 1, items: [{ personId: cara.id }] });
    expect((await operator('GET', '/api/v1/attendance/logs?from=tomorrow')).status).toBe(400);
    expect((await operator('GET', `/api/v1/attendance/logs?from=${today.day}&to=2000-01-01`)).json).toMatchObject({ status: 400 });

    const res = await fetch(`${t.base}/api/v1/attendance/export.csv?from=${today.day}&to=${today.day}`, { headers: { authorization: `Bearer ${t.printedKey}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(res.headers.get('content-disposition')).toContain(`attendance-${today.day}-${today.day}.csv`);
    const csv = await res.text();
    const lines = csv.trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      'id,day,person_id,external_id,name,department,check_in,check_out,late,minutes_late,method,camera_id,session_id,similarity,margin,liveness,revoked,revoked_reason,revoked_by,note',
    );
    expect(lines).toHaveLength(3);
    expect(lines[1]).toContain(`,${anna.id},13030824141,Anna,Lab,`);
    expect(lines[1]).toContain(',true,');
    expect(lines[1]).toContain(',recognition,room-a,');
    // The formula-looking name is neutralised and quoted.
    expect(lines[2]).toContain(`,"'=HYPERLINK(""http://evil"")",Lab,`);
    expect((await operator('GET', '/api/v1/attendance/export.csv?to=nope')).status).toBe(400);

    // The CLI writes the same file from the same store.
    const out = join(dataDir, 'export.csv');
    const cli = await run(process.execPath, [projectPath('bin/facegate.mjs'), 'attendance', 'export', '--from', today.day, '--to', today.day, '--out', out], {
      env: { ...process.env, FACEGATE_DATA_DIR: dataDir, FACEGATE_ATTENDANCE__TIME_ZONE: 'Europe/Berlin', FACEGATE_ATTENDANCE__DAY_BOUNDARY: '00:00' },
    });
    expect(cli.stderr).toContain('wrote 2 check-ins');
    expect(await readFile(out, 'utf8')).toBe(csv);
    await expect(run(process.execPath, [projectPath('bin/facegate.mjs'), 'attendance', 'export', '--from', '2026-13-01'], { env: { ...process.env, FACEGATE_DATA_DIR: dataDir } })).rejects.toMatchObject({
      code: 2,
    });
  }, 90_000);

  it('revoking a check-in: kept with reason and who, the day is free, and that face is no longer taken for the person', async () => {
    const [record] = (await operator('GET', `/api/v1/attendance/logs?personId=${anna.id}`)).json.items;
    expect((await operator('POST', `/api/v1/attendance/logs/${record.id}/revoke`, {})).status).toBe(400);
    expect((await device('POST', `/api/v1/attendance/logs/${record.id}/revoke`, { reason: 'x' })).status).toBe(403);
    const revoked = await operator('POST', `/api/v1/attendance/logs/${record.id}/revoke`, { reason: 'that was her sister' });
    expect(revoked.status).toBe(200);
    expect(revoked.json).toMatchObject({ revoked: true, revokedReason: 'that was her sister', revokedBy: 'operator test key' });
    expect((await operator('POST', `/api/v1/attendance/logs/${record.id}/revoke`, { reason: 'again' })).json).toMatchObject({ status: 409, code: 'already_revoked' });
    expect((await operator('POST', '/api/v1/attendance/logs/nope/revoke', { reason: 'x' })).json).toMatchObject({ status: 404, code: 'attendance_not_found' });
    expect((await device('GET', `/api/v1/attendance/check-in-status/${anna.id}`)).json.checkedIn).toBe(false);
    expect((await operator('GET', `/api/v1/attendance/logs?personId=${anna.id}&includeRevoked=true`)).json.items[0]).toMatchObject({ id: record.id, revoked: true });

    // The face of the revoked check-in (sample1) is no longer named Anna…
    const probe = annaFrames[0]!.toString('base64');
    const face = (await device('POST', '/api/v1/recognize', { image: probe })).json.faces[0];
    expect(face.person).toBeNull();
    // …while her own enrolled photo (sample3) still is: it is closer to her template than to the negative example.
    expect((await device('POST', '/api/v1/recognize', { image: fx.a3.toString('base64') })).json.faces[0].person).toMatchObject({ id: anna.id });

    // Streamed again on a new camera, that face checks nobody in.
    const lobby = await ws('lobby');
    await streamFrames(lobby, annaFrames, 24, 10);
    await lobby.waitFor((m) => m.type === 'recognition_result' && m.faces.length > 0 && m.faces[0].reason !== 'pending', 15_000, 5);
    await new Promise((r) => setTimeout(r, 1000));
    expect(lobby.messages.some((m) => m.type === 'recognition_result' && m.faces.some((f: Json) => f.person_id === anna.id))).toBe(false);
    expect((await device('GET', `/api/v1/attendance/check-in-status/${anna.id}`)).json.checkedIn).toBe(false);

    // The real Anna (another photo of her) then arrives in front of two cameras at the same moment: one check-in.
    const realFrames = await swayingPhotoFrames(DEMO_FACES.annaIn3, 8);
    const [east, west] = await Promise.all([ws('gate-east'), ws('gate-west')]);
    await Promise.all([streamFrames(east, realFrames, 24, 10), streamFrames(west, realFrames, 24, 10)]);
    const status = await until(
      () => device('GET', `/api/v1/attendance/check-in-status/${anna.id}`),
      (r) => r.json.checkedIn === true,
    );
    expect(['gate-east', 'gate-west']).toContain(status.json.record.cameraId);
    await new Promise((r) => setTimeout(r, 700));
    const all = (await operator('GET', `/api/v1/attendance/logs?personId=${anna.id}&includeRevoked=true`)).json;
    expect(all.items.map((r: Json) => r.revoked)).toEqual([false, true]);
    const events = (await device('GET', '/api/v1/events?after=0&limit=500&types=attendance_checked_in')).json.events;
    expect(events.filter((e: Json) => e.data.person_id === anna.id)).toHaveLength(2);
  }, 90_000);
});
