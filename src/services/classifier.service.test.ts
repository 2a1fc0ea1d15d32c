import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/config.ts';
import { decideIdentity, type IdentityPolicy } from '../domain/identity.ts';
import { migrateToLatest, openDatabase, type Store } from '../store/index.ts';
import { ClassifierService } from './classifier.service.ts';
import { GalleryService } from './gallery.service.ts';
import { seededRandom as random } from '../domain/random.ts';

/*
 * The classifier service over the real SQLite store and gallery, with synthetic embeddings: each
 * person is a random unit direction, each face that direction plus noise (cosine ≈ 0.8 to it).
 */

const MODEL_ID = 'test-model@1';
const DIMS = 48;

function hash(text: string): number {
  let h = 2166136261;
  for (const ch of text) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return h;
}

function gaussians(seed: number, n: number): Float32Array {
  const r = random(seed);
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r()));
}

function unit(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  return v.map((x) => x / Math.sqrt(n));
}

/** A face of `who`: their direction plus noise of length 0.7. */
function faceOf(who: string, variant: number): Float32Array {
  const centre = unit(gaussians(hash(who), DIMS));
  const noise = gaussians(hash(`${who}#${variant}`), DIMS);
  return unit(centre.map((x, i) => x + (0.7 / Math.sqrt(DIMS)) * noise[i]!));
}

describe('ClassifierService (real store and gallery)', () => {
  let dir: string;
  let store: Store;
  let gallery: GalleryService;
  let classifier: ClassifierService;
  const ids = new Map<string, string>();
  const policy: IdentityPolicy = { searchThreshold: 0.5, minMargin: 0.05, scoring: { strategy: 'best' } };

  async function enrol(who: string, faces: number, firstVariant = 0): Promise<void> {
    let id = ids.get(who);
    if (!id) {
      id = (await store.people.create({ name: who })).id;
      ids.set(who, id);
    }
    const personId = id;
    await gallery.commit(async (tx) => {
      for (let v = firstVariant; v < firstVariant + faces; v++) await tx.templates.add({ personId, modelId: MODEL_ID, embedding: faceOf(who, v), source: 'import' });
    });
  }

  const service = (): ClassifierService => new ClassifierService(store.templates, { modelId: MODEL_ID, dir: join(dir, 'classifier'), grid: { C: [0.1, 1, 10], gamma: [1, 2], rbfMaxSamples: 1000 } });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'facegate-classifier-'));
    store = await openDatabase(parseConfig({ dataDir: dir }));
    await migrateToLatest(store);
    gallery = new GalleryService(store, { modelId: MODEL_ID, dir: join(dir, 'gallery'), saveEveryMs: 0, hnswAboveTemplates: 20_000 });
    await gallery.start();
    classifier = service();
    ids.clear();
  });
  afterEach(async () => {
    await gallery.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to train without two people with enough faces', async () => {
    await enrol('ann', 4);
    await enrol('ben', 2);
    await expect(classifier.train()).rejects.toMatchObject({ code: 'not_enough_people', status: 409, details: { peopleWithEnoughFaces: 1, minTemplatesPerPerson: 3 } });
    expect((await classifier.status()).trained).toBe(false);
  });

  it('trains on the people with enough faces, reports its cross-validation, and knows when it is stale', async () => {
    for (const who of ['ann', 'ben', 'cat', 'dan', 'eve']) await enrol(who, 4);
    await enrol('fay', 2);
    const report = await classifier.train();
    expect(report).toMatchObject({ modelId: MODEL_ID, people: 5, templates: 20, peopleLeftToCosine: 1, minTemplatesPerPerson: 3, folds: 4 });
    expect(report.grid).toHaveLength(3 + 3 * 2);
    expect(report.chosen.accuracy).toBe(Math.max(...report.grid.map((g) => g.accuracy)));
    expect(report.acceptDecision).not.toBeNull();
    expect(report.unknownSamples).toBe(20);
    expect(report.templateSet.count).toBe(22);
    expect(await classifier.status()).toMatchObject({ trained: true, stale: false });
    await enrol('fay', 1, 10);
    expect(await classifier.status()).toMatchObject({ trained: true, stale: true });
  });

  it('saves the model and loads it back', async () => {
    for (const who of ['ann', 'ben', 'cat']) await enrol(who, 3);
    const report = await classifier.train();
    const again = service();
    expect(await again.load()).toBe(true);
    expect((await again.status()).report).toEqual(report);
    const probe = { vector: faceOf('ben', 50), modelId: MODEL_ID };
    const a = classifier.scorer(gallery, 20, 0.5, 0.4).candidates(probe);
    const b = again.scorer(gallery, 20, 0.5, 0.4).candidates(probe);
    expect(b).toEqual(a);
  });

  it('gives the event loop a turn while it trains', async () => {
    // Enough people that training takes a while: the longest gap between timer ticks stays short.
    const people = Array.from({ length: 60 }, (_, i) => `p${i}`);
    for (const who of people) await enrol(who, 6);
    const slow = new ClassifierService(store.templates, { modelId: MODEL_ID, dir: join(dir, 'classifier'), sliceMs: 10, grid: { C: [1, 10], gamma: [1, 2], rbfMaxSamples: 1000 } });
    let last = performance.now();
    let longestGapMs = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      longestGapMs = Math.max(longestGapMs, now - last);
      last = now;
      ticks++;
    }, 1);
    const started = performance.now();
    try {
      await slow.train();
    } finally {
      clearInterval(timer);
    }
    const trainingMs = performance.now() - started;
    expect(trainingMs).toBeGreaterThan(300);
    expect(ticks).toBeGreaterThan(10);
    expect(longestGapMs).toBeLessThan(Math.min(150, trainingMs / 2));
  });

  it('shares one training between concurrent calls', async () => {
    for (const who of ['ann', 'ben', 'cat']) await enrol(who, 3);
    const [first, second] = await Promise.all([classifier.train(), classifier.train()]);
    expect(second).toBe(first);
  });

  it('names trained people by the SVM, and leaves the rest to the cosine search', async () => {
    for (const who of ['ann', 'ben', 'cat', 'dan', 'eve']) await enrol(who, 5);
    await enrol('fay', 1);
    const untrained = classifier.scorer(gallery, 20, policy.searchThreshold, 0.4);
    const cosineOnly = (vector: Float32Array) => {
      const { matches, candidateFloor } = gallery.search({ vector, modelId: MODEL_ID }, 20);
      return candidateFloor === undefined ? { matches } : { matches, candidateFloor };
    };
    // Before training the scorer is the cosine search.
    const annProbe = faceOf('ann', 77);
    expect(untrained.candidates({ vector: annProbe, modelId: MODEL_ID })).toEqual(cosineOnly(annProbe));
    await classifier.train();
    const scorer = classifier.scorer(gallery, 20, policy.searchThreshold, 0.4);
    expect(scorer.name).toBe('svm');

    // A new face of a trained person: one SVM candidate on the cosine scale, named by the policy.
    const svm = await scorer.candidates({ vector: annProbe, modelId: MODEL_ID });
    expect(svm.matches).toHaveLength(1);
    expect(svm.matches[0]!.personId).toBe(ids.get('ann'));
    const decision = decideIdentity({ faceFound: true, matches: svm.matches, ...(svm.candidateFloor === undefined ? {} : { candidateFloor: svm.candidateFloor }) }, policy);
    expect(decision).toMatchObject({ decision: 'match', personId: ids.get('ann') });

    // Fay has one face: too few for the SVM, so her face gets the cosine answer unchanged.
    const fayProbe = faceOf('fay', 9);
    expect(await scorer.candidates({ vector: fayProbe, modelId: MODEL_ID })).toEqual(cosineOnly(fayProbe));

    // A stranger: the SVM is not confident, the cosine search decides (and finds nobody).
    const stranger = faceOf('zed', 1);
    expect(await scorer.candidates({ vector: stranger, modelId: MODEL_ID })).toEqual(cosineOnly(stranger));
  });

  it('never names a person deleted since training', async () => {
    for (const who of ['ann', 'ben', 'cat', 'dan']) await enrol(who, 4);
    await classifier.train();
    await gallery.commit((tx) => tx.people.delete(ids.get('ann')!));
    const scorer = classifier.scorer(gallery, 20, 0.5, 0.4);
    for (let v = 100; v < 110; v++) {
      const { matches } = await scorer.candidates({ vector: faceOf('ann', v), modelId: MODEL_ID });
      expect(matches.map((m) => m.personId)).not.toContain(ids.get('ann'));
    }
  });
});
