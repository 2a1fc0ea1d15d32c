import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFaceFixtures, type FaceFixtures } from './face-fixtures.ts';
import { DEMO_FACES, swayingPhotoFrames } from './frame-fixtures.ts';
import { client, createKey, imageForm, startTestApp, type Json, type TestApp } from './test-app.ts';
import { streamFrames, WsPeer } from './ws-peer.ts';

/*
 * Enrollment end to end on a real server with the real models: the circular scan over REST, guided
 * capture over REST and from a camera stream (WebSocket), the unknown → ask → register flow, the
 * refusal of a duplicate, a change of person mid-enrollment, cancel and timeout. Every test ends
 * with the store and the index in step (GET /api/v1/gallery/status?check=true).
 *
 * The sample photos are all near-frontal, so the test config widens every angle's tolerance to
 * the whole circle and the scan grid to one bin: each photo counts for every pose.
 */

const WIDE = 180;
const ANGLES = [
  { name: 'front', yawDeg: 0, pitchDeg: 0, toleranceDeg: WIDE, instruction: 'Look straight at the camera' },
  { name: 'left', yawDeg: 25, pitchDeg: 0, toleranceDeg: WIDE, instruction: 'Turn your head slightly to your left' },
  { name: 'right', yawDeg: -25, pitchDeg: 0, toleranceDeg: WIDE, instruction: 'Turn your head slightly to your right' },
  { name: 'up', yawDeg: 0, pitchDeg: 15, toleranceDeg: WIDE, instruction: 'Tilt your head slightly up' },
  { name: 'down', yawDeg: 0, pitchDeg: -15, toleranceDeg: WIDE, instruction: 'Tilt your head slightly down' },
];
const IDLE_TIMEOUT_MS = 5000;

const isEvent = (type: string, camera: string) => (m: Json) => m.type === type && m.camera_id === camera;

describe('enrollment (real server, real models)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-enroll-'));
  let t: TestApp;
  let wsBase: string;
  let admin: ReturnType<typeof client>;
  let operator: ReturnType<typeof client>;
  let operatorKey: string;
  let fx: FaceFixtures;
  let events: WsPeer;
  const sockets: WsPeer[] = [];

  const inStep = async (): Promise<void> => {
    const status = await admin('GET', '/api/v1/gallery/status?check=true');
    expect(status.status).toBe(200);
    expect(status.json.lastCheck.inStep).toBe(true);
  };
  const peopleCount = async (): Promise<number> => (await admin('GET', '/api/v1/people?limit=1')).json.total;
  const mirrored = async (jpeg: Buffer): Promise<Buffer> => sharp(jpeg).flop().jpeg({ quality: 90 }).toBuffer();

  beforeAll(async () => {
    t = await startTestApp(dataDir, {
      realtime: { askAfterStableMs: 500, askAgainAfterMs: 1500, defaultMaxFps: 10 },
      enrollment: {
        angles: ANGLES,
        framesPerAngle: 1,
        holdMs: 0,
        maxPoseStepDeg: 90,
        templatesPerPose: 2,
        idleTimeoutMs: IDLE_TIMEOUT_MS,
        // The sample photos are flat pictures of near-frontal faces: the parallax check (bench:enroll, unit tests) would judge them as such.
        minParallax: 0,
        scan: { yawEdgesDeg: [-90, 90], pitchEdgesDeg: [-90, 90], keepPerBin: 3, minCoveredBins: 1 },
      },
    });
    wsBase = t.base.replace(/^http/, 'ws');
    admin = client(t.base, t.printedKey!);
    operatorKey = await createKey(admin, 'operator');
    operator = client(t.base, operatorKey);
    fx = await loadFaceFixtures();
    events = await WsPeer.open(`${wsBase}/api/v1/events`, operatorKey);
    sockets.push(events);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(sockets.map((s) => s.close()));
    await t?.app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  let anna: string;

  it('circular scan over REST: seed 002 body, frames as multipart, raw JPEG and base64, live coverage, one person with the best templates', async () => {
    const start = await operator('POST', '/api/v1/enrollments', { employee_code: 'EMP001', full_name: 'Anna Scan', email: 'anna@example.com', department: 'Engineering' });
    expect(start.status).toBe(201);
    expect(start.json).toMatchObject({ mode: 'scan', status: 'capturing', personId: null, name: 'Anna Scan', progress: 0 });
    const id = start.json.id;

    const viaForm = await operator('POST', `/api/v1/enrollments/${id}/frames`, imageForm([fx.a1]));
    expect(viaForm.status).toBe(200);
    expect(viaForm.json.frame).toMatchObject({ faces: 1, accepted: true, problem: null });
    expect(viaForm.json.session.coverage).toMatchObject({ coveredBins: 1, totalBins: 1, coverage: 100 });

    const raw = await fetch(`${t.base}/api/v1/enrollments/${id}/frames`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operatorKey}`, 'content-type': 'image/jpeg' },
      body: new Uint8Array(fx.a2),
    });
    expect(raw.status).toBe(200);
    for (const frame of [fx.a3, await mirrored(fx.a1)]) {
      const res = await operator('POST', `/api/v1/enrollments/${id}/frames`, { frame_data: frame.toString('base64'), frame_number: 3, timestamp: Date.now() / 1000 });
      expect(res.status).toBe(200);
    }
    // A frame with no face is answered, not kept.
    const empty = await operator('POST', `/api/v1/enrollments/${id}/frames`, { image: fx.noFace.toString('base64') });
    expect(empty.json.frame).toMatchObject({ faces: 0, accepted: false, problem: 'no_face' });
    const before = await operator('GET', `/api/v1/enrollments/${id}`);
    expect(before.json).toMatchObject({ status: 'capturing', framesReceived: 5, framesUsed: 4 });
    expect(before.json.coverage.bins[0].kept).toBe(3);

    const done = await operator('POST', `/api/v1/enrollments/${id}/complete`);
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({ status: 'complete', progress: 100, name: 'Anna Scan', failure: null });
    expect(done.json.templates).toHaveLength(2);
    for (const tpl of done.json.templates) {
      expect(tpl.pose.label).toBe('frontal');
      expect(tpl.quality).toBeGreaterThan(0);
    }
    anna = done.json.personId;
    const person = await admin('GET', `/api/v1/people/${anna}`);
    expect(person.json).toMatchObject({ externalId: 'EMP001', name: 'Anna Scan', email: 'anna@example.com', department: 'Engineering' });
    const faces = await admin('GET', `/api/v1/people/${anna}/faces`);
    expect(faces.json.items.map((f: Json) => f.source)).toEqual(['enrollment', 'enrollment']);
    // Completing again answers the same; a frame after the end is refused.
    expect((await operator('POST', `/api/v1/enrollments/${id}/complete`)).json.status).toBe('complete');
    expect((await operator('POST', `/api/v1/enrollments/${id}/frames`, { image: fx.a1.toString('base64') })).status).toBe(409);
    // The enrolled person is recognised.
    const recognized = await operator('POST', '/api/v1/recognize', imageForm([fx.a3]));
    expect(JSON.stringify(recognized.json)).toContain(anna);
    await inStep();
  }, 60_000);

  it('refuses a duplicate: the same face under another name fails with duplicate and her id, nothing saved', async () => {
    const count = await peopleCount();
    const start = await operator('POST', '/api/v1/enrollments', { person: { name: 'Anna Again' } });
    const id = start.json.id;
    await operator('POST', `/api/v1/enrollments/${id}/frames`, imageForm([fx.a2]));
    const done = await operator('POST', `/api/v1/enrollments/${id}/complete`);
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({ status: 'failed', personId: null, failure: { reason: 'duplicate', duplicateOf: anna } });
    expect(await peopleCount()).toBe(count);
    // Adding templates to her own record on purpose is no duplicate.
    const more = await operator('POST', '/api/v1/enrollments', { personId: anna, mode: 'scan' });
    await operator('POST', `/api/v1/enrollments/${more.json.id}/frames`, imageForm([fx.a3]));
    const added = await operator('POST', `/api/v1/enrollments/${more.json.id}/complete`);
    expect(added.json).toMatchObject({ status: 'complete', personId: anna });
    expect(await peopleCount()).toBe(count);
    // Overriding the check for a new person needs admin.
    expect((await operator('POST', '/api/v1/enrollments', { person: { name: 'Twin' }, allowDuplicate: true })).status).toBe(403);
    await inStep();
  }, 60_000);

  it('a change of person mid-enrollment fails: scan → inconsistent, guided → person_changed; nothing saved', async () => {
    const count = await peopleCount();
    const scan = await operator('POST', '/api/v1/enrollments', { person: { name: 'Mixed' } });
    for (const frame of [fx.b1, fx.stranger, fx.b2]) await operator('POST', `/api/v1/enrollments/${scan.json.id}/frames`, imageForm([frame]));
    const done = await operator('POST', `/api/v1/enrollments/${scan.json.id}/complete`);
    expect(done.json).toMatchObject({ status: 'failed', failure: { reason: 'inconsistent' } });

    const guided = await operator('POST', '/api/v1/enrollments', { mode: 'guided', person: { name: 'Swapped' } });
    expect(guided.json.guidance).toMatchObject({ angle_name: 'front', angle_number: 1, total_angles: 5 });
    const first = await operator('POST', `/api/v1/enrollments/${guided.json.id}/frames`, imageForm([fx.b1]));
    expect(first.json.frame.accepted).toBe(true);
    expect(first.json.session.guidance).toMatchObject({ angle_name: 'left', angle_number: 2, angles_done: ['front'] });
    const swapped = await operator('POST', `/api/v1/enrollments/${guided.json.id}/frames`, imageForm([fx.stranger]));
    expect(swapped.json.session).toMatchObject({ status: 'failed', failure: { reason: 'person_changed' } });
    expect(await peopleCount()).toBe(count);
    await inStep();
  }, 60_000);

  it('guided capture over REST walks the five angles and saves itself', async () => {
    const start = await operator('POST', '/api/v1/enrollments', { mode: 'guided', person: { name: 'Bea', externalId: 'B-1' } });
    const id = start.json.id;
    const frames = [fx.b1, fx.b2, await mirrored(fx.b1), fx.b1, fx.b2];
    let last: Json;
    for (const frame of frames) {
      last = await operator('POST', `/api/v1/enrollments/${id}/frames`, imageForm([frame]));
      expect(last.status).toBe(200);
    }
    expect(last.json.session).toMatchObject({ status: 'complete', progress: 100, name: 'Bea' });
    const labels = last.json.session.templates.map((tpl: Json) => tpl.pose.label).sort();
    expect(labels).toEqual(['down', 'frontal', 'left', 'right', 'up']);
    await inStep();
  }, 60_000);

  it('cancel (DELETE) and timeout end an enrollment with nothing saved', async () => {
    const count = await peopleCount();
    const start = await operator('POST', '/api/v1/enrollments', { person: { name: 'Gone' } });
    await operator('POST', `/api/v1/enrollments/${start.json.id}/frames`, imageForm([fx.stranger]));
    const cancelled = await operator('DELETE', `/api/v1/enrollments/${start.json.id}`);
    expect(cancelled.json).toMatchObject({ status: 'cancelled', failure: { reason: 'cancelled' } });
    expect((await operator('DELETE', `/api/v1/enrollments/${start.json.id}`)).status).toBe(409);
    expect((await operator('POST', `/api/v1/enrollments/${start.json.id}/complete`)).json).toMatchObject({ code: 'enrollment_finished' });
    expect((await operator('GET', '/api/v1/enrollments/nope')).status).toBe(404);

    const idle = await operator('POST', '/api/v1/enrollments', { mode: 'guided', person: { name: 'Idle' } });
    await new Promise((r) => setTimeout(r, IDLE_TIMEOUT_MS + 1200));
    const timedOut = await operator('GET', `/api/v1/enrollments/${idle.json.id}`);
    expect(timedOut.json).toMatchObject({ status: 'failed', failure: { reason: 'timeout' } });
    expect(await peopleCount()).toBe(count);
    await inStep();
  }, 60_000);

  it('guided capture from a camera stream (WebSocket): instructions, angles, registration_complete; cancel by WS message', async () => {
    const camera = 'enroll-cam';
    const mark = events.messages.length;
    const start = await operator('POST', '/api/v1/enrollments', { mode: 'guided', person: { name: 'Stream Stranger' }, cameraId: camera });
    expect(start.status).toBe(201);
    expect((await operator('POST', '/api/v1/enrollments', { mode: 'guided', person: { name: 'Other' }, cameraId: camera })).status).toBe(409);
    const stream = await WsPeer.open(`${wsBase}/api/v1/stream?camera=${camera}`, operatorKey);
    sockets.push(stream);
    const frames = await swayingPhotoFrames(DEMO_FACES.strangerIn3, 10);
    const sending = streamFrames(stream, frames, 80, 8);
    const complete = await events.waitFor(isEvent('registration_complete', camera), 30_000, mark);
    await sending;
    const mine = events.messages.slice(mark).filter((m) => m.camera_id === camera);
    const types = mine.map((m) => m.type);
    expect(types).toContain('registration_start');
    const instructions = mine.filter((m) => m.type === 'registration_angle_instruction');
    expect(instructions[0].data).toMatchObject({ angle_name: 'front', angle_number: 1, total_angles: 5 });
    expect(instructions.some((m) => m.data.angle_name === 'down' && m.data.pose_error && typeof m.data.pose_error.yaw === 'number')).toBe(true);
    expect(mine.filter((m) => m.type === 'registration_angle_complete').map((m) => m.data.angle_name)).toEqual(['front', 'left', 'right', 'up', 'down']);
    expect(complete.data.person_id).toBeTruthy();
    expect(complete.track_id).toBeTruthy();
    const session = await operator('GET', `/api/v1/enrollments/${start.json.id}`);
    expect(session.json).toMatchObject({ status: 'complete', personId: complete.data.person_id, trackId: complete.track_id });
    const status = await operator('GET', `/api/v1/system/status?camera=${camera}`);
    expect(status.json).toMatchObject({ registration_in_progress: false, registration_progress: 100 });

    // A second enrollment on the camera, cancelled by a WebSocket message.
    const again = await operator('POST', '/api/v1/enrollments', { mode: 'guided', person: { name: 'Never' }, cameraId: camera });
    const during = await operator('GET', `/api/v1/system/status?camera=${camera}`);
    expect(during.json.registration_in_progress).toBe(true);
    expect(during.json.enrollments).toContainEqual(expect.objectContaining({ id: again.json.id, mode: 'guided', status: 'capturing', cameraId: camera }));
    const mark2 = events.messages.length;
    events.send({ type: 'registration_cancel', data: { camera_id: camera } });
    const failed = await events.waitFor(isEvent('registration_failed', camera), 5000, mark2);
    expect(failed.data.reason).toBe('cancelled');
    expect((await operator('GET', `/api/v1/enrollments/${again.json.id}`)).json.status).toBe('cancelled');
    await stream.close();
    await inStep();
  }, 90_000);

  it('unknown → ask → register over WebSocket; "no" saves nothing and the track is asked again only after askAgainAfterMs', async () => {
    const camera = 'door-ask';
    const mark = events.messages.length;
    const count = await peopleCount();
    const stream = await WsPeer.open(`${wsBase}/api/v1/stream?camera=${camera}`, operatorKey);
    sockets.push(stream);
    const frames = await swayingPhotoFrames(DEMO_FACES.annaIn1, 10);
    // Anna is enrolled: delete her so her face is unknown again.
    expect((await admin('DELETE', `/api/v1/people/${anna}`)).status).toBe(204);
    let streaming = true;
    const pump = (async () => {
      while (streaming) await streamFrames(stream, frames, 10, 8);
    })();
    try {
      const asked = await events.waitFor((m) => isEvent('unknown_person_detected', camera)(m) && m.data.show_registration_dialog, 20_000, mark);
      events.send({ type: 'registration_decision', data: { register: false, camera_id: camera } });
      const declined = await events.waitFor(isEvent('registration_cancelled', camera), 5000, mark);
      expect(declined.track_id).toBe(asked.track_id);
      const declinedAt = Date.now();
      const askedAgain = await events.waitFor(
        (m) => isEvent('unknown_person_detected', camera)(m) && m.data.show_registration_dialog && m.id > declined.id,
        20_000,
        mark,
      );
      expect(askedAgain.track_id).toBe(asked.track_id);
      expect(Date.now() - declinedAt).toBeGreaterThanOrEqual(1400);
      expect(await peopleCount()).toBe(count - 1);

      events.send({ type: 'registration_decision', data: { register: true, camera_id: camera } });
      await events.waitFor(isEvent('registration_approved', camera), 5000, mark);
      const started = await events.waitFor(isEvent('registration_start', camera), 5000, mark);
      expect(started.track_id).toBe(asked.track_id);
      const complete = await events.waitFor(isEvent('registration_complete', camera), 30_000, mark);
      expect(complete.track_id).toBe(asked.track_id);
      const person = await admin('GET', `/api/v1/people/${complete.data.person_id}`);
      expect(person.json.name).toMatch(/^Unknown \d{4}-\d{2}-\d{2} \d{2}:\d{2}$/);
      // The name is filled in later.
      const named = await admin('PATCH', `/api/v1/people/${complete.data.person_id}`, { name: 'Anna Returned' });
      expect(named.json.name).toBe('Anna Returned');
      expect(await peopleCount()).toBe(count);
    } finally {
      streaming = false;
      await pump;
    }
    await stream.close();
    await inStep();
  }, 90_000);
});
