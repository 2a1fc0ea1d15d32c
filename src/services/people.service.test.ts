import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Point } from '../domain/types.ts';
import { migrateToLatest, openDatabase, type Store } from '../store/index.ts';
import type { AnalyzedFace, AnalyzeOptions, AnalyzeResult } from '../vision/analysis.ts';
import { InvalidImageError } from '../vision/errors.ts';
import { GalleryService } from './gallery.service.ts';
import { PeopleService, poseLabel, type FaceAnalyzer } from './people.service.ts';

const MODEL = 'model-a';
const DIMS = 8;

function unit(...values: number[]): Float32Array {
  const v = new Float32Array(DIMS);
  values.forEach((x, i) => (v[i] = x));
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

/** A face as the vision pipeline reports it, with the fields the service reads. */
function face(options: { vector?: Float32Array; sizePx?: number; pass?: boolean; yawDeg?: number; pitchDeg?: number; thumbnail?: Uint8Array } = {}): AnalyzedFace {
  const sizePx = options.sizePx ?? 120;
  const pass = options.pass ?? true;
  const p: Point = { x: 0, y: 0 };
  return {
    box: { x: 10, y: 10, width: sizePx, height: sizePx },
    score: 0.9,
    landmarks5: [p, p, p, p, p],
    pose: { yawDeg: options.yawDeg ?? 0, pitchDeg: options.pitchDeg ?? 0, rollDeg: 0 },
    quality: {
      score: pass ? 0.8 : 0.2,
      pass,
      sizePx,
      checks: pass ? [] : [{ name: 'sharpness', value: 3, pass: false, reason: 'the face is blurred' }],
    },
    liveness: 0.9,
    ...(options.vector ? { embedding: { vector: options.vector, modelId: MODEL } } : {}),
    ...(options.thumbnail ? { alignedJpeg: options.thumbnail } : {}),
  };
}

/** Stands in for the vision pool: the first byte of an "image" picks its prepared analysis. */
class PreparedAnalyzer implements FaceAnalyzer {
  readonly calls: AnalyzeOptions[] = [];
  constructor(private readonly results: AnalyzedFace[][]) {}
  async analyze(bytes: Uint8Array, options: AnalyzeOptions): Promise<AnalyzeResult> {
    this.calls.push(options);
    const faces = this.results[bytes[0] ?? 255];
    if (!faces) throw new InvalidImageError('the data is not a readable image');
    return { width: 640, height: 480, faces, timingsMs: {} };
  }
}

describe('poseLabel', () => {
  it('names the pose from the subject’s point of view', () => {
    expect(poseLabel({ yawDeg: 3, pitchDeg: -5 })).toBe('frontal');
    expect(poseLabel({ yawDeg: 25, pitchDeg: 5 })).toBe('left');
    expect(poseLabel({ yawDeg: -25, pitchDeg: 5 })).toBe('right');
    expect(poseLabel({ yawDeg: 10, pitchDeg: 20 })).toBe('up');
    expect(poseLabel({ yawDeg: -10, pitchDeg: -30 })).toBe('down');
    expect(poseLabel({ yawDeg: 20, pitchDeg: -20 })).toBe('left');
  });
});

describe('PeopleService.addFaces (real store and gallery; prepared analyses)', () => {
  let dir: string;
  let store: Store;
  let gallery: GalleryService;

  const service = (analyzer: FaceAnalyzer, storeThumbnails = true) =>
    new PeopleService({ store, gallery, vision: analyzer, duplicateThreshold: 0.5, searchK: 5, storeThumbnails, minFaceSizePx: 48 });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'facegate-people-service-'));
    store = await openDatabase({ dataDir: dir, database: { poolSize: 1 } });
    await migrateToLatest(store);
    gallery = new GalleryService(store, { modelId: MODEL, dir: join(dir, 'gallery'), saveEveryMs: 0, hnswAboveTemplates: 1000 });
    await gallery.start();
  });
  afterEach(async () => {
    await gallery.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('adds one good face per image, in order, with pose label, quality, source and thumbnail', async () => {
    const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xd9]);
    const analyzer = new PreparedAnalyzer([[face({ vector: unit(1, 0.1), yawDeg: 30, thumbnail: jpeg })], [face({ vector: unit(1, 0.2) })]]);
    const people = service(analyzer);
    const anna = await people.create({ name: 'Anna' });
    const results = await people.addFaces(anna.id, [{ bytes: new Uint8Array([0]) }, { bytes: new Uint8Array([1]) }], { source: 'upload' });
    expect(results.map((r) => r.status)).toEqual(['added', 'added']);
    const [first] = results;
    if (first?.status !== 'added') throw new Error('expected added');
    expect(first.template).toMatchObject({ personId: anna.id, modelId: MODEL, source: 'upload', hasThumbnail: true, quality: 0.8 });
    expect(first.template.pose).toMatchObject({ label: 'left', yawDeg: 30 });
    expect((await people.getThumbnail(anna.id, first.template.id)).byteLength).toBe(4);
    expect(analyzer.calls[0]).toMatchObject({ embed: 'all', liveness: true, findSmallFaces: true, alignedThumbnails: true });
    expect(gallery.size).toBe(2);
  });

  it('keeps no thumbnail when face images may not be stored', async () => {
    const analyzer = new PreparedAnalyzer([[face({ vector: unit(1), thumbnail: new Uint8Array([1, 2, 3]) })]]);
    const people = service(analyzer, false);
    const anna = await people.create({ name: 'Anna' });
    const [result] = await people.addFaces(anna.id, [{ bytes: new Uint8Array([0]) }], { source: 'upload' });
    expect(result).toMatchObject({ status: 'added', template: { hasThumbnail: false } });
    expect(analyzer.calls[0]!.alignedThumbnails).toBe(false);
  });

  it('refuses no face, several faces, a small or poor face, and unreadable bytes, each with its reason', async () => {
    const analyzer = new PreparedAnalyzer([
      [],
      [face({ vector: unit(1) }), face({ vector: unit(0, 1) })],
      [face({ vector: unit(1), sizePx: 30 })],
      [face({ vector: unit(1), pass: false })],
      // A big face and a tiny one in the background: the tiny one is not "another face".
      [face({ vector: unit(0, 0, 1) }), face({ vector: unit(0, 1), sizePx: 20 })],
    ]);
    const people = service(analyzer);
    const anna = await people.create({ name: 'Anna' });
    const images = [0, 1, 2, 3, 9, 4].map((n) => ({ bytes: new Uint8Array([n]) }));
    const results = await people.addFaces(anna.id, images, { source: 'upload' });
    expect(results.map((r) => (r.status === 'refused' ? r.reason : r.status))).toEqual([
      'no_face',
      'several_faces',
      'low_quality',
      'low_quality',
      'invalid_image',
      'added',
    ]);
    expect(results[1]).toMatchObject({ faceCount: 2 });
    expect(results[2]).toMatchObject({ message: expect.stringContaining('too small') });
    expect(results[3]).toMatchObject({ message: expect.stringContaining('blurred') });
    expect(gallery.size).toBe(1);
  });

  it('refuses a face that is someone else’s, naming them, unless overridden; one’s own faces are no duplicates', async () => {
    const annaFace = unit(1, 0.05);
    const analyzer = new PreparedAnalyzer([[face({ vector: annaFace })], [face({ vector: unit(1, 0.1) })], [face({ vector: unit(0, 1) })]]);
    const people = service(analyzer);
    const anna = await people.create({ name: 'Anna' });
    const bea = await people.create({ name: 'Bea' });
    const image = (n: number) => [{ bytes: new Uint8Array([n]) }];
    expect((await people.addFaces(anna.id, image(0), { source: 'upload' }))[0]!.status).toBe('added');
    expect((await people.addFaces(anna.id, image(1), { source: 'upload' }))[0]!.status).toBe('added');

    const [refused] = await people.addFaces(bea.id, image(1), { source: 'upload' });
    expect(refused).toMatchObject({ status: 'refused', reason: 'duplicate', duplicateOf: anna.id });
    expect((refused as { similarity: number }).similarity).toBeGreaterThan(0.99);
    const [forced] = await people.addFaces(bea.id, image(1), { source: 'upload', allowDuplicate: true });
    expect(forced).toMatchObject({ status: 'added', overriddenDuplicateOf: { personId: anna.id } });
    expect((await people.addFaces(bea.id, image(2), { source: 'upload' }))[0]!.status).toBe('added');
    expect(await store.templates.listByPerson(bea.id)).toHaveLength(2);
  });

  it('lets only one of two concurrent requests enrol the same face under two names', async () => {
    const same = unit(1, 0.02);
    const analyzer = new PreparedAnalyzer([[face({ vector: same })]]);
    const people = service(analyzer);
    const anna = await people.create({ name: 'Anna' });
    const bea = await people.create({ name: 'Bea' });
    const [forAnna, forBea] = await Promise.all([
      people.addFaces(anna.id, [{ bytes: new Uint8Array([0]) }], { source: 'upload' }),
      people.addFaces(bea.id, [{ bytes: new Uint8Array([0]) }], { source: 'upload' }),
    ]);
    expect([forAnna[0]!.status, forBea[0]!.status].sort()).toEqual(['added', 'refused']);
    expect(gallery.size).toBe(1);
  });

  it('deletes a person with their templates and index entries; 404 for unknown people and faces', async () => {
    const analyzer = new PreparedAnalyzer([[face({ vector: unit(1) })]]);
    const people = service(analyzer);
    const anna = await people.create({ name: 'Anna' });
    await people.addFaces(anna.id, [{ bytes: new Uint8Array([0]) }], { source: 'upload' });
    expect(await people.delete(anna.id)).toEqual({ removedTemplates: 1 });
    expect(gallery.size).toBe(0);
    await expect(people.get(anna.id)).rejects.toMatchObject({ status: 404, code: 'person_not_found' });
    await expect(people.delete(anna.id)).rejects.toMatchObject({ status: 404 });
    await expect(people.addFaces(anna.id, [{ bytes: new Uint8Array([0]) }], { source: 'upload' })).rejects.toMatchObject({ status: 404 });
    const bea = await people.create({ name: 'Bea' });
    await expect(people.getFace(bea.id, 'nope')).rejects.toMatchObject({ status: 404, code: 'face_not_found' });
    await expect(people.deleteFace(bea.id, 'nope')).rejects.toMatchObject({ status: 404 });
  });

  it('refuses URL images when no fetcher is configured', async () => {
    const people = service(new PreparedAnalyzer([]));
    const anna = await people.create({ name: 'Anna' });
    const [result] = await people.addFaces(anna.id, [{ url: 'https://example.com/a.jpg' }], { source: 'url' });
    expect(result).toMatchObject({ status: 'refused', reason: 'url_not_allowed' });
  });
});

describe('PeopleService.createWithFaces (real store and gallery)', () => {
  let dir: string;
  let store: Store;
  let gallery: GalleryService;
  let people: PeopleService;

  const newFace = (vector: Float32Array, label = 'front') => ({
    embedding: { vector, modelId: MODEL },
    pose: { label, yawDeg: 0, pitchDeg: 0, rollDeg: 0 },
    quality: 0.8,
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'facegate-people-create-'));
    store = await openDatabase({ dataDir: dir, database: { poolSize: 1 } });
    await migrateToLatest(store);
    gallery = new GalleryService(store, { modelId: MODEL, dir: join(dir, 'gallery'), saveEveryMs: 0, hnswAboveTemplates: 1000 });
    await gallery.start();
    people = new PeopleService({ store, gallery, vision: new PreparedAnalyzer([]), duplicateThreshold: 0.5, searchK: 5, storeThumbnails: true, minFaceSizePx: 48 });
  });
  afterEach(async () => {
    await gallery.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('saves the person and every template in one unit, indexed, with pose labels', async () => {
    const result = await people.createWithFaces({ person: { name: 'Anna' } }, [newFace(unit(1, 0.1)), newFace(unit(1, 0.2), 'left')], { source: 'enrollment' });
    if (result.status !== 'saved') throw new Error('expected saved');
    expect(result.created).toBe(true);
    expect(result.templates.map((t) => [t.pose.label, t.source])).toEqual([
      ['front', 'enrollment'],
      ['left', 'enrollment'],
    ]);
    expect(gallery.size).toBe(2);
    expect((await gallery.verify()).inStep).toBe(true);
  });

  it('refuses a duplicate of someone else, saving nothing, unless overridden; adds to the same person freely', async () => {
    const first = await people.createWithFaces({ person: { name: 'Anna' } }, [newFace(unit(1, 0.1))], { source: 'enrollment' });
    if (first.status !== 'saved') throw new Error('expected saved');
    const refused = await people.createWithFaces({ person: { name: 'Anna again' } }, [newFace(unit(0, 1)), newFace(unit(1, 0.12))], { source: 'enrollment' });
    expect(refused).toMatchObject({ status: 'refused', reason: 'duplicate', duplicateOf: first.person.id, faceIndex: 1 });
    expect((await people.list({})).total).toBe(1);
    expect(gallery.size).toBe(1);
    const more = await people.createWithFaces({ personId: first.person.id }, [newFace(unit(1, 0.15))], { source: 'enrollment' });
    expect(more).toMatchObject({ status: 'saved', created: false });
    const forced = await people.createWithFaces({ person: { name: 'Twin' } }, [newFace(unit(1, 0.1))], { source: 'enrollment', allowDuplicate: true });
    expect(forced).toMatchObject({ status: 'saved', overriddenDuplicateOf: { personId: first.person.id } });
  });

  it('leaves nothing behind when a write fails mid-way', async () => {
    // The second template cannot be bound by the database driver: the transaction fails after the person and the first template.
    const broken = { ...newFace(unit(0, 1, 0.3)), quality: Symbol('not a number') as unknown as number };
    await expect(people.createWithFaces({ person: { name: 'Crash' } }, [newFace(unit(0, 1, 0.2)), broken], { source: 'enrollment' })).rejects.toThrow();
    expect((await people.list({})).total).toBe(0);
    expect(gallery.size).toBe(0);
    expect((await gallery.verify()).inStep).toBe(true);
  });
});
