import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IdSetChecksum } from '../../src/domain/id-checksum.ts';
import { checkDuplicate, decideIdentity } from '../../src/domain/identity.ts';
import { BuildSlices, Gallery, type GalleryRow, type GalleryTemplate } from '../../src/gallery/gallery.ts';
import { DimensionMismatchError } from '../../src/gallery/vector-index.ts';
import { perturbed, randomUnitMatrix, seededRandom } from './random-vectors.ts';

const dims = 32;
const tmp = await mkdtemp(join(tmpdir(), 'facegate-gallery-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

/** `people` people with `perPerson` templates each: views of one face (≈0.8 cosine to each other). */
function makeTemplates(modelId: string, people: number, perPerson: number, seed: number): GalleryTemplate[] {
  const random = seededRandom(seed);
  const faces = randomUnitMatrix(random, people, dims);
  const templates: GalleryTemplate[] = [];
  for (let p = 0; p < people; p++) {
    for (let t = 0; t < perPerson; t++) {
      templates.push({
        id: `${modelId}/p${p}/t${t}`,
        personId: `person-${p}`,
        modelId,
        embedding: perturbed(random, faces.slice(p * dims, (p + 1) * dims), 0.4),
      });
    }
  }
  return templates;
}

async function* streamOf(templates: GalleryTemplate[], batch: number): AsyncGenerator<GalleryRow[]> {
  for (let i = 0; i < templates.length; i += batch) {
    await new Promise((resolve) => setImmediate(resolve));
    yield templates.slice(i, i + batch).map(({ id, personId, embedding }) => ({ id, personId, embedding }));
  }
}

describe('Gallery', () => {
  it('never mixes model ids: searching model B never returns model A’s templates', () => {
    const gallery = new Gallery();
    const a = makeTemplates('model-a', 20, 2, 1);
    const b = makeTemplates('model-b', 20, 2, 1); // the very same vectors, another model
    for (const t of [...a, ...b]) gallery.add(t);
    expect(gallery.models().sort()).toEqual(['model-a', 'model-b']);
    for (const t of a) {
      const inB = gallery.search('model-b', t.embedding, 10);
      expect(inB.every((m) => m.templateId.startsWith('model-b/'))).toBe(true);
      expect(gallery.search('model-a', t.embedding, 1)[0]!.templateId).toBe(t.id);
    }
    expect(gallery.search('model-c', a[0]!.embedding, 5)).toEqual([]);
    // A model's vector length is fixed by its first template.
    expect(() => gallery.add({ id: 'x', personId: 'p', modelId: 'model-a', embedding: new Float32Array(dims + 1) })).toThrow(DimensionMismatchError);
    expect(() => gallery.search('model-a', new Float32Array(dims + 1), 1)).toThrow(DimensionMismatchError);
  });

  it('groups matches per person and gives the retrieval floor when the search came back full', () => {
    const gallery = new Gallery();
    const templates = makeTemplates('m', 30, 3, 2);
    for (const t of templates) gallery.add(t);
    const probe = templates[4]!; // person-1
    const result = gallery.searchPeople('m', probe.embedding, 6);
    expect(result.matches).toHaveLength(6);
    expect(result.people[0]!.personId).toBe('person-1');
    expect(result.people[0]!.templates.map((t) => t.templateId).sort()).toEqual(['m/p1/t0', 'm/p1/t1', 'm/p1/t2']);
    expect(result.candidateFloor).toBe(result.matches[5]!.similarity);
    for (let i = 1; i < result.matches.length; i++) expect(result.matches[i - 1]!.similarity).toBeGreaterThanOrEqual(result.matches[i]!.similarity);
    // The whole gallery seen: no floor.
    expect(gallery.searchPeople('m', probe.embedding, 1000).candidateFloor).toBeUndefined();
    // And the domain decides from it.
    const decision = decideIdentity(
      { faceFound: true, matches: result.matches, candidateFloor: result.candidateFloor },
      { searchThreshold: 0.5, minMargin: 0.05, scoring: { strategy: 'mean-top-k', k: 2 } },
    );
    expect(decision).toMatchObject({ decision: 'match', personId: 'person-1' });
  });

  it('refuses a duplicate of someone else through the whole-gallery search', () => {
    const gallery = new Gallery();
    const templates = makeTemplates('m', 10, 2, 3);
    for (const t of templates) gallery.add(t);
    const random = seededRandom(4);
    const sameFace = perturbed(random, templates[6]!.embedding, 0.3); // person-3
    const matches = gallery.search('m', sameFace, 20);
    expect(checkDuplicate({ matches, searchThreshold: 0.5 })).toMatchObject({ duplicate: true, personId: 'person-3', overridden: false });
    expect(checkDuplicate({ matches, searchThreshold: 0.5, ownPersonId: 'person-3' })).toEqual({ duplicate: false });
  });

  it('removes templates and people; the checksum follows the template set', () => {
    const gallery = new Gallery();
    const templates = makeTemplates('m', 10, 3, 5);
    for (const t of templates) gallery.add(t);
    expect(gallery.checksum('m')).toEqual(IdSetChecksum.of(templates.map((t) => t.id)).fingerprint());
    expect(gallery.remove('m/p0/t1')).toBe(true);
    expect(gallery.remove('m/p0/t1')).toBe(false);
    expect(gallery.removePerson('person-2')).toBe(3);
    expect(gallery.size('m')).toBe(26);
    const left = templates.filter((t) => t.id !== 'm/p0/t1' && t.personId !== 'person-2');
    expect(gallery.checksum('m')).toEqual(IdSetChecksum.of(left.map((t) => t.id)).fingerprint());
    for (const t of templates) expect(gallery.search('m', t.embedding, 30).some((m) => m.personId === 'person-2' || m.templateId === 'm/p0/t1')).toBe(false);
    // Adding the same template again changes nothing.
    gallery.add(left[0]!);
    expect(gallery.size('m')).toBe(26);
    expect(gallery.checksum('m')).toEqual(IdSetChecksum.of(left.map((t) => t.id)).fingerprint());
    expect(gallery.checksum('unknown-model')).toEqual({ count: 0, idHashXor: '0000000000000000' });
  });

  it('rebuilds from a store stream and is then in step; an out-of-step store is detected', async () => {
    const gallery = new Gallery();
    const templates = makeTemplates('m', 50, 2, 6);
    for (const t of templates.slice(0, 10)) gallery.add(t); // stale content
    const store = IdSetChecksum.of(templates.map((t) => t.id)).fingerprint();
    expect(gallery.isInStep('m', store)).toBe(false);
    await gallery.rebuild('m', streamOf(templates, 16), { expectedCount: templates.length });
    expect(gallery.isInStep('m', store)).toBe(true);
    expect(gallery.size('m')).toBe(100);
    expect(gallery.search('m', templates[77]!.embedding, 1)[0]!.templateId).toBe(templates[77]!.id);
    // Same count, different ids: not in step.
    const swapped = IdSetChecksum.of([...templates.slice(1).map((t) => t.id), 'someone-else']).fingerprint();
    expect(swapped.count).toBe(store.count);
    expect(gallery.isInStep('m', swapped)).toBe(false);
  });

  it('keeps mutations made while a rebuild streams', async () => {
    const gallery = new Gallery({ buildChunkSize: 8 });
    const templates = makeTemplates('m', 40, 1, 7);
    const extra = makeTemplates('m', 2, 1, 8).map((t, i) => ({ ...t, id: `late-${i}`, personId: `late-person-${i}` }));
    const rebuilding = gallery.rebuild('m', streamOf(templates, 4));
    await new Promise((resolve) => setImmediate(resolve));
    gallery.add(extra[0]!); // committed after the store snapshot was read
    // Deleted after the snapshot: the live gallery does not hold them yet, the stream does.
    expect(gallery.remove(templates[39]!.id)).toBe(false);
    expect(gallery.removePerson(templates[38]!.personId)).toBe(0);
    await rebuilding;
    expect(gallery.size('m')).toBe(39);
    expect(gallery.has('late-0')).toBe(true);
    expect(gallery.has(templates[39]!.id)).toBe(false);
    expect(gallery.has(templates[38]!.id)).toBe(false);
    expect(gallery.checksum('m')).toEqual(IdSetChecksum.of([...templates.slice(0, 38).map((t) => t.id), 'late-0']).fingerprint());
  });

  it('lets the newest of two overlapping rebuilds win, whichever finishes first', async () => {
    const gallery = new Gallery({ buildChunkSize: 4 });
    const older = makeTemplates('m', 30, 1, 12);
    const newer = makeTemplates('m', 10, 1, 13).map((t) => ({ ...t, id: `new-${t.id}` }));
    const first = gallery.rebuild('m', streamOf(older, 2)); // slow: many small batches
    const second = gallery.rebuild('m', streamOf(newer, 10));
    await Promise.all([first, second]);
    expect(gallery.checksum('m')).toEqual(IdSetChecksum.of(newer.map((t) => t.id)).fingerprint());
    expect(gallery.search('m', older[0]!.embedding, 5).every((m) => m.templateId.startsWith('new-'))).toBe(true);
  });

  it('switches a growing model to HNSW in the background, keeping every mutation', async () => {
    const gallery = new Gallery({ hnswAbove: 300, buildChunkSize: 64 });
    const templates = makeTemplates('m', 200, 2, 9);
    for (const t of templates.slice(0, 300)) gallery.add(t);
    expect(gallery.kind('m')).toBe('exact');
    gallery.add(templates[300]!); // passes the size: the build starts
    // While it runs: the exact index still answers, and changes keep coming.
    for (const t of templates.slice(301)) gallery.add(t);
    gallery.removePerson('person-0');
    gallery.remove(templates[10]!.id);
    expect(gallery.kind('m')).toBe('exact');
    await gallery.whenIdle();
    expect(gallery.kind('m')).toBe('hnsw');
    expect(gallery.size('m')).toBe(400 - 3);
    const expected = templates.filter((t) => t.personId !== 'person-0' && t.id !== templates[10]!.id);
    expect(gallery.checksum('m')).toEqual(IdSetChecksum.of(expected.map((t) => t.id)).fingerprint());
    for (const t of expected) expect(gallery.search('m', t.embedding, 1)[0]!.templateId).toBe(t.id);
    expect(gallery.search('m', templates[0]!.embedding, 400).some((m) => m.personId === 'person-0')).toBe(false);
    // Shrinking far below the size asks for a rebuild, which picks the exact index again.
    for (const t of expected.slice(0, 300)) gallery.remove(t.id);
    expect(gallery.wantsRebuild('m')).toBe(true);
    const rest = expected.slice(300);
    await gallery.rebuild('m', streamOf(rest, 50), { expectedCount: rest.length });
    expect(gallery.kind('m')).toBe('exact');
    expect(gallery.wantsRebuild('m')).toBe(false);
    expect(gallery.size('m')).toBe(rest.length);
  });

  it('stores low-rank templates as subspace coordinates in HNSW, and asks for a rebuild when new ones fall outside', async () => {
    // 64-d templates that use only 12 dimensions, as a face model uses ≈180 of its 512.
    const rank = 12;
    const basis = randomUnitMatrix(seededRandom(20), rank, 64);
    // The first 12 components of a 32-d template become its coordinates in the 12-d subspace.
    const lowRank = (templates: GalleryTemplate[]): GalleryTemplate[] =>
      templates.map((t) => {
        const embedding = new Float32Array(64);
        for (let r = 0; r < rank; r++) for (let j = 0; j < 64; j++) embedding[j]! += t.embedding[r]! * basis[r * 64 + j]!;
        return { ...t, embedding };
      });
    const templates = lowRank(makeTemplates('m', 200, 2, 21));
    const grown = new Gallery({ hnswAbove: 300, buildChunkSize: 64 });
    for (const t of templates) grown.add(t);
    await grown.whenIdle();
    expect(grown.kind('m')).toBe('hnsw');
    expect(grown.subspaceStatus('m')).toEqual({ rank, outside: 0 });
    for (const t of templates.slice(0, 50)) expect(grown.search('m', t.embedding, 1)[0]!.templateId).toBe(t.id);

    const rebuilt = new Gallery({ hnswAbove: 300 });
    await rebuilt.rebuild('m', streamOf(templates, 50), { expectedCount: templates.length });
    expect(rebuilt.subspaceStatus('m')).toEqual({ rank, outside: 0 });
    expect(rebuilt.wantsRebuild('m')).toBe(false);
    // Templates from another model version, outside the subspace: counted, and past 1 % (at least 100) a rebuild is due.
    const outside = randomUnitMatrix(seededRandom(22), 101, 64);
    const strangers = Array.from({ length: 101 }, (_, i) => ({ id: `x-${i}`, personId: `x-person-${i}`, modelId: 'm', embedding: outside.slice(i * 64, (i + 1) * 64) }));
    for (const t of strangers) rebuilt.add(t);
    expect(rebuilt.subspaceStatus('m')!.outside).toBe(101);
    expect(rebuilt.wantsRebuild('m')).toBe(true);

    const whole = new Gallery({ hnswAbove: 300, subspace: false });
    await whole.rebuild('m', streamOf(templates, 50), { expectedCount: templates.length });
    expect(whole.kind('m')).toBe('hnsw');
    expect(whole.subspaceStatus('m')).toBeNull();
  });

  it('saves and loads every model, and leaves out a damaged one for a rebuild', async () => {
    const gallery = new Gallery({ hnswAbove: 100 });
    const a = makeTemplates('arcface/v1', 60, 2, 10);
    const b = makeTemplates('other model', 20, 2, 11);
    await gallery.rebuild('arcface/v1', streamOf(a, 32), { expectedCount: a.length }); // HNSW
    for (const t of b) gallery.add(t); // exact
    expect(gallery.kind('arcface/v1')).toBe('hnsw');
    expect(gallery.kind('other model')).toBe('exact');
    const dir = join(tmp, 'saved');
    await gallery.save(dir);
    const { gallery: loaded, failed } = await Gallery.load(dir, { hnswAbove: 100 });
    expect(failed).toEqual([]);
    expect(loaded.models().sort()).toEqual(['arcface/v1', 'other model']);
    for (const model of ['arcface/v1', 'other model']) {
      expect(loaded.checksum(model)).toEqual(gallery.checksum(model));
      expect(loaded.kind(model)).toBe(gallery.kind(model));
    }
    for (const t of [...a.slice(0, 30), ...b.slice(0, 10)]) {
      expect(loaded.search(t.modelId, t.embedding, 3)).toEqual(gallery.search(t.modelId, t.embedding, 3));
      expect(loaded.personOf(t.id)).toBe(t.personId);
    }
    // Damage one model's id map: it is reported, the other still loads.
    const { readdir } = await import('node:fs/promises');
    const otherDir = (await readdir(dir)).find((d) => d.startsWith('other_model-'))!;
    await writeFile(join(dir, otherDir, 'gallery.json'), '{"format":"facegate-gallery-model"');
    const partial = await Gallery.load(dir);
    expect(partial.failed).toHaveLength(1);
    expect(partial.gallery.models()).toEqual(['arcface/v1']);
    // A missing folder is an empty gallery.
    expect((await Gallery.load(join(tmp, 'never-saved'))).gallery.models()).toEqual([]);
  });
});

describe('BuildSlices', () => {
  it('sizes each slice of a build to its time budget, between one vector and the chunk size', () => {
    const slices = new BuildSlices(10, 64);
    expect(slices.size).toBe(8);
    slices.took(8, 24); // 3 ms a vector: 3 fit in 10 ms
    expect(slices.size).toBe(3);
    slices.took(3, 60); // 20 ms a vector: still one at a time
    expect(slices.size).toBe(1);
    slices.took(1, 0.01); // fast again (an exact index, a small graph): up to the chunk size
    expect(slices.size).toBe(64);
    slices.took(0, 100); // nothing added says nothing
    expect(slices.size).toBe(64);
  });
});
