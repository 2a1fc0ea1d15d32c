import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/config.ts';
import type { Point } from '../domain/types.ts';
import { migrateToLatest, openDatabase, type Store } from '../store/index.ts';
import type { AnalyzedFace, AnalyzeResult } from '../vision/analysis.ts';
import type { Embedding } from '../vision/face-engine.ts';
import { GalleryService } from './gallery.service.ts';
import { NegativeExamples } from './negative-examples.ts';
import { CosineGalleryScorer, identityPolicyFor, RecognitionService, type IdentityCandidates, type IdentityScorer } from './recognition.service.ts';

const MODEL = 'model-a';

function unit(...values: number[]): Float32Array {
  const v = new Float32Array(8);
  values.forEach((x, i) => (v[i] = x));
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

function face(vector: Float32Array | undefined, options: { pass?: boolean; liveness?: number; x?: number } = {}): AnalyzedFace {
  const p: Point = { x: 0, y: 0 };
  return {
    box: { x: options.x ?? 0, y: 0, width: 100, height: 100 },
    score: 0.9,
    landmarks5: [p, p, p, p, p],
    pose: { yawDeg: 0, pitchDeg: 0, rollDeg: 0 },
    quality: { score: 0.7, pass: options.pass ?? true, sizePx: 100, checks: [] },
    liveness: options.liveness ?? 0.9,
    ...(vector ? { embedding: { vector, modelId: MODEL } } : {}),
  };
}

describe('RecognitionService (real store and gallery; prepared analyses)', () => {
  let dir: string;
  let store: Store;
  let gallery: GalleryService;
  let next: AnalyzedFace[][];
  const vision = {
    analyze: async (): Promise<AnalyzeResult> => ({ width: 640, height: 480, faces: next.shift() ?? [], timingsMs: {} }),
  };
  const config = parseConfig({ identity: { minMargin: 0.05 } });
  const policy = identityPolicyFor(config, 0.5);
  const service = (scorer: IdentityScorer = new CosineGalleryScorer(gallery, 10)) =>
    new RecognitionService({ store, vision, scorer, modelId: MODEL, policy, verifyThreshold: 0.4 });
  const enrol = async (name: string, ...vectors: Float32Array[]) => {
    const person = await store.people.create({ name, externalId: `x-${name}` });
    for (const v of vectors) await gallery.commit((tx) => tx.templates.add({ personId: person.id, modelId: MODEL, embedding: v, source: 'import' }));
    return person;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'facegate-recognition-service-'));
    store = await openDatabase({ dataDir: dir, database: { poolSize: 1 } });
    await migrateToLatest(store);
    gallery = new GalleryService(store, { modelId: MODEL, dir: join(dir, 'gallery'), saveEveryMs: 0, hnswAboveTemplates: 1000 });
    await gallery.start();
    next = [];
  });
  afterEach(async () => {
    await gallery.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('takes its policy from config: threshold, margin, scoring and the liveness floor when required', () => {
    expect(policy).toEqual({ searchThreshold: 0.5, minMargin: 0.05, scoring: { strategy: 'best' }, minLiveness: config.vision.livenessThreshold });
    const relaxed = parseConfig({ identity: { requireLiveness: false, scoring: 'mean-top-k', topK: 2 } });
    expect(identityPolicyFor(relaxed, 0.6)).toEqual({ searchThreshold: 0.6, minMargin: relaxed.identity.minMargin, scoring: { strategy: 'mean-top-k', k: 2 } });
  });

  it('does not name a person for a face closer to one of their negative examples (a revoked check-in) than to their templates', async () => {
    const anna = await enrol('anna', unit(1, 0.3));
    const sister = unit(1, 0, 0.2);
    const negatives = new NegativeExamples({ negativeExamples: async () => [] }, MODEL);
    const corrected = new RecognitionService({ store, vision, scorer: new CosineGalleryScorer(gallery, 10), modelId: MODEL, policy, verifyThreshold: 0.4, negatives });
    const decide = (vector: Float32Array) => corrected.decideEmbedding({ embedding: { vector, modelId: MODEL }, qualityPass: true, liveness: 0.9 });
    expect((await decide(sister)).decision).toMatchObject({ decision: 'match', personId: anna.id });
    negatives.add({ recordId: 'r1', personId: anna.id, modelId: MODEL, embedding: sister });
    expect((await decide(sister)).decision).toMatchObject({ decision: 'unknown', reason: 'below_threshold' });
    // Anna herself is still Anna, through decideEmbedding and recognize alike.
    expect((await decide(unit(1, 0.3))).decision).toMatchObject({ decision: 'match', personId: anna.id });
    next.push([face(sister), face(unit(1, 0.28), { x: 5 })]);
    expect((await corrected.recognize(new Uint8Array([1]))).faces.map((f) => f.person?.id ?? f.reason)).toEqual(['below_threshold', anna.id]);
    // A vector of another model is never compared.
    negatives.add({ recordId: 'r2', personId: anna.id, modelId: 'other', embedding: unit(1, 0.3) });
    expect(negatives.size).toBe(1);
  });

  it('decides every face (match, below threshold, ambiguous, low quality, spoof) and logs each decision', async () => {
    const anna = await enrol('anna', unit(1, 0.1), unit(1, 0.15));
    await enrol('twin-1', unit(0, 0, 1, 0.1));
    await enrol('twin-2', unit(0, 0, 1, 0.12));
    next.push([
      face(unit(1, 0.12), { x: 1 }),
      face(unit(0, 1), { x: 2 }),
      face(unit(0, 0, 1, 0.11), { x: 3 }),
      face(unit(1, 0.12), { x: 4, pass: false }),
      face(unit(1, 0.12), { x: 5, liveness: 0.01 }),
    ]);
    const result = await service().recognize(new Uint8Array([1]), { cameraId: 'door', trackId: 'T1' });
    expect(result.reason).toBeNull();
    expect(result.faces.map((f) => [f.box.x, f.decision, f.reason])).toEqual([
      [1, 'match', null],
      [2, 'unknown', 'below_threshold'],
      [3, 'unknown', 'ambiguous'],
      [4, 'unknown', 'low_quality'],
      [5, 'unknown', 'spoof_suspected'],
    ]);
    expect(result.faces[0]).toMatchObject({ person: { id: anna.id, name: 'anna', externalId: 'x-anna', active: true } });
    expect(result.faces[0]!.similarity).toBeGreaterThan(0.99);
    expect(result.faces[0]!.margin).toBeGreaterThan(0.9);
    expect(result.faces[3]).toMatchObject({ similarity: null, margin: null, person: null });

    const log = await store.recognitionLog.list({ cameraId: 'door' });
    expect(log).toHaveLength(5);
    expect(log.map((e) => [e.decision, e.reason, e.personId, e.trackId]).reverse()).toEqual([
      ['match', null, anna.id, 'T1'],
      ['unknown', 'below_threshold', null, 'T1'],
      ['unknown', 'ambiguous', null, 'T1'],
      ['unknown', 'low_quality', null, 'T1'],
      ['unknown', 'spoof_suspected', null, 'T1'],
    ]);
  });

  it('answers an image without faces with reason no_face', async () => {
    next.push([]);
    expect(await service().recognize(new Uint8Array([1]))).toMatchObject({ faces: [], reason: 'no_face', scorer: 'cosine' });
  });

  it('asks a plugged-in scorer for candidates and decides on its scale', async () => {
    const anna = await enrol('anna', unit(1));
    const probes: Embedding[] = [];
    // A classifier-like scorer: one score per person on its own 0..1 scale, with its own threshold.
    const scorer: IdentityScorer = {
      name: 'svm',
      policy: { searchThreshold: 0.8, minMargin: 0.3 },
      candidates(probe): IdentityCandidates {
        probes.push(probe);
        return { matches: [{ personId: anna.id, similarity: probe.vector[0]! > 0.9 ? 0.95 : 0.6 }] };
      },
    };
    next.push([face(unit(1, 0.05)), face(unit(0.5, 1))]);
    const result = await service(scorer).recognize(new Uint8Array([1]));
    expect(result.scorer).toBe('svm');
    expect(result.faces.map((f) => [f.decision, f.reason, f.similarity])).toEqual([
      ['match', null, 0.95],
      ['unknown', 'below_threshold', 0.6],
    ]);
    expect(probes).toHaveLength(2);
  });

  it('verifies two images and an image against a person’s best template', async () => {
    const anna = await enrol('anna', unit(1, 0.3), unit(1, 0.01));
    next.push([face(unit(1))], [face(unit(1, 0.2))]);
    const pair = await service().verify(new Uint8Array([1]), { image: new Uint8Array([2]) });
    expect(pair).toMatchObject({ same: true, reason: null, threshold: 0.4 });
    next.push([face(unit(1))]);
    const withPerson = await service().verify(new Uint8Array([1]), { personId: anna.id });
    expect(withPerson.same).toBe(true);
    expect(withPerson.similarity).toBeGreaterThan(0.99);
    const best = (await store.templates.listByPerson(anna.id)).find((t) => t.embedding[1]! < 0.05)!;
    expect(withPerson.templateId).toBe(best.id);
    next.push([face(unit(0, 1))]);
    expect((await service().verify(new Uint8Array([1]), { personId: anna.id })).same).toBe(false);
    next.push([], [face(unit(1))]);
    expect(await service().verify(new Uint8Array([1]), { image: new Uint8Array([2]) })).toMatchObject({ same: null, reason: 'no_face', detail: 'no face was found in image a' });
    await expect(service().verify(new Uint8Array([1]), { personId: 'nobody' })).rejects.toMatchObject({ status: 404 });
  });
});
