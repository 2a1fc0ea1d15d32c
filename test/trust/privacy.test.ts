import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RetentionService } from '../../src/services/retention.service.ts';
import { embeddingToBytes, migrateToLatest, openDatabase, type Store } from '../../src/store/index.ts';
import { loadFaceFixtures, type FaceFixtures } from '../api/face-fixtures.ts';
import { client, startTestApp, type Json, type TestApp } from '../api/test-app.ts';

const b64 = (b: Buffer): string => b.toString('base64');

/** Every file under dir (the database, its WAL and SHM, the saved indexes, anything else). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** The files under dir that contain needle. */
function filesContaining(dir: string, needle: Buffer): string[] {
  return filesUnder(dir).filter((f) => readFileSync(f).includes(needle));
}

/** 64 bytes from the middle of a buffer: long enough to be unique, found wherever the whole is. */
const needleOf = (bytes: Uint8Array): Buffer => Buffer.from(bytes).subarray(Math.floor(bytes.byteLength / 2) - 32, Math.floor(bytes.byteLength / 2) + 32);

describe('privacy: erasure leaves nothing behind, export hands everything over', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-erase-'));
  let t: TestApp;
  let call: ReturnType<typeof client>;
  let fx: FaceFixtures;

  beforeAll(async () => {
    fx = await loadFaceFixtures();
    t = await startTestApp(dataDir);
    call = client(t.base, t.printedKey!);
  });
  afterAll(async () => {
    await t?.app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('a deleted person’s vectors and images are in no file of the data folder (database, WAL, index)', async () => {
    const anna = (await call('POST', '/api/v1/people', { name: 'Anna Erase' })).json;
    const ben = (await call('POST', '/api/v1/people', { name: 'Ben Keep' })).json;
    expect((await call('POST', `/api/v1/people/${anna.id}/faces`, { images: [b64(fx.a1), b64(fx.a2)] })).json.added).toBe(2);
    expect((await call('POST', `/api/v1/people/${ben.id}/faces`, { images: [b64(fx.b1)] })).json.added).toBe(1);
    await t.app.gallery.save();

    const templates = await t.app.store.templates.listByPerson(anna.id);
    expect(templates).toHaveLength(2);
    const vectorNeedles = templates.map((tp) => needleOf(embeddingToBytes(tp.embedding)));
    const imageNeedles: Buffer[] = [];
    for (const tp of templates) {
      const thumb = await t.app.store.templates.getThumbnail(tp.id);
      expect(thumb).not.toBeNull();
      imageNeedles.push(needleOf(thumb!));
    }
    // The scan can see them before the erasure (else finding nothing afterwards would prove nothing).
    for (const n of vectorNeedles) expect(filesContaining(dataDir, n).length).toBeGreaterThanOrEqual(1);
    expect(filesContaining(join(dataDir, 'gallery'), vectorNeedles[0]!).length).toBe(1);
    for (const n of imageNeedles) expect(filesContaining(dataDir, n).length).toBeGreaterThanOrEqual(1);

    // Subject access first: the export holds the same vectors and images.
    const exported = await fetch(`${t.base}/api/v1/people/${anna.id}/export`, { headers: { authorization: `Bearer ${t.printedKey}` } });
    expect(exported.status).toBe(200);
    expect(exported.headers.get('content-disposition')).toContain('attachment');
    const data = (await exported.json()) as Json;
    expect(data).toMatchObject({ format: 'facegate-person-export/1', person: { id: anna.id, name: 'Anna Erase' } });
    expect(data.faces).toHaveLength(2);
    expect(Buffer.from(data.faces[0].embedding.data, 'base64').includes(vectorNeedles[0]!)).toBe(true);
    expect(Buffer.from(data.faces[0].thumbnail.base64, 'base64').includes(imageNeedles[0]!)).toBe(true);
    expect(data.audit.length).toBeGreaterThanOrEqual(2);

    expect((await call('DELETE', `/api/v1/people/${anna.id}`)).status).toBe(204);

    for (const n of [...vectorNeedles, ...imageNeedles]) expect(filesContaining(dataDir, n)).toEqual([]);
    // Ben is untouched, and the scan still sees his vector.
    const benVector = (await t.app.store.templates.listByPerson(ben.id))[0]!.embedding;
    expect(filesContaining(dataDir, needleOf(embeddingToBytes(benVector))).length).toBeGreaterThanOrEqual(1);
    expect((await call('GET', `/api/v1/people/${anna.id}/export`)).status).toBe(404);
    expect((await call('GET', '/api/v1/gallery/status?check=true')).json).toMatchObject({});
  });
});

describe('retention sweep', () => {
  let store: Store;
  const dir = mkdtempSync(join(tmpdir(), 'facegate-retention-'));
  beforeAll(async () => {
    store = await openDatabase({ dataDir: dir, database: { poolSize: 1 } });
    await migrateToLatest(store);
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('deletes recognition logs, events and snapshots older than their periods, keeps newer ones', async () => {
    const now = 1_800_000_000_000;
    const day = 86_400_000;
    await store.recognitionLog.append({ cameraId: 'c', decision: 'unknown', at: now - 40 * day });
    await store.recognitionLog.append({ cameraId: 'c', decision: 'unknown', at: now - 1 * day });
    await store.events.append([
      { id: 1, at: now - 31 * day, type: 'person_left_area', cameraId: 'c', trackId: null, data: {} },
      { id: 2, at: now - 2 * day, type: 'person_left_area', cameraId: 'c', trackId: null, data: {} },
    ]);
    const snapshots = join(dir, 'snapshots', 'door');
    mkdirSync(snapshots, { recursive: true });
    writeFileSync(join(snapshots, 'old.jpg'), 'x');
    writeFileSync(join(snapshots, 'new.jpg'), 'y');
    utimesSync(join(snapshots, 'old.jpg'), (now - 8 * day) / 1000, (now - 8 * day) / 1000);
    utimesSync(join(snapshots, 'new.jpg'), (now - 1 * day) / 1000, (now - 1 * day) / 1000);

    const retention = new RetentionService({
      recognitionLog: store.recognitionLog,
      events: store.events,
      snapshotsDir: join(dir, 'snapshots'),
      retention: { recognitionLogDays: 30, eventsDays: 30, snapshotsDays: 7, sweepEveryMs: 3_600_000 },
      now: () => now,
    });
    expect(await retention.sweep()).toEqual({ recognitionLog: 1, events: 1, snapshots: 1 });
    expect((await store.recognitionLog.list()).map((e) => e.at)).toEqual([now - day]);
    expect((await store.events.since(0)).map((e) => e.id)).toEqual([2]);
    expect(readdirSync(snapshots)).toEqual(['new.jpg']);
    expect(await retention.sweep()).toEqual({ recognitionLog: 0, events: 0, snapshots: 0 });
  });
});
