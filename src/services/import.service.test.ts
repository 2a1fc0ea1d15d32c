import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/config.ts';
import { AppError } from '../domain/errors.ts';
import { migrateToLatest, openDatabase, type Store } from '../store/index.ts';
import type { AnalyzedFace, AnalyzeOptions, AnalyzeResult } from '../vision/analysis.ts';
import { InvalidImageError } from '../vision/errors.ts';
import { GalleryService } from './gallery.service.ts';
import { ImportService, type ImportPhoto, type ImportRowInput } from './import.service.ts';
import { PeopleService, type FaceAnalyzer } from './people.service.ts';
import { seededRandom } from '../domain/random.ts';

/*
 * The import service over the real people service, gallery and SQLite store. Only the face engine
 * is replaced: a photo's bytes are a small script ("face:alice:1", "noface", "two:a:b", "broken")
 * that the analyzer turns into faces with deterministic embeddings — same identity, cosine ≈ 0.98;
 * different identities, near 0.
 */

const MODEL_ID = 'test-model@1';
const DIMS = 64;

function identityVector(identity: string, variant: number): Float32Array {
  let seed = 2166136261;
  for (const ch of identity) seed = Math.imul(seed ^ ch.charCodeAt(0), 16777619) >>> 0;
  const uniform = seededRandom(seed);
  const next = (): number => uniform() * 2 - 1;
  const v = Float32Array.from({ length: DIMS }, next);
  v[variant % DIMS]! += 0.15; // a small, variant-specific change
  let norm = 0;
  for (const x of v) norm += x * x;
  return v.map((x) => x / Math.sqrt(norm));
}

function face(identity: string, variant: number): AnalyzedFace {
  return {
    box: { x: 10, y: 10, width: 120, height: 120 },
    score: 0.99,
    landmarks5: [
      { x: 40, y: 50 },
      { x: 90, y: 50 },
      { x: 65, y: 75 },
      { x: 45, y: 100 },
      { x: 85, y: 100 },
    ],
    pose: { yawDeg: 0, pitchDeg: 0, rollDeg: 0 },
    quality: { score: 0.9, pass: true, sizePx: 120, checks: [] },
    liveness: 0.95,
    embedding: { vector: identityVector(identity, variant), modelId: MODEL_ID },
  };
}

class ScriptedAnalyzer implements FaceAnalyzer {
  calls = 0;
  async analyze(bytes: Uint8Array, _options: AnalyzeOptions): Promise<AnalyzeResult> {
    this.calls++;
    const [kind, ...args] = Buffer.from(bytes).toString('utf8').split(':');
    const result = (faces: AnalyzedFace[]): AnalyzeResult => ({ width: 200, height: 200, faces, timingsMs: {} });
    if (kind === 'face') return result([face(args[0]!, Number(args[1] ?? 0))]);
    if (kind === 'two') return result([face(args[0]!, 0), face(args[1]!, 0)]);
    if (kind === 'noface') return result([]);
    throw new InvalidImageError('the bytes are not an image');
  }
}

const photo = (script: string): ImportPhoto => ({ label: script, load: async () => Buffer.from(script) });

describe('ImportService (real people service, gallery and SQLite store)', () => {
  let dir: string;
  let store: Store;
  let gallery: GalleryService;
  let people: PeopleService;
  let analyzer: ScriptedAnalyzer;
  let importer: ImportService;
  const fetched: string[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'facegate-import-'));
    const config = parseConfig({ dataDir: dir });
    store = await openDatabase(config);
    await migrateToLatest(store);
    gallery = new GalleryService(store, { modelId: MODEL_ID, dir: join(dir, 'gallery'), saveEveryMs: 0, hnswAboveTemplates: 20_000 });
    await gallery.start();
    analyzer = new ScriptedAnalyzer();
    const fetchImage = async (url: string): Promise<Uint8Array> => {
      fetched.push(url);
      if (url.includes('unreachable')) throw new AppError('url_fetch_failed', 502, 'could not fetch the URL (ECONNREFUSED)');
      return Buffer.from(decodeURIComponent(new URL(url).pathname.slice(1)));
    };
    people = new PeopleService({ store, gallery, vision: analyzer, fetchImage, duplicateThreshold: 0.5, searchK: 20, storeThumbnails: false, minFaceSizePx: 48 });
    importer = new ImportService({ store, people, vision: analyzer, fetchImage, storeThumbnails: false });
  });
  afterEach(async () => {
    await gallery.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const peopleCount = async (): Promise<number> => (await store.people.list({})).total;

  it('adds a person per row with every usable face, and reports each photo', async () => {
    const rows: ImportRowInput[] = [
      { externalId: 'E1', name: 'Alice', department: 'R&D', photos: [photo('face:alice:1'), photo('face:alice:2')] },
      { externalId: 'E2', photos: [photo('face:bob:1'), photo('noface'), photo('broken')] },
    ];
    const { summary, rows: results } = await importer.importRows(rows);
    expect(summary).toEqual({ rows: 2, added: 2, updated: 0, skipped: 0, failed: 0, templatesAdded: 3 });
    expect(results[0]).toMatchObject({ index: 0, status: 'added', externalId: 'E1', name: 'Alice', templatesAdded: 2, reason: null });
    const alice = await store.people.get(results[0]!.personId!);
    expect(alice).toMatchObject({ name: 'Alice', externalId: 'E1', department: 'R&D' });
    expect(await store.templates.listByPerson(alice!.id)).toHaveLength(2);
    // The name defaults to the external id; the photos that failed are refused with their reasons.
    expect(results[1]).toMatchObject({ status: 'added', name: 'E2', templatesAdded: 1, message: '1 face added, 2 photos refused' });
    expect(results[1]!.photos.map((p) => (p.status === 'refused' ? p.reason : p.status))).toEqual(['added', 'no_face', 'invalid_image']);
    expect(gallery.size).toBe(3);
  });

  it('leaves no person behind when no photo of a row gives a face', async () => {
    const { rows } = await importer.importRows([
      { externalId: 'E9', name: 'Nobody', photos: [photo('noface'), photo('broken'), { url: 'http://photos.test/unreachable.jpg' }] },
      { externalId: 'E10', name: 'Group', photos: [photo('two:carol:dave')] },
      { externalId: 'E11', name: 'No photos', photos: [] },
      { photos: [photo('face:erin:1')] },
    ]);
    expect(rows.map((r) => [r.status, r.reason])).toEqual([
      ['failed', 'no_usable_face'],
      ['failed', 'no_usable_face'],
      ['failed', 'no_photos'],
      ['failed', 'name_required'],
    ]);
    expect(rows[0]!.message).toBe('no photo gave a usable face (no_face, invalid_image, url_fetch_failed)');
    expect(rows[1]!.photos[0]).toMatchObject({ status: 'refused', reason: 'several_faces' });
    expect(rows.every((r) => r.personId === null)).toBe(true);
    expect(await peopleCount()).toBe(0);
    expect(gallery.size).toBe(0);
  });

  it("skips a row whose face is already another person's, naming that person, and keeps nothing of it", async () => {
    const first = await importer.importRows([{ externalId: 'A', name: 'Alice', photos: [photo('face:alice:1')] }]);
    const aliceId = first.rows[0]!.personId!;
    // Same import: a second row with the same face under another id is checked against the first.
    const { rows } = await importer.importRows([
      { externalId: 'B', name: 'Bob', photos: [photo('face:bob:1')] },
      { externalId: 'B2', name: 'Bob again', photos: [photo('face:bob:2')] },
      { externalId: 'A2', name: 'Alice again', photos: [photo('face:alice:3')] },
    ]);
    expect(rows[0]).toMatchObject({ status: 'added' });
    expect(rows[1]).toMatchObject({ status: 'skipped', reason: 'duplicate_face', personId: rows[0]!.personId });
    expect(rows[2]).toMatchObject({ status: 'skipped', reason: 'duplicate_face', personId: aliceId });
    expect(rows[2]!.photos[0]).toMatchObject({ status: 'refused', reason: 'duplicate', duplicateOf: aliceId });
    expect(await store.people.getByExternalId('B2')).toBeNull();
    expect(await store.people.getByExternalId('A2')).toBeNull();
    expect(await peopleCount()).toBe(2);
  });

  it('creates a new person with the faces that are theirs in one unit, refusing only the photo of someone else', async () => {
    const first = await importer.importRows([{ externalId: 'A', name: 'Alice', photos: [photo('face:alice:1')] }]);
    const aliceId = first.rows[0]!.personId!;
    const { rows } = await importer.importRows([{ externalId: 'C', name: 'Cleo', photos: [photo('face:cleo:1'), photo('face:alice:2'), photo('face:cleo:2')] }]);
    expect(rows[0]).toMatchObject({ status: 'added', templatesAdded: 2, message: '2 faces added, 1 photo refused' });
    expect(rows[0]!.photos.map((p) => p.status)).toEqual(['added', 'refused', 'added']);
    expect(rows[0]!.photos[1]).toMatchObject({ reason: 'duplicate', duplicateOf: aliceId });
    expect(gallery.size).toBe(3);
    expect((await gallery.verify()).inStep).toBe(true);
  });

  it('skips an existing external id by default (re-running an import changes nothing), or adds its faces when asked', async () => {
    const rows: ImportRowInput[] = [{ externalId: 'S1', name: 'Sam', photos: [photo('face:sam:1')] }];
    const first = await importer.importRows(rows);
    const callsAfterFirst = analyzer.calls;
    const again = await importer.importRows(rows);
    expect(again.rows[0]).toMatchObject({ status: 'skipped', reason: 'external_id_exists', personId: first.rows[0]!.personId, templatesAdded: 0 });
    expect(again.rows[0]!.photos).toEqual([{ photo: 'face:sam:1', status: 'not_tried' }]);
    expect(analyzer.calls).toBe(callsAfterFirst); // skipped rows are not even analysed

    const more = await importer.importRows([{ externalId: 'S1', name: 'ignored', photos: [photo('face:sam:2'), photo('face:sam:3')] }], { onExisting: 'add_faces' });
    expect(more.rows[0]).toMatchObject({ status: 'updated', personId: first.rows[0]!.personId, templatesAdded: 2 });
    expect(more.summary).toMatchObject({ updated: 1, templatesAdded: 2 });
    expect(await store.templates.listByPerson(first.rows[0]!.personId!)).toHaveLength(3);
    expect((await store.people.get(first.rows[0]!.personId!))!.name).toBe('Sam');
  });

  it('treats a repeated external id within one import like an existing one', async () => {
    const { rows } = await importer.importRows([
      { externalId: 'R1', name: 'Rita', photos: [photo('face:rita:1')] },
      { externalId: 'R1', name: 'Rita twice', photos: [photo('face:rita:2')] },
    ]);
    expect(rows.map((r) => r.status)).toEqual(['added', 'skipped']);
    expect(rows[1]).toMatchObject({ reason: 'external_id_exists', personId: rows[0]!.personId });
  });

  it('fetches URL photos through the fetcher and answers rows in order whatever the concurrency', async () => {
    fetched.length = 0;
    const rows: ImportRowInput[] = Array.from({ length: 9 }, (_, i) => ({
      externalId: `U${i}`,
      photos: [{ url: `http://photos.test/${encodeURIComponent(`face:person${i}:1`)}` }],
    }));
    const seen: number[] = [];
    const { rows: results, summary } = await importer.importRows(rows, { concurrency: 3, onRow: (r) => seen.push(r.index) });
    expect(summary.added).toBe(9);
    expect(results.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(fetched).toHaveLength(9);
    expect(results[4]!.photos[0]).toMatchObject({ photo: `http://photos.test/${encodeURIComponent('face:person4:1')}`, status: 'added' });
  });

  it('refuses URL photos when no fetcher is configured', async () => {
    const noFetch = new ImportService({ store, people, vision: analyzer, storeThumbnails: false });
    const { rows } = await noFetch.importRows([{ externalId: 'X', photos: [{ url: 'http://photos.test/face:x:1' }] }]);
    expect(rows[0]).toMatchObject({ status: 'failed', reason: 'no_usable_face' });
    expect(rows[0]!.photos[0]).toMatchObject({ status: 'refused', reason: 'url_not_allowed' });
  });
});
