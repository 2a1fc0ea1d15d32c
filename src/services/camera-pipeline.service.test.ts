import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/config.ts';
import { decideIdentity } from '../domain/identity.ts';
import { DecisionRegistry } from '../events/decisions.ts';
import { EventBus } from '../events/event-bus.ts';
import type { AnyFacegateEvent } from '../events/event-map.ts';
import { SystemState } from '../events/system-state.ts';
import type { Frame, RecognitionResultMessage } from '../sources/frame.ts';
import type { NewRecognitionLogEntry } from '../store/index.ts';
import type { AnalyzedFace, AnalyzeResult, EmbedFacesResult } from '../vision/analysis.ts';
import { InvalidImageError } from '../vision/errors.ts';
import { VisionOverloadedError } from '../vision/vision-pool.ts';
import { CameraPipeline, type SightingEvidence } from './camera-pipeline.service.ts';
import type { EmbeddingEvidence } from './recognition.service.ts';

/*
 * The pipeline's orchestration (latest frame, tracking, when to embed, the vote, events, the log,
 * sightings, decisions) with the real tracker, vote, event bus, system state and decision
 * registry. The face engine is scripted: a frame's first byte says who is in it ('A' = the
 * enrolled Anna, 'U' = a stranger, '0' = nobody, 'X' = an undecodable image, 'O' = the pool is
 * overloaded) — the models themselves are exercised by test/api/pipeline.test.ts.
 */

const MODEL = 'test-model';

function face(x: number): AnalyzedFace {
  return {
    box: { x, y: 100, width: 150, height: 150 },
    score: 0.99,
    landmarks5: [
      { x: x + 50, y: 150 },
      { x: x + 100, y: 150 },
      { x: x + 75, y: 180 },
      { x: x + 55, y: 210 },
      { x: x + 95, y: 210 },
    ],
    pose: { yawDeg: 0, pitchDeg: 0, rollDeg: 0 },
    quality: { score: 0.8, pass: true, sizePx: 150, checks: [] },
  };
}

/** A unit vector: Anna's points along the first axis, the stranger's along the second. */
function vector(who: string): Float32Array {
  const v = new Float32Array(4);
  v[who === 'A' ? 0 : 1] = 1;
  return v;
}

class ScriptedVision {
  readonly size = 1;
  embedded = 0;

  async analyze(bytes: Uint8Array): Promise<AnalyzeResult> {
    await new Promise((r) => setTimeout(r, 2));
    const tag = String.fromCharCode(bytes[0]!);
    if (tag === 'X') throw new InvalidImageError('the image could not be decoded');
    if (tag === 'O') throw new VisionOverloadedError(64);
    return { width: 640, height: 480, faces: tag === 'A' || tag === 'U' ? [face(200)] : [], timingsMs: {} };
  }

  async embedFaces(bytes: Uint8Array, faces: unknown[]): Promise<EmbedFacesResult> {
    this.embedded += faces.length;
    const who = String.fromCharCode(bytes[0]!);
    return { faces: faces.map(() => ({ embedding: { vector: vector(who), modelId: MODEL }, liveness: 0.9 })), timingsMs: {} };
  }
}

/** The identity decision over a one-person gallery (Anna), with the real decideIdentity rules. */
const recognition = {
  async decideEmbedding(input: EmbeddingEvidence) {
    const similarity = input.embedding.vector[0]!;
    const decision = decideIdentity(
      { faceFound: true, qualityPass: input.qualityPass, matches: [{ personId: 'anna', similarity }] },
      { searchThreshold: 0.5, minMargin: 0.05, scoring: { strategy: 'best' } },
    );
    const person = decision.decision === 'match' ? { id: 'anna', name: 'Anna', externalId: 'R-1', active: true } : null;
    return { decision, person, scorer: 'cosine' };
  },
};

function setup(realtime: Record<string, unknown> = {}) {
  const bus = new EventBus();
  const state = new SystemState();
  bus.subscribe((e) => state.apply(e));
  const decisions = new DecisionRegistry(bus, state);
  const events: AnyFacegateEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const log: NewRecognitionLogEntry[] = [];
  const sightings: [string, string, number, SightingEvidence | undefined][] = [];
  const vision = new ScriptedVision();
  const config = parseConfig({
    realtime: { defaultMaxFps: 0, askAfterStableMs: 100, askAgainAfterMs: 400, idleTickMs: 20, tracker: { leftAfterMs: 150 }, embedding: { reembedIntervalMs: 50 }, ...realtime },
  }).realtime;
  const pipeline = new CameraPipeline({
    vision,
    recognition,
    recognitionLog: { append: async (entry) => (log.push(entry), { id: log.length, at: Date.now(), ...entry }) as never },
    events: { bus, state, decisions },
    sessions: { sighted: (camera, person, confidence, _atMs, evidence) => sightings.push([camera, person, confidence, evidence]) },
    config,
    modelId: MODEL,
  });
  const results: RecognitionResultMessage[] = [];
  pipeline.onResult('cam', (r) => results.push(r));
  let seq = 0;
  const offer = (tag: string, receivedAtMs = Date.now()): void => {
    const frame: Frame = { cameraId: 'cam', seq: seq++, receivedAtMs, frameId: seq, bytes: new Uint8Array([tag.charCodeAt(0), 1, 2, 3]) };
    pipeline.offer(frame);
  };
  /** Offers a frame every 10 ms for `ms`. */
  const play = async (tag: string, ms: number): Promise<void> => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      offer(tag);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const types = (camera = 'cam') => events.filter((e) => e.camera_id === camera).map((e) => e.type);
  return { pipeline, bus, state, decisions, events, log, sightings, vision, results, offer, play, types };
}

const pipelines: CameraPipeline[] = [];
afterEach(async () => {
  await Promise.all(pipelines.splice(0).map((p) => p.close()));
});

describe('CameraPipeline', () => {
  it('names a track once, logs its decision once, reports sightings, embeds only when the policy asks, then leaves', async () => {
    const t = setup();
    pipelines.push(t.pipeline);
    await t.play('A', 400);
    await t.play('0', 300);
    expect(t.types()).toEqual(['person_recognized', 'person_left_area', 'system_ready']);
    const [recognized, left] = t.events;
    expect(recognized).toMatchObject({ track_id: expect.any(String), data: { person_id: 'anna', name: 'Anna', external_id: 'R-1', confidence: 1 } });
    expect(left).toMatchObject({ track_id: recognized!.track_id, data: { person_id: 'anna' } });
    expect(t.log).toEqual([expect.objectContaining({ cameraId: 'cam', trackId: recognized!.track_id, personId: 'anna', decision: 'match', modelId: MODEL })]);
    expect(t.sightings.length).toBeGreaterThan(5);
    expect(t.sightings.every(([camera, person]) => camera === 'cam' && person === 'anna')).toBe(true);
    // Each sighting carries the track's evidence (attendance counts the ones with a frame).
    const evidence = t.sightings.map((s) => s[3]);
    expect(evidence.filter((e) => e?.frame).length).toBeGreaterThan(5);
    expect(evidence.every((e) => e?.trackId === recognized!.track_id && e.liveness === 0.9 && e.embedding?.modelId === MODEL && e.margin === 1)).toBe(true);

    const withFace = t.results.filter((r) => r.faces.length > 0);
    expect(withFace.length).toBeGreaterThan(10);
    // Every frame is tracked, few are embedded: a settled track is re-checked every 2 s at most.
    expect(t.vision.embedded).toBeLessThanOrEqual(3);
    expect(new Set(withFace.map((r) => r.faces[0]!.track_id))).toEqual(new Set([recognized!.track_id]));
    expect(withFace.at(-1)!.faces[0]).toMatchObject({ person_id: 'anna', name: 'Anna', is_unknown: false, liveness: 0.9, bbox: [200, 100, 150, 150] });
    expect(withFace[0]!.faces[0]).toMatchObject({ is_unknown: true, reason: 'pending', person_id: null });
    const stats = t.pipeline.stats('cam')[0]!;
    expect(stats).toMatchObject({ recognitions: 1, unknowns: 0, activeTracks: 0, frameErrors: 0 });
    expect(stats.framesIn).toBe(stats.framesProcessed + stats.framesDropped);
  });

  it('offers registration once the unknown track is stable; after a "no" only again after askAgainAfterMs', async () => {
    const t = setup();
    pipelines.push(t.pipeline);
    await t.play('U', 500);
    const offers = () => t.events.filter((e) => e.type === 'unknown_person_detected' && e.data.show_registration_dialog);
    expect(t.types()[0]).toBe('unknown_person_detected');
    expect(t.events[0]!.data).toMatchObject({ show_registration_dialog: false, reason: 'below_threshold' });
    expect(offers()).toHaveLength(1);
    expect(t.state.waitingTrack('cam')).toBe(offers()[0]!.track_id);

    t.decisions.decide({ cameraId: 'cam', register: false });
    await t.play('U', 250);
    expect(offers()).toHaveLength(1);
    await t.play('U', 300);
    expect(offers()).toHaveLength(2);
    expect(offers()[1]!.track_id).toBe(offers()[0]!.track_id);

    t.decisions.decide({ cameraId: 'cam', register: true });
    await t.play('U', 500);
    expect(offers()).toHaveLength(2);
    expect(t.log.filter((e) => e.decision === 'unknown')).toHaveLength(1);
    expect(t.pipeline.stats('cam')[0]!.unknowns).toBe(1);
  });

  it('drops stale frames and frames refused by an overloaded pool; an undecodable frame gets an error result and the loop goes on', async () => {
    const t = setup({ maxFrameAgeMs: 500 });
    pipelines.push(t.pipeline);
    t.offer('A', Date.now() - 5000);
    await new Promise((r) => setTimeout(r, 30));
    t.offer('O');
    await new Promise((r) => setTimeout(r, 30));
    t.offer('X');
    await new Promise((r) => setTimeout(r, 30));
    await t.play('A', 100);
    expect(t.results[0]).toMatchObject({ type: 'recognition_result', camera_id: 'cam', faces: [], width: 0, error: { code: 'invalid_image' } });
    expect(t.results.slice(1).every((r) => r.faces.length === 1 && !r.error)).toBe(true);
    const stats = t.pipeline.stats('cam')[0]!;
    expect(stats).toMatchObject({ droppedStale: 1, droppedOverloaded: 1, frameErrors: 1 });
    expect(stats.framesIn).toBe(stats.framesProcessed + stats.framesDropped + stats.frameErrors);
  });

  it('keeps only the newest pending frame per camera when frames come faster than they are processed', async () => {
    const t = setup({ defaultMaxFps: 20 });
    pipelines.push(t.pipeline);
    for (let i = 0; i < 50; i++) t.offer('0');
    await new Promise((r) => setTimeout(r, 150));
    const stats = t.pipeline.stats('cam')[0]!;
    expect(stats.framesIn).toBe(50);
    expect(stats.framesProcessed).toBeLessThanOrEqual(2);
    expect(stats.framesDropped).toBe(50 - stats.framesProcessed);
    expect(stats.maxFps).toBe(20);
  });

  it('removing a camera ends its tracks (person_left_area, system_ready) and forgets it', async () => {
    const t = setup();
    pipelines.push(t.pipeline);
    await t.play('A', 200);
    await t.pipeline.removeCamera('cam');
    expect(t.types()).toEqual(['person_recognized', 'person_left_area', 'system_ready']);
    expect(t.pipeline.stats('cam')).toEqual([]);
  });
});
