import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFaceFixtures } from './face-fixtures.ts';
import { DEMO_FACES, emptyFrame, swayingPhotoFrames } from './frame-fixtures.ts';
import { client, createKey, startTestApp, type Json, type TestApp } from './test-app.ts';
import { streamFrames, WsPeer } from './ws-peer.ts';
import { SKIP_WITHOUT_FFMPEG } from '../sources/video-fixtures.ts';

/*
 * The camera pipeline end to end on a real server with the real models: frames streamed over
 * WebSocket /api/v1/stream and a video file camera read by ffmpeg become recognition results with
 * stable track ids, and events on /api/v1/events — person_recognized once per track for an
 * enrolled face, unknown_person_detected (then the registration offer) for a stranger, and
 * person_left_area / system_ready when they go. Anna is enrolled from one photo (sample3) and
 * streamed from another (sample1).
 */

const LEFT_AFTER_MS = 1200;
const FPS = 12;

const isEvent = (type: string, camera: string) => (m: Json) => m.type === type && m.camera_id === camera;


describe('camera pipeline (real server, real models)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-pipeline-'));
  const videosDir = mkdtempSync(join(tmpdir(), 'facegate-pipeline-videos-'));
  let t: TestApp;
  let wsBase: string;
  let admin: ReturnType<typeof client>;
  let deviceKey: string;
  let device: ReturnType<typeof client>;
  let anna: Json;
  let events: WsPeer;
  let annaFrames: Buffer[];
  let strangerFrames: Buffer[];
  let empty: Buffer;
  const sockets: WsPeer[] = [];

  const openStream = async (camera: string): Promise<WsPeer> => {
    const peer = await WsPeer.open(`${wsBase}/api/v1/stream?camera=${camera}`, deviceKey);
    sockets.push(peer);
    return peer;
  };

  beforeAll(async () => {
    t = await startTestApp(dataDir, {
      realtime: { askAfterStableMs: 600, defaultMaxFps: 15, tracker: { leftAfterMs: LEFT_AFTER_MS } },
      sources: { allowedFileRoots: [videosDir] },
    });
    wsBase = t.base.replace(/^http/, 'ws');
    admin = client(t.base, t.printedKey!);
    deviceKey = await createKey(admin, 'device');
    device = client(t.base, deviceKey);
    const fx = await loadFaceFixtures();
    anna = (await admin('POST', '/api/v1/people', { name: 'Anna', externalId: 'R-1' })).json;
    const added = await admin('POST', `/api/v1/people/${anna.id}/faces`, { images: [fx.a3.toString('base64')] });
    expect(added.json.added).toBe(1);
    annaFrames = await swayingPhotoFrames(DEMO_FACES.annaIn1, 12);
    strangerFrames = await swayingPhotoFrames(DEMO_FACES.strangerIn3, 12);
    empty = await emptyFrame();
    events = await WsPeer.open(`${wsBase}/api/v1/events`, deviceKey);
    sockets.push(events);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(sockets.map((s) => s.close()));
    await t?.app.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(videosDir, { recursive: true, force: true });
  });

  it('an enrolled face streamed over WebSocket: results with one stable track, person_recognized once, then person_left_area', async () => {
    const camera = 'kiosk-a';
    const stream = await openStream(camera);
    await streamFrames(stream, annaFrames, 30, FPS, { json: true, firstFrameId: 1 });

    const results = stream.messages.filter((m) => m.type === 'recognition_result');
    expect(results.length).toBeGreaterThanOrEqual(15);
    for (const r of results) {
      expect(r).toMatchObject({ camera_id: camera, width: 640, height: 480 });
      expect(typeof r.frame_id).toBe('number');
      expect(r.faces).toHaveLength(1);
    }
    const trackIds = new Set(results.map((r) => r.faces[0].track_id));
    expect(trackIds.size).toBe(1);
    const [trackId] = trackIds;
    const named = results.filter((r) => r.faces[0].person_id === anna.id);
    // Named within a second of the face appearing (usually the first or second frame), and from then on.
    expect(results.indexOf(named[0])).toBeLessThan(FPS);
    expect(named.length).toBeGreaterThanOrEqual(results.length - FPS);
    expect(named.at(-1)).toBe(results.at(-1));
    const face = named.at(-1).faces[0];
    expect(face).toMatchObject({ name: 'Anna', is_unknown: false, track_id: trackId });
    expect(face.confidence).toBeGreaterThan(0.5);
    expect(face.bbox).toHaveLength(4);
    expect(face.bbox[2]).toBeGreaterThan(100);
    expect(face.quality).toBeGreaterThan(0);
    expect(face.liveness).toBeGreaterThan(0.2);

    const recognized = await events.waitFor(isEvent('person_recognized', camera));
    expect(recognized).toMatchObject({ track_id: trackId, data: { person_id: anna.id, name: 'Anna', external_id: 'R-1' } });

    // A corrupt JPEG gets an error result; the stream goes on.
    const mark = stream.messages.length;
    stream.send(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(2000, 7)]));
    const failed = await stream.waitFor((m) => m.type === 'recognition_result' && m.error, 5000, mark);
    expect(failed).toMatchObject({ camera_id: camera, faces: [], error: { code: 'invalid_image' } });

    // The face goes: frames without it until the track leaves.
    await streamFrames(stream, [empty], Math.ceil(((LEFT_AFTER_MS + 800) / 1000) * FPS), FPS);
    const left = await events.waitFor(isEvent('person_left_area', camera), 5000);
    expect(left).toMatchObject({ track_id: trackId, data: { person_id: anna.id } });
    await events.waitFor(isEvent('system_ready', camera), 5000);
    expect(events.messages.filter(isEvent('person_recognized', camera))).toHaveLength(1);
    expect(stream.messages.filter((m) => m.type === 'recognition_result').at(-1).faces).toEqual([]);

    // One recognition log row for the track's decision, not one per frame.
    const log = await admin('GET', `/api/v1/recognition/log?cameraId=${camera}`);
    expect(log.json.items).toHaveLength(1);
    expect(log.json.items[0]).toMatchObject({ trackId, personId: anna.id, decision: 'match' });

    const status = await device('GET', `/api/v1/system/status?camera=${camera}`);
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({ camera_id: camera, current_event: 'system_ready', person_in_detection_area: false });
    const cam = status.json.cameras.find((c: Json) => c.camera_id === camera);
    expect(cam.pipeline.framesProcessed).toBeGreaterThanOrEqual(results.length);
    expect(cam.pipeline.frameErrors).toBe(1);
    expect(cam.pipeline.recognitions).toBe(1);
    expect(cam.pipeline.activeTracks).toBe(0);
    expect(cam.pipeline.framesIn).toBe(cam.pipeline.framesProcessed + cam.pipeline.framesDropped + cam.pipeline.frameErrors);
    expect(status.json.vision.workers).toBe(1);

    const metrics = await admin('GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.type).toContain('text/plain');
    expect(metrics.json).toMatch(new RegExp(`facegate_camera_frames_processed_total\\{camera="${camera}"\\} ${cam.pipeline.framesProcessed}`));
    expect(metrics.json).toContain(`facegate_camera_frame_latency_seconds_count{camera="${camera}"}`);
    expect(metrics.json).toContain('facegate_vision_queued_jobs');
    expect(metrics.json).toContain('facegate_process_resident_memory_bytes');
    expect((await device('GET', '/metrics')).status).toBe(403);
  }, 60_000);

  it('a stranger: unknown_person_detected, the registration offer once stable, no second offer after "no", then person_left_area', async () => {
    const camera = 'kiosk-b';
    const stream = await openStream(camera);
    const streaming = streamFrames(stream, strangerFrames, Math.round(3.5 * FPS), FPS);
    const unknown = await events.waitFor(isEvent('unknown_person_detected', camera), 15_000);
    expect(unknown.data).toMatchObject({ reason: 'below_threshold', show_registration_dialog: false, action_required: false });
    const offer = await events.waitFor((m) => isEvent('unknown_person_detected', camera)(m) && m.data.show_registration_dialog, 10_000);
    expect(offer.track_id).toBe(unknown.track_id);
    expect(offer.data.action_required).toBe(true);
    expect((await device('GET', `/api/v1/system/status?camera=${camera}`)).json).toMatchObject({ waiting_for_user_response: true, waiting_track_id: offer.track_id });

    const decided = await device('POST', '/api/v1/decisions', { camera_id: camera, register: false });
    expect(decided.status).toBe(200);
    await streaming;
    const results = stream.messages.filter((m) => m.type === 'recognition_result' && m.faces.length > 0);
    expect(new Set(results.map((r) => r.faces[0].track_id))).toEqual(new Set([unknown.track_id]));
    expect(results.at(-1).faces[0]).toMatchObject({ person_id: null, name: null, is_unknown: true, reason: 'below_threshold' });

    await streamFrames(stream, [empty], Math.ceil(((LEFT_AFTER_MS + 800) / 1000) * FPS), FPS);
    const left = await events.waitFor(isEvent('person_left_area', camera), 5000);
    expect(left).toMatchObject({ track_id: unknown.track_id, data: { person_id: null } });
    await events.waitFor(isEvent('system_ready', camera), 5000);
    const offers = events.messages.filter((m) => isEvent('unknown_person_detected', camera)(m) && m.data.show_registration_dialog);
    expect(offers).toHaveLength(1);
    expect(events.messages.filter(isEvent('person_recognized', camera))).toHaveLength(0);
    expect(events.messages.filter(isEvent('registration_cancelled', camera))).toHaveLength(1);
  }, 60_000);

  it('two cameras at once: each gets its own results and events; a reset announces a present person again', async () => {
    const [c, d] = await Promise.all([openStream('kiosk-c'), openStream('kiosk-d')]);
    const from = events.messages.length;
    await Promise.all([streamFrames(c, annaFrames, 2.5 * FPS, FPS), streamFrames(d, strangerFrames, 2.5 * FPS, FPS)]);
    const recognized = await events.waitFor(isEvent('person_recognized', 'kiosk-c'), 5000, from);
    expect(recognized.data.person_id).toBe(anna.id);
    await events.waitFor(isEvent('unknown_person_detected', 'kiosk-d'), 5000, from);
    for (const [peer, camera] of [[c, 'kiosk-c'], [d, 'kiosk-d']] as const) {
      const results = peer.messages.filter((m) => m.type === 'recognition_result');
      // Not every frame: on a busy machine the newest-frame-wins slot drops some, by design.
      expect(results.length).toBeGreaterThanOrEqual(3);
      expect(results.every((r) => r.camera_id === camera)).toBe(true);
    }
    expect(events.messages.slice(from).filter(isEvent('person_recognized', 'kiosk-d'))).toHaveLength(0);

    // A reset returns kiosk-c to system_ready; Anna, still there, is announced again.
    expect((await admin('POST', '/api/v1/system/reset', { camera_id: 'kiosk-c' })).status).toBe(200);
    const mark = events.messages.length;
    await streamFrames(c, annaFrames, 4, FPS);
    const again = await events.waitFor(isEvent('person_recognized', 'kiosk-c'), 5000, mark);
    expect(again.track_id).toBe(recognized.track_id);
  }, 60_000);

  it.skipIf(SKIP_WITHOUT_FFMPEG)('a video file camera (made with ffmpeg): Anna recognised and leaving, then a stranger detected and leaving', async () => {
    // 10 fps: Anna 2.5 s, nobody 2 s, the stranger 2.5 s, nobody 2 s.
    const framesDir = mkdtempSync(join(tmpdir(), 'facegate-pipeline-frames-'));
    try {
      const sequence = [
        ...Array.from({ length: 25 }, (_, i) => annaFrames[i % annaFrames.length]!),
        ...Array.from({ length: 20 }, () => empty),
        ...Array.from({ length: 25 }, (_, i) => strangerFrames[i % strangerFrames.length]!),
        ...Array.from({ length: 20 }, () => empty),
      ];
      sequence.forEach((bytes, i) => writeFileSync(join(framesDir, `f${String(i).padStart(4, '0')}.jpg`), bytes));
      execFileSync('ffmpeg', ['-v', 'error', '-y', '-framerate', '10', '-i', join(framesDir, 'f%04d.jpg'), '-c:v', 'mjpeg', '-q:v', '3', join(videosDir, 'door.avi')]);
    } finally {
      await rm(framesDir, { recursive: true, force: true });
    }

    const from = events.messages.length;
    const created = await admin('POST', '/api/v1/cameras', { id: 'door-file', name: 'Door (file)', kind: 'file', path: 'door.avi', maxFps: 10 });
    expect(created.status).toBe(201);
    const camera = created.json.id as string;
    const recognized = await events.waitFor(isEvent('person_recognized', camera), 20_000, from);
    expect(recognized.data).toMatchObject({ person_id: anna.id, name: 'Anna' });
    const annaLeft = await events.waitFor((m) => isEvent('person_left_area', camera)(m) && m.track_id === recognized.track_id, 15_000, from);
    expect(annaLeft.data.person_id).toBe(anna.id);
    const unknown = await events.waitFor(isEvent('unknown_person_detected', camera), 20_000, from);
    expect(unknown.track_id).not.toBe(recognized.track_id);
    const strangerLeft = await events.waitFor((m) => isEvent('person_left_area', camera)(m) && m.track_id === unknown.track_id, 15_000, from);
    expect(strangerLeft.data.person_id).toBeNull();
    expect(events.messages.slice(from).filter(isEvent('person_recognized', camera))).toHaveLength(1);
    expect((await admin('DELETE', `/api/v1/cameras/${camera}`)).status).toBeLessThan(300);
  }, 60_000);
});
