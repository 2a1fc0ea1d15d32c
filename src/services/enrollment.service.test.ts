import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../config/config.ts';
import { projectFace3D } from '../domain/face3d.fixture.ts';
import type { Point } from '../domain/types.ts';
import { EventBus } from '../events/event-bus.ts';
import type { AnyFacegateEvent } from '../events/event-map.ts';
import { migrateToLatest, openDatabase, type Store } from '../store/index.ts';
import type { AnalyzedFace, AnalyzeOptions, AnalyzeResult, EmbedFacesResult } from '../vision/analysis.ts';
import type { FrameObserver } from './camera-pipeline.service.ts';
import { EnrollmentService } from './enrollment.service.ts';
import { GalleryService } from './gallery.service.ts';
import { PeopleService } from './people.service.ts';

/*
 * The enrollment service over a real store, gallery and event bus; the vision pool is replaced by
 * prepared analyses (the first byte of a "frame" picks one), so poses, landmarks and embeddings are
 * exactly what each case needs. The real models run in test/api/enrollment.test.ts.
 */

const MODEL = 'model-a';
const DIMS = 8;

function unit(...values: number[]): Float32Array {
  const v = new Float32Array(DIMS);
  values.forEach((x, i) => (v[i] = x));
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

/** The synthetic head's landmarks at a yaw, in a 400 px frame; flat = a photo of it. */
const project = (yawDeg: number, flat: boolean): Point[] => projectFace3D(yawDeg, { flat, center: 200, scale: 3 });

function face(yawDeg: number, pitchDeg: number, options: { flat?: boolean } = {}): AnalyzedFace {
  const landmarks = project(yawDeg, options.flat === true);
  return {
    box: { x: 100, y: 100, width: 200, height: 200 },
    score: 0.9,
    landmarks5: landmarks.slice(0, 5) as AnalyzedFace['landmarks5'],
    landmarks,
    pose: { yawDeg, pitchDeg, rollDeg: 0 },
    quality: { score: 0.8, pass: true, sizePx: 200, checks: [] },
  };
}

interface Prepared {
  faces: AnalyzedFace[];
  vector: Float32Array;
}

class PreparedVision {
  constructor(private readonly frames: Prepared[]) {}
  async analyze(bytes: Uint8Array, options: AnalyzeOptions): Promise<AnalyzeResult> {
    const frame = this.frames[bytes[0]!]!;
    const faces = options.embed === 'none' ? frame.faces : frame.faces.map((f) => ({ ...f, embedding: { vector: frame.vector, modelId: MODEL } }));
    return { width: 640, height: 480, faces, timingsMs: {} };
  }
  async embedFaces(bytes: Uint8Array): Promise<EmbedFacesResult> {
    return { faces: [{ embedding: { vector: this.frames[bytes[0]!]!.vector, modelId: MODEL }, liveness: 0.9 }], timingsMs: {} };
  }
}

class Cameras {
  readonly observers = new Map<string, FrameObserver>();
  registrations = 0;
  trackIds = new Set<string>();
  observeFrames(cameraId: string, observer: FrameObserver): () => void {
    this.observers.set(cameraId, observer);
    return () => this.observers.delete(cameraId);
  }
  countRegistration(): void {
    this.registrations++;
  }
  tracks(): { id: string }[] {
    return [...this.trackIds].map((id) => ({ id }));
  }
}

const ANGLES = [
  { name: 'front', yawDeg: 0, pitchDeg: 0, toleranceDeg: 8, instruction: 'Look straight at the camera' },
  { name: 'left', yawDeg: 25, pitchDeg: 0, toleranceDeg: 8, instruction: 'Turn left' },
  { name: 'right', yawDeg: -25, pitchDeg: 0, toleranceDeg: 8, instruction: 'Turn right' },
];

describe('EnrollmentService (real store, gallery and bus; prepared analyses)', () => {
  let dir: string;
  let store: Store;
  let gallery: GalleryService;
  let bus: EventBus;
  let events: AnyFacegateEvent[];
  let cameras: Cameras;
  let services: EnrollmentService[];

  // Frames: 0 frontal, 1 left, 2 right (a real head); 3 left, 4 right (a flat photo turned); 5 someone else frontal.
  const person = unit(1, 0.2, 0.1);
  const frames: Prepared[] = [
    { faces: [face(0, 0)], vector: person },
    { faces: [face(25, 0)], vector: unit(1, 0.25, 0.1) },
    { faces: [face(-25, 0)], vector: unit(1, 0.2, 0.15) },
    { faces: [face(25, 0, { flat: true })], vector: unit(1, 0.25, 0.1) },
    { faces: [face(-25, 0, { flat: true })], vector: unit(1, 0.2, 0.15) },
    { faces: [face(0, 0)], vector: unit(0, 1, 0) },
    // 6: an augmented copy of one of the frames (the same person).
    { faces: [face(0, 0)], vector: unit(1, 0.22, 0.12) },
  ];
  const bytes = (i: number) => new Uint8Array([i]);

  const service = (overrides: Record<string, unknown> = {}) => {
    const config = configSchema.shape.enrollment.parse({ angles: ANGLES, framesPerAngle: 1, holdMs: 0, minParallax: 0.08, ...overrides });
    const people = new PeopleService({ store, gallery, vision: { analyze: () => Promise.reject(new Error('unused')) }, duplicateThreshold: 0.5, searchK: 5, storeThumbnails: false, minFaceSizePx: 48 });
    const s = new EnrollmentService({
      vision: new PreparedVision(frames),
      people,
      bus,
      cameras,
      config,
      verifyThreshold: 0.4,
      livenessThreshold: 0.2,
      minFaceSizePx: 48,
      storeThumbnails: false,
      augment: async () => bytes(6),
    });
    services.push(s);
    return s;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'facegate-enrollment-service-'));
    store = await openDatabase({ dataDir: dir, database: { poolSize: 1 } });
    await migrateToLatest(store);
    gallery = new GalleryService(store, { modelId: MODEL, dir: join(dir, 'gallery'), saveEveryMs: 0, hnswAboveTemplates: 1000 });
    await gallery.start();
    bus = new EventBus();
    events = [];
    bus.subscribe((e) => void events.push(e));
    cameras = new Cameras();
    services = [];
  });
  afterEach(async () => {
    for (const s of services) await s.close();
    await gallery.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Feeds a camera frame through the observer seam and waits for the session to judge it. */
  const cameraFrame = async (camera: string, i: number, trackId = 'track-1') => {
    cameras.observers.get(camera)!({
      cameraId: camera,
      frame: { cameraId: camera, seq: i, receivedAtMs: Date.now(), bytes: bytes(i) },
      analysis: { width: 640, height: 480, faces: frames[i]!.faces, timingsMs: {} },
      trackIds: [trackId],
    });
    await new Promise((r) => setTimeout(r, 5));
  };

  it('guided capture on a camera: binds the only track, emits the angle events, saves once, counts the registration', async () => {
    const s = service();
    const started = await s.start({ mode: 'guided', person: { name: 'Ann' }, cameraId: 'kiosk' });
    for (const i of [0, 1, 2]) await cameraFrame('kiosk', i);
    const done = s.get(started.id);
    expect(done).toMatchObject({ status: 'complete', trackId: 'track-1', name: 'Ann' });
    expect(done.templates.map((t) => t.pose.label)).toEqual(['frontal', 'left', 'right']);
    const types = events.map((e) => e.type);
    expect(types.filter((t) => t === 'registration_angle_complete')).toHaveLength(3);
    expect(types.at(-1)).toBe('registration_complete');
    expect(events.at(-1)).toMatchObject({ camera_id: 'kiosk', track_id: 'track-1', data: { person_id: done.personId } });
    expect(cameras.registrations).toBe(1);
    expect(cameras.observers.size).toBe(0);
    expect(gallery.size).toBe(3);
  });

  it('runs enrollments on two cameras at once, one per camera', async () => {
    const s = service();
    const a = await s.start({ mode: 'guided', person: { name: 'Ann' }, cameraId: 'door' });
    await expect(s.start({ mode: 'guided', person: { name: 'Again' }, cameraId: 'door' })).rejects.toMatchObject({ code: 'enrollment_running' });
    const b = await s.start({ mode: 'guided', person: { name: 'Other' }, cameraId: 'hall', trackId: 'track-9' });
    await cameraFrame('door', 0);
    await cameraFrame('hall', 5, 'track-9');
    await cameraFrame('door', 1);
    await cameraFrame('door', 2);
    expect(s.get(a.id).status).toBe('complete');
    expect(s.get(b.id)).toMatchObject({ status: 'capturing', progress: 33, guidance: { angle_name: 'left', angles_done: ['front'] } });
    expect(events.filter((e) => e.camera_id === 'hall' && e.type === 'registration_angle_complete')).toHaveLength(1);
  });

  it('adds augmented templates when asked, a mirrored left labelled right', async () => {
    const s = service({ augmentation: ['flip', 'blur'] });
    const started = await s.start({ mode: 'guided', person: { name: 'Ann' } });
    for (const i of [0, 1, 2]) await s.addFrame(started.id, bytes(i));
    const done = s.get(started.id);
    expect(done.status).toBe('complete');
    expect(done.templates).toHaveLength(9);
    const labels = done.templates.map((t) => `${t.pose.label}:${t.pose.yawDeg}`).sort();
    // left's flip is a right, right's flip a left: three of each.
    expect(labels).toEqual(['frontal:0', 'frontal:0', 'frontal:0', 'left:25', 'left:25', 'left:25', 'right:-25', 'right:-25', 'right:-25']);
  });

  it('refuses a flat photo turned in front of the camera as planar_spoof, saving nothing', async () => {
    const s = service();
    const started = await s.start({ mode: 'guided', person: { name: 'Print' } });
    for (const i of [0, 3, 4]) await s.addFrame(started.id, bytes(i));
    expect(s.get(started.id)).toMatchObject({ status: 'failed', failure: { reason: 'planar_spoof' } });
    expect(gallery.size).toBe(0);
    expect((await store.people.list({})).total).toBe(0);
  });

  it('fails with left_area when the enrolled track leaves, and ignores other tracks', async () => {
    const s = service();
    const started = await s.start({ mode: 'guided', person: { name: 'Ann' }, cameraId: 'kiosk', trackId: 'track-7' });
    await cameraFrame('kiosk', 0, 'track-8');
    expect(s.get(started.id)).toMatchObject({ status: 'capturing', framesUsed: 0 });
    bus.emit('person_left_area', { camera_id: 'kiosk', track_id: 'track-8' });
    expect(s.get(started.id).status).toBe('capturing');
    bus.emit('person_left_area', { camera_id: 'kiosk', track_id: 'track-7' });
    expect(s.get(started.id)).toMatchObject({ status: 'failed', failure: { reason: 'left_area' } });
    expect(events.at(-1)).toMatchObject({ type: 'registration_failed', track_id: 'track-7', data: { reason: 'left_area' } });
  });

  it('"register" for a live track starts a nameless guided capture on it; for a gone track nothing', async () => {
    const s = service();
    const decide = (s as unknown as { onDecision(d: { cameraId: string; trackId: string | null; register: boolean }): Promise<void> }).onDecision.bind(s);
    await decide({ cameraId: 'door', trackId: 'gone', register: true });
    expect(s.list()).toHaveLength(0);
    cameras.trackIds.add('t1');
    await decide({ cameraId: 'door', trackId: 't1', register: false });
    expect(s.list()).toHaveLength(0);
    await decide({ cameraId: 'door', trackId: 't1', register: true });
    const [session] = s.list();
    expect(session).toMatchObject({ mode: 'guided', cameraId: 'door', trackId: 't1', status: 'capturing' });
    expect(session!.name).toMatch(/^Unknown \d{4}-\d{2}-\d{2} \d{2}:\d{2}$/);
  });

  it('times out a session that gets no frames', async () => {
    let now = 1_000_000;
    const s = service({ idleTimeoutMs: 1000 });
    (s as unknown as { now: () => number }).now = () => now;
    const started = await s.start({ mode: 'scan', person: { name: 'Idle' } });
    now += 1500;
    (s as unknown as { sweep(): void }).sweep();
    expect(s.get(started.id)).toMatchObject({ status: 'failed', failure: { reason: 'timeout' } });
  });
});
