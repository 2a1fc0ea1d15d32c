import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrateToLatest, openDatabase, type Store } from '../store/index.ts';
import { DEFAULT_HNSW_PARAMS } from '../gallery/hnsw-index.ts';
import { GalleryService, type GalleryServiceOptions, type RecallCheck } from './gallery.service.ts';
import { gaussian, seededRandom } from '../domain/random.ts';
import { normalized } from '../gallery/vector-math.ts';

const MODEL = 'model-a';
const DIMS = 16;

/** A deterministic unit vector per seed; different seeds are far apart (near-orthogonal on average). */
function unitVector(seed: number): Float32Array {
  const v = new Float32Array(DIMS);
  let s = seed * 7919 + 1;
  for (let i = 0; i < DIMS; i++) {
    s = (s * 48271) % 2147483647;
    v[i] = s / 2147483647 - 0.5;
  }
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

describe('GalleryService (real SQLite store, real gallery)', () => {
  let dir: string;
  let store: Store;
  let services: GalleryService[];
  const logs: string[] = [];

  const options = (overrides: Partial<GalleryServiceOptions> = {}): GalleryServiceOptions => ({
    modelId: MODEL,
    dir: join(dir, 'gallery'),
    saveEveryMs: 0,
    hnswAboveTemplates: 20_000,
    log: (m) => logs.push(m),
    ...overrides,
  });
  const started = async (overrides: Partial<GalleryServiceOptions> = {}): Promise<GalleryService> => {
    const service = new GalleryService(store, options(overrides));
    services.push(service);
    await service.start();
    return service;
  };
  const addTemplate = (gallery: GalleryService, personId: string, seed: number, modelId = MODEL) =>
    gallery.commit((tx) => tx.templates.add({ personId, modelId, embedding: unitVector(seed), source: 'import' }));

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'facegate-gallery-service-'));
    store = await openDatabase({ dataDir: dir, database: { poolSize: 1 } });
    await migrateToLatest(store);
    services = [];
    logs.length = 0;
  });
  afterEach(async () => {
    for (const s of services) await s.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('applies a unit of work’s index changes only after its commit, and none when it throws', async () => {
    const gallery = await started();
    const person = await store.people.create({ name: 'P' });
    await addTemplate(gallery, person.id, 1);
    expect(gallery.size).toBe(1);

    await expect(
      gallery.commit(async (tx) => {
        await tx.templates.add({ personId: person.id, modelId: MODEL, embedding: unitVector(2), source: 'import' });
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(gallery.size).toBe(1);
    expect(await store.templates.listByPerson(person.id)).toHaveLength(1);

    // A failing store write (unknown person) leaves the index alone too.
    await expect(addTemplate(gallery, 'no-such-person', 3)).rejects.toMatchObject({ code: 'person_not_found' });
    expect(gallery.size).toBe(1);
    expect((await gallery.verify()).inStep).toBe(true);
  });

  it('deletes through the unit of work: a template, then a person with all theirs', async () => {
    const gallery = await started();
    const a = await store.people.create({ name: 'A' });
    const b = await store.people.create({ name: 'B' });
    const t1 = await addTemplate(gallery, a.id, 1);
    await addTemplate(gallery, a.id, 2);
    await addTemplate(gallery, b.id, 3);
    await gallery.commit((tx) => tx.templates.delete(t1.id));
    expect(gallery.size).toBe(2);
    expect(gallery.search({ vector: unitVector(1), modelId: MODEL }, 5).matches.map((m) => m.templateId)).not.toContain(t1.id);
    await gallery.commit((tx) => tx.people.delete(a.id));
    expect(gallery.size).toBe(1);
    expect(gallery.search({ vector: unitVector(2), modelId: MODEL }, 5).people.map((p) => p.personId)).toEqual([b.id]);
    expect((await gallery.verify()).inStep).toBe(true);
  });

  it('never indexes or searches another model’s templates, and reports them in status', async () => {
    const gallery = await started();
    const person = await store.people.create({ name: 'P' });
    await addTemplate(gallery, person.id, 1);
    await addTemplate(gallery, person.id, 1, 'model-b');
    expect(gallery.size).toBe(1);
    expect(() => gallery.search({ vector: unitVector(1), modelId: 'model-b' }, 5)).toThrow(/cannot be searched/);
    const status = await gallery.status();
    expect(status).toMatchObject({ modelId: MODEL, size: 1, kind: 'exact', otherModels: [{ modelId: 'model-b', count: 1 }] });
  });

  it('at start: empty, then saved, then rebuilt when the files are missing or out of step', async () => {
    const first = await started();
    expect((await first.status()).startedFrom).toBe('empty');
    const person = await store.people.create({ name: 'P' });
    for (let seed = 1; seed <= 5; seed++) await addTemplate(first, person.id, seed);
    await first.close();

    const second = await started();
    expect(await second.status()).toMatchObject({ startedFrom: 'saved', size: 5, lastCheck: { inStep: true } });
    await second.close();

    // Behind the index's back: one template added, one removed, same count, different checksum.
    const [oldest] = await store.templates.listByPerson(person.id);
    await store.templates.delete(oldest!.id);
    await store.templates.add({ personId: person.id, modelId: MODEL, embedding: unitVector(9), source: 'import' });
    const third = await started();
    const status = await third.status();
    expect(status).toMatchObject({ startedFrom: 'rebuilt', size: 5, lastCheck: { inStep: true } });
    expect(status.rebuildReason).toMatch(/checksum/);
    expect(third.search({ vector: unitVector(9), modelId: MODEL }, 1).matches[0]!.similarity).toBeCloseTo(1, 5);
    await third.close();

    for (const entry of await readdir(join(dir, 'gallery'))) await rm(join(dir, 'gallery', entry), { recursive: true });
    const fourth = await started();
    expect(await fourth.status()).toMatchObject({ startedFrom: 'rebuilt', rebuildReason: 'no saved index', size: 5 });
  });

  it('catches up with another process’s writes from the change log', async () => {
    const gallery = await started();
    const person = await store.people.create({ name: 'P' });
    await addTemplate(gallery, person.id, 1);
    // Written straight to the store, as a CLI import beside the server would.
    const outside = await store.templates.add({ personId: person.id, modelId: MODEL, embedding: unitVector(2), source: 'import' });
    const gone = await store.templates.add({ personId: person.id, modelId: MODEL, embedding: unitVector(3), source: 'import' });
    await store.templates.delete(gone.id);
    expect(gallery.size).toBe(1);
    expect(await gallery.syncWithStore()).toBeGreaterThanOrEqual(3);
    expect(gallery.size).toBe(2);
    expect(gallery.search({ vector: unitVector(2), modelId: MODEL }, 1).matches[0]!.templateId).toBe(outside.id);
    expect((await gallery.verify()).inStep).toBe(true);
  });

  it('searchOthers widens past the person’s own templates to find someone else', async () => {
    const gallery = await started();
    const own = await store.people.create({ name: 'Own' });
    const other = await store.people.create({ name: 'Other' });
    // Ten near-copies of one face for `own`, and one slightly further one for `other`.
    const base = unitVector(1);
    for (let i = 0; i < 10; i++) {
      const v = base.map((x, j) => x + (j === i ? 0.01 : 0));
      await gallery.commit((tx) => tx.templates.add({ personId: own.id, modelId: MODEL, embedding: v, source: 'import' }));
    }
    const near = base.map((x, j) => x + (j === 15 ? 0.2 : 0));
    await gallery.commit((tx) => tx.templates.add({ personId: other.id, modelId: MODEL, embedding: near, source: 'import' }));
    const probe = { vector: base, modelId: MODEL };
    expect(gallery.search(probe, 3).people.map((p) => p.personId)).toEqual([own.id]);
    const others = gallery.searchOthers(probe, 0.5, own.id, 3);
    expect(others.map((m) => m.personId)).toEqual([other.id]);
    expect(gallery.searchOthers(probe, 0.9999, own.id, 3)).toEqual([]);
  });

  it('rebuilds on its periodic check an HNSW index the gallery has shrunk out of', async () => {
    const gallery = await started({ saveEveryMs: 1000, hnswAboveTemplates: 40 });
    const person = await store.people.create({ name: 'P' });
    const templates = [];
    for (let seed = 1; seed <= 50; seed++) templates.push(await addTemplate(gallery, person.id, seed));
    const kindBecomes = async (kind: string): Promise<void> => {
      for (let waited = 0; (await gallery.status()).kind !== kind && waited < 10_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    };
    await kindBecomes('hnsw'); // the background switch
    expect((await gallery.status()).kind).toBe('hnsw');
    for (const t of templates.slice(0, 40)) await gallery.commit((tx) => tx.templates.delete(t.id));
    await kindBecomes('exact'); // the next periodic check (every second here)
    const status = await gallery.status();
    expect(status.kind).toBe('exact');
    expect(status.size).toBe(10);
    expect(status.rebuildReason).toContain('shrank to 10 templates');
  });

  it('searches HNSW with the configured expansion, and a new value reaches a saved index at the next start', async () => {
    const first = await started({ hnswAboveTemplates: 40, hnswExpansionSearch: 200 });
    expect((await first.status()).hnswExpansionSearch).toBeNull(); // exact while small
    const person = await store.people.create({ name: 'P' });
    for (let seed = 1; seed <= 50; seed++) await addTemplate(first, person.id, seed);
    for (let waited = 0; (await first.status()).kind !== 'hnsw' && waited < 10_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await first.status()).toMatchObject({ kind: 'hnsw', hnswExpansionSearch: 200 });
    await first.close();

    const second = await started({ hnswAboveTemplates: 40, hnswExpansionSearch: 300 });
    expect(await second.status()).toMatchObject({ kind: 'hnsw', startedFrom: 'saved', size: 50, hnswExpansionSearch: 300 });
    expect(second.search({ vector: unitVector(7), modelId: MODEL }, 1).people[0]?.personId).toBe(person.id);
    await second.close();

    const unset = await started({ hnswAboveTemplates: 40 });
    expect((await unset.status()).hnswExpansionSearch).toBe(DEFAULT_HNSW_PARAMS.expansionSearch);
  });

  it('measures its recall against an exact scan of the store: all of it for exact search, a share for HNSW, one check at a time', async () => {
    // Random 256-d vectors, three per person (how well HNSW does on real-shaped galleries is bench:gallery-recall's to say).
    const random = seededRandom(5);
    const wide = (): Float32Array => normalized(Float32Array.from({ length: 256 }, () => gaussian(random)));
    const gallery = await started({ hnswAboveTemplates: 1000, hnswExpansionSearch: 16 });
    const addPeople = (count: number) =>
      gallery.commit(async (tx) => {
        for (let p = 0; p < count; p++) {
          const person = await tx.people.create({ name: `P${p}` });
          for (let i = 0; i < 3; i++) await tx.templates.add({ personId: person.id, modelId: MODEL, embedding: wide(), source: 'import' });
        }
      });
    await addPeople(200);
    const exact = await gallery.measureRecall(200);
    expect(exact).toMatchObject({ modelId: MODEL, kind: 'exact', hnswExpansionSearch: null, size: 600, samples: 200, recallAt1: 1, samePersonAt1: 1 });

    await addPeople(800);
    for (let waited = 0; (await gallery.status()).kind !== 'hnsw' && waited < 30_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    const [hnsw, second] = await Promise.allSettled([gallery.measureRecall(500), gallery.measureRecall(10)]);
    expect(second).toMatchObject({ status: 'rejected', reason: { code: 'busy', status: 409 } });
    const check = (hnsw as PromiseFulfilledResult<RecallCheck>).value;
    expect(check).toMatchObject({ kind: 'hnsw', hnswExpansionSearch: 16, size: 3000, samples: 500 });
    expect(check.recallAt1).toBeGreaterThan(0.5);
    expect(check.recallAt1).toBeLessThanOrEqual(1);
    expect(check.samePersonAt1).toBeGreaterThanOrEqual(check.recallAt1);
    expect((await gallery.measureRecall(10)).samples).toBe(10); // free again
  });

  it('saves periodically when changed', async () => {
    const gallery = await started({ saveEveryMs: 1000 });
    const person = await store.people.create({ name: 'P' });
    await addTemplate(gallery, person.id, 1);
    expect((await gallery.status()).unsaved).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const status = await gallery.status();
    expect(status.unsaved).toBe(false);
    expect(status.lastSavedAt).not.toBeNull();
  });
});
