import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { embeddingToBytes, migrateToLatest, openDatabase, type StoreConfig } from '../../src/store/index.ts';
import { loadFaceFixtures } from '../api/face-fixtures.ts';
import { client, createKey, startTestApp } from '../api/test-app.ts';

const KEY = randomBytes(32).toString('hex');

function vector(seed: number): Float32Array {
  const v = new Float32Array(512).map((_, i) => Math.sin(seed * 1000 + i));
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

const filesUnder = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => (statSync(join(dir, name)).isDirectory() ? filesUnder(join(dir, name)) : [join(dir, name)]));

describe('embeddings encrypted at rest (AES-256-GCM)', () => {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'facegate-crypt-'));
    dirs.push(d);
    return d;
  };
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('the database holds no clear vector; reads are transparent; a missing or wrong key fails loudly', async () => {
    const dir = tempDir();
    const config: StoreConfig = { dataDir: dir, database: { poolSize: 1 } };
    const plainStore = await openDatabase(config);
    await migrateToLatest(plainStore);
    const person = await plainStore.people.create({ name: 'P' });
    const before = await plainStore.templates.add({ personId: person.id, modelId: 'm', embedding: vector(1), source: 'upload' });
    await plainStore.close();

    const sealedStore = await openDatabase({ ...config, trust: { embeddingKey: KEY } });
    // Rows stored before the key was set are sealed at start.
    expect(await sealedStore.templates.sealPlaintext()).toBe(1);
    expect(await sealedStore.templates.sealPlaintext()).toBe(0);
    const added = await sealedStore.templates.add({ personId: person.id, modelId: 'm', embedding: vector(2), source: 'upload' });
    expect(Array.from((await sealedStore.templates.get(before.id))!.embedding)).toEqual(Array.from(vector(1)));
    expect(Array.from((await sealedStore.templates.get(added.id))!.embedding)).toEqual(Array.from(vector(2)));
    const streamed = [];
    for await (const batch of sealedStore.templates.streamAll('m')) streamed.push(...batch);
    expect(streamed).toHaveLength(2);
    await sealedStore.scrub();
    await sealedStore.close();

    for (const seed of [1, 2]) {
      const needle = embeddingToBytes(vector(seed)).subarray(1000, 1064);
      expect(filesUnder(dir).filter((f) => readFileSync(f).includes(needle))).toEqual([]);
    }

    const noKey = await openDatabase(config);
    await expect(noKey.templates.get(added.id)).rejects.toMatchObject({ code: 'embedding_key_missing' });
    await noKey.close();
    const wrongKey = await openDatabase({ ...config, trust: { embeddingKey: randomBytes(32).toString('base64') } });
    await expect(wrongKey.templates.get(added.id)).rejects.toMatchObject({ code: 'embedding_key_mismatch' });
    await wrongKey.close();
  });

  it('the gallery and recognition work unchanged with a key', async () => {
    const fx = await loadFaceFixtures();
    const dir = tempDir();
    const t = await startTestApp(dir, { trust: { embeddingKey: KEY } });
    try {
      const admin = client(t.base, t.printedKey!);
      const anna = (await admin('POST', '/api/v1/people', { name: 'Anna' })).json;
      expect((await admin('POST', `/api/v1/people/${anna.id}/faces`, { images: [fx.a1.toString('base64')] })).json.added).toBe(1);
      const device = client(t.base, await createKey(admin, 'device'));
      const res = await device('POST', '/api/v1/recognize', { image: fx.a3.toString('base64') });
      expect(res.status).toBe(200);
      expect(res.json.faces.find((f: { decision: string }) => f.decision === 'match')?.person.id).toBe(anna.id);
    } finally {
      await t.app.close();
    }
    // No index file holds the clear vector: with a key the index is never saved, and a restart rebuilds it from the sealed rows.
    const templateVector = embeddingToBytes((await (async () => {
      const s = await openDatabase({ dataDir: dir, database: { poolSize: 1 }, trust: { embeddingKey: KEY } });
      try {
        const [p] = (await s.people.list({})).items;
        return (await s.templates.listByPerson(p!.id))[0]!.embedding;
      } finally {
        await s.close();
      }
    })()));
    expect(filesUnder(dir).filter((f) => readFileSync(f).includes(templateVector.subarray(1000, 1064)))).toEqual([]);
    const again = await startTestApp(dir, { trust: { embeddingKey: KEY } });
    try {
      const status = await again.app.gallery.status();
      expect(status).toMatchObject({ size: 1, startedFrom: 'rebuilt' });
      expect((await again.app.gallery.verify()).inStep).toBe(true);
    } finally {
      await again.app.close();
    }
  });
});
