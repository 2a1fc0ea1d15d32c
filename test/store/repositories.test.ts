import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../src/domain/errors.ts';
import { IdSetChecksum, templateIdHash } from '../../src/domain/id-checksum.ts';
import { generateApiKey, hashApiKey } from '../../src/store/api-key-secret.ts';
import { openDatabase, sqliteFilePath, type Store } from '../../src/store/database.ts';
import { DuplicateExternalIdError, PersonNotFoundError } from '../../src/store/errors.ts';
import { MigrationError, migrateToLatest, migrationStatus } from '../../src/store/migrate.ts';
import { MIGRATION_NAMES } from '../../src/store/migrations/index.ts';
import type { FaceTemplate, NewFaceTemplate } from '../../src/store/types.ts';
import { storeBackends, type BackendHandle } from './backends.ts';

const backends = await storeBackends();

/** A deterministic unit vector, different for every seed. */
function embedding(seed: number, dims = 512): Float32Array {
  const v = new Float32Array(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    v[i] = Math.sin(seed * 7.31 + i * 0.173) + Math.cos(seed * 0.37 * i);
    norm += v[i]! * v[i]!;
  }
  const inv = 1 / Math.sqrt(norm);
  for (let i = 0; i < dims; i++) v[i]! *= inv;
  return v;
}

function bits(v: Float32Array): Uint32Array {
  return new Uint32Array(v.buffer, v.byteOffset, v.length);
}

for (const backend of backends) {
  describe.skipIf(backend.skipReason !== null)(`store on ${backend.name}`, () => {
    let handle: BackendHandle;
    let store: Store;
    let applied: string[];
    let nowMs = 1_700_000_000_000;
    const clock = () => nowMs;

    const template = (personId: string, over: Partial<NewFaceTemplate> = {}): NewFaceTemplate => ({
      personId,
      modelId: 'fr_feature',
      embedding: embedding(Math.random() * 1000),
      source: 'enrollment',
      ...over,
    });

    beforeAll(async () => {
      handle = await backend.create();
      store = await openDatabase(handle.config, { now: clock });
      applied = await migrateToLatest(store);
    });

    afterAll(async () => {
      await store?.close();
      await handle?.dispose();
    });

    beforeEach(async () => {
      for (const table of ['gallery_changes', 'recognition_log', 'face_templates', 'api_keys', 'people'] as const) {
        await store.db.deleteFrom(table).execute();
      }
    });

    it('opens with the documented settings and migrates idempotently', async () => {
      expect(store.dialect).toBe(backend.name);
      expect(applied).toEqual(MIGRATION_NAMES);
      expect(await migrateToLatest(store)).toEqual([]);

      const again = await openDatabase(handle.config);
      try {
        expect(await migrateToLatest(again)).toEqual([]);
        expect((await migrationStatus(again)).map((m) => [m.name, m.executedAt !== null])).toEqual(MIGRATION_NAMES.map((name) => [name, true]));
      } finally {
        await again.close();
      }

      if (backend.name === 'sqlite') {
        expect(store.location).toBe(sqliteFilePath(handle.config.dataDir));
        const pragma = async (name: string) => (await sql.raw(`pragma ${name}`).execute(store.db)).rows[0] as Record<string, unknown>;
        expect(await pragma('journal_mode')).toEqual({ journal_mode: 'wal' });
        expect(await pragma('foreign_keys')).toEqual({ foreign_keys: 1 });
        expect(await pragma('synchronous')).toEqual({ synchronous: 1 });
        expect(await pragma('busy_timeout')).toEqual({ timeout: 5000 });
      } else {
        expect(store.location).not.toContain('postgres@');
      }
    });

    it('reports pending migrations on an empty database and applies them', async () => {
      const config = await handle.fresh();
      const empty = await openDatabase(config);
      try {
        expect(await migrationStatus(empty)).toEqual(MIGRATION_NAMES.map((name) => ({ name, executedAt: null })));
        expect(await migrateToLatest(empty)).toEqual(MIGRATION_NAMES);
        expect(await empty.people.list()).toMatchObject({ total: 0, items: [] });
      } finally {
        await empty.close();
      }
    });

    it('rolls a failing migration back completely', async () => {
      const { up } = await import('../../src/store/migrations/0001_initial.ts');
      const broken = {
        '0001_initial': { up },
        '0002_broken': {
          async up(db: Parameters<typeof up>[0]) {
            await db.schema.createTable('half_built').addColumn('id', 'integer').execute();
            throw new Error('boom');
          },
        },
      };
      // A database that has only the first migration: the list below must be a prefix of what ran.
      const other = await openDatabase(await handle.fresh());
      try {
        await migrateToLatest(other, { migrations: { '0001_initial': { up } } });
        const failure = await migrateToLatest(other, { migrations: broken }).catch((err: unknown) => err);
        expect(failure).toBeInstanceOf(MigrationError);
        expect((failure as MigrationError).migrationName).toBe('0002_broken');
        const tables = (await other.db.introspection.getTables()).map((t) => t.name);
        expect(tables).not.toContain('half_built');
        expect(tables).toContain('people');
        expect(await migrateToLatest(other, { migrations: { '0001_initial': { up } } })).toEqual([]);
        // The store still works after the rollback.
        await other.people.create({ name: 'After rollback' });
      } finally {
        await other.close();
      }
    });

    it.runIf(backend.name === 'sqlite')('lets a SQLite migration rebuild a referenced table without cascading deletes', async () => {
      const { up } = await import('../../src/store/migrations/0001_initial.ts');
      const config = await handle.fresh();
      const other = await openDatabase(config);
      try {
        await migrateToLatest(other, { migrations: { '0001_initial': { up } } });
        const p = await other.people.create({ name: 'Survivor' });
        const t = await other.templates.add(template(p.id));
        const rebuild = {
          '0001_initial': { up },
          '0002_rebuild_people': {
            async up(db: Parameters<typeof up>[0]) {
              const { rows } = await sql<{ sql: string }>`select sql from sqlite_master where type = 'table' and name = 'people'`.execute(db);
              await sql.raw(rows[0]!.sql.replace(/^CREATE TABLE "?people"?/i, 'create table people_new')).execute(db);
              await sql`insert into people_new select * from people`.execute(db);
              await sql`drop table people`.execute(db);
              await sql`alter table people_new rename to people`.execute(db);
            },
          },
        };
        expect(await migrateToLatest(other, { migrations: rebuild })).toEqual(['0002_rebuild_people']);
        expect(await other.templates.get(t.id)).not.toBeNull();
        expect((await sql.raw('pragma foreign_keys').execute(other.db)).rows).toEqual([{ foreign_keys: 1 }]);
      } finally {
        await other.close();
      }
    });

    it('creates, reads, updates and deletes people', async () => {
      const created = await store.people.create({
        name: 'Ada Lovelace',
        externalId: 'EMP001',
        email: 'ada@example.com',
        department: 'Engineering',
        type: 'employee',
        metadata: { badge: 7, tags: ['a'] },
      });
      expect(created).toMatchObject({ name: 'Ada Lovelace', active: true, createdAt: nowMs, updatedAt: nowMs });
      expect(created.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(await store.people.get(created.id)).toEqual(created);
      expect(await store.people.getByExternalId('EMP001')).toEqual(created);
      expect(await store.people.get('00000000-0000-0000-0000-000000000000')).toBeNull();
      expect(await store.people.getByExternalId('nope')).toBeNull();

      nowMs += 1000;
      const updated = await store.people.update(created.id, { email: null, active: false, department: undefined });
      expect(updated).toEqual({ ...created, email: null, active: false, updatedAt: nowMs });
      expect(await store.people.get(created.id)).toEqual(updated);
      // Search text follows the update: the old email no longer matches.
      expect((await store.people.list({ search: 'ada@example' })).total).toBe(0);

      expect(await store.people.update('00000000-0000-0000-0000-000000000000', { name: 'x' })).toBeNull();
      expect(await store.people.delete(created.id)).toEqual([]);
      expect(await store.people.get(created.id)).toBeNull();
      expect(await store.people.delete(created.id)).toBeNull();
    });

    it('searches case- and accent-insensitively across fields, filters and paginates', async () => {
      for (let i = 1; i <= 25; i++) {
        await store.people.create({
          name: `Person ${String(i).padStart(2, '0')}`,
          externalId: `R-${1000 + i}`,
          email: `p${i}@school.example`,
          department: i % 2 ? 'Physics' : 'Chemistry',
          type: i <= 5 ? 'staff' : 'student',
          active: i !== 25,
        });
      }
      await store.people.create({ name: 'José Álvarez', department: 'Física', email: 'jose@x.example' });
      await store.people.create({ name: '100% Real_Name' });

      const page3 = await store.people.list({ search: 'person', limit: 10, offset: 20 });
      expect(page3.total).toBe(25);
      expect(page3.items.map((p) => p.name)).toEqual(['Person 21', 'Person 22', 'Person 23', 'Person 24', 'Person 25']);
      const page1 = await store.people.list({ limit: 10 });
      expect(page1.total).toBe(27);
      expect(page1.items).toHaveLength(10);
      expect(page1.items[0]!.name).toBe('100% Real_Name');

      expect((await store.people.list({ search: 'JOSE' })).items.map((p) => p.name)).toEqual(['José Álvarez']);
      expect((await store.people.list({ search: 'fisica' })).total).toBe(1);
      expect((await store.people.list({ search: 'r-1007' })).items.map((p) => p.name)).toEqual(['Person 07']);
      expect((await store.people.list({ search: 'p12@school' })).items.map((p) => p.name)).toEqual(['Person 12']);
      expect((await store.people.list({ search: 'person chem', limit: 100 })).total).toBe(12);
      // LIKE wildcards in the query are literal characters.
      expect((await store.people.list({ search: '100%' })).items.map((p) => p.name)).toEqual(['100% Real_Name']);
      expect((await store.people.list({ search: 'p_2' })).total).toBe(0);
      expect((await store.people.list({ search: 'real_name' })).total).toBe(1);
      // A word does not match across two fields.
      expect((await store.people.list({ search: 'physicsp' })).total).toBe(0);

      expect((await store.people.list({ active: false })).items.map((p) => p.name)).toEqual(['Person 25']);
      expect((await store.people.list({ type: 'staff' })).total).toBe(5);
      expect((await store.people.list({ department: 'Physics', type: 'student' })).total).toBe(10);
      expect((await store.people.list({ limit: 5000 })).limit).toBe(1000);
    });

    it('rejects a duplicate external id with a 409 DuplicateExternalIdError, on create and update', async () => {
      const first = await store.people.create({ name: 'A', externalId: 'EMP-7' });
      const err = await store.people.create({ name: 'B', externalId: 'EMP-7' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DuplicateExternalIdError);
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ status: 409, code: 'duplicate_external_id', details: { externalId: 'EMP-7' } });

      const other = await store.people.create({ name: 'C', externalId: 'EMP-8' });
      await expect(store.people.update(other.id, { externalId: 'EMP-7' })).rejects.toBeInstanceOf(DuplicateExternalIdError);
      expect((await store.people.get(other.id))!.externalId).toBe('EMP-8');

      // Absent external ids never collide.
      await store.people.create({ name: 'D' });
      await store.people.create({ name: 'E', externalId: null });
      expect((await store.people.list()).total).toBe(4);
      expect((await store.people.getByExternalId('EMP-7'))!.id).toBe(first.id);
    });

    it('commits a unit of work together and rolls it back entirely on a throw', async () => {
      const seqBefore = await store.galleryChanges.latestSeq();
      const boom = new Error('stop midway');
      const result = await store
        .transaction(async (tx) => {
          const p = await tx.people.create({ name: 'Rolled back', externalId: 'TX-1' });
          await tx.templates.add(template(p.id));
          await tx.recognitionLog.append({ cameraId: 'cam', decision: 'match', personId: p.id });
          throw boom;
        })
        .catch((e: unknown) => e);
      expect(result).toBe(boom);
      expect(await store.people.getByExternalId('TX-1')).toBeNull();
      expect((await store.people.list()).total).toBe(0);
      expect(await store.templates.countByModel()).toEqual([]);
      expect(await store.recognitionLog.list()).toEqual([]);
      expect(await store.galleryChanges.latestSeq()).toBe(seqBefore);

      // A duplicate inside the unit rolls back what came before it too.
      await store.people.create({ name: 'Existing', externalId: 'TX-2' });
      await expect(
        store.transaction(async (tx) => {
          await tx.people.create({ name: 'New one' });
          await tx.people.create({ name: 'Clash', externalId: 'TX-2' });
        }),
      ).rejects.toBeInstanceOf(DuplicateExternalIdError);
      expect((await store.people.list()).items.map((p) => p.name)).toEqual(['Existing']);

      const committed = await store.transaction(async (tx) => {
        const p = await tx.people.create({ name: 'Committed' });
        const t = await tx.templates.add(template(p.id));
        // Reads inside the unit see its own writes.
        expect((await tx.templates.checksum('fr_feature')).count).toBe(1);
        return { p, t };
      });
      expect(await store.templates.get(committed.t.id)).toMatchObject({ personId: committed.p.id });
      expect((await store.galleryChanges.since(seqBefore)).map((c) => [c.op, c.templateId])).toEqual([['add', committed.t.id]]);
    });

    it('round-trips embeddings bit-exactly, including views and awkward values', async () => {
      const p = await store.people.create({ name: 'Bits' });
      const special = new Float32Array([0, -0, 1e-45, -1e-45, 3.4028234663852886e38, -3.4028234663852886e38, Math.PI, Number.EPSILON, 1 / 3]);
      const big = embedding(42);
      // A view into a larger buffer at a non-zero offset.
      const backing = new Float32Array(600);
      backing.set(big, 7);
      const view = backing.subarray(7, 7 + 512);
      for (const vector of [special, big, view]) {
        const added = await store.templates.add(template(p.id, { embedding: vector }));
        const read = await store.templates.get(added.id);
        expect(read!.embedding).toBeInstanceOf(Float32Array);
        expect(read!.embedding.length).toBe(vector.length);
        expect(Array.from(bits(read!.embedding))).toEqual(Array.from(bits(vector)));
      }
      const streamed = [];
      for await (const batch of store.templates.streamAll('fr_feature')) streamed.push(...batch);
      expect(streamed).toHaveLength(3);
      for (const s of streamed) expect(s.embedding.length === 9 || s.embedding.length === 512).toBe(true);
    });

    it('stores pose, quality, source and thumbnails, and lists by person', async () => {
      const p = await store.people.create({ name: 'Posed' });
      const thumb = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]);
      nowMs += 10;
      const a = await store.templates.add(
        template(p.id, { pose: { label: 'left', yawDeg: 31.25, pitchDeg: -4.5, rollDeg: 0.125 }, quality: 0.875, source: 'upload', thumbnail: thumb }),
      );
      nowMs += 10;
      const b = await store.templates.add(template(p.id, { modelId: 'other-model', source: 'import' }));
      expect(a).toMatchObject({ hasThumbnail: true, pose: { label: 'left', yawDeg: 31.25, pitchDeg: -4.5, rollDeg: 0.125 }, quality: 0.875 });
      const { embedding: _e, ...aFields } = a;
      expect(await store.templates.get(a.id)).toMatchObject(aFields);
      expect(await store.templates.get(b.id)).toMatchObject({ hasThumbnail: false, pose: { label: null, yawDeg: null }, quality: null, source: 'import' });
      expect(Array.from((await store.templates.getThumbnail(a.id))!)).toEqual(Array.from(thumb));
      expect(await store.templates.getThumbnail(b.id)).toBeNull();

      expect((await store.templates.listByPerson(p.id)).map((t) => t.id)).toEqual([a.id, b.id]);
      expect((await store.templates.listByPerson(p.id, { modelId: 'other-model' })).map((t) => t.id)).toEqual([b.id]);
      expect(await store.templates.countByModel()).toEqual([
        { modelId: 'fr_feature', count: 1 },
        { modelId: 'other-model', count: 1 },
      ]);

      await expect(store.templates.add(template('00000000-0000-0000-0000-000000000000'))).rejects.toBeInstanceOf(PersonNotFoundError);
      await expect(store.templates.add(template(p.id, { source: 'webcam' as never }))).rejects.toThrow(RangeError);

      expect(await store.templates.purgeThumbnails()).toBe(1);
      expect(await store.templates.getThumbnail(a.id)).toBeNull();
      expect((await store.templates.get(a.id))!.hasThumbnail).toBe(false);
    });

    it('keeps no thumbnail when privacy.storeImages is false', async () => {
      const noImages = await openDatabase({ ...handle.config, privacy: { storeImages: false } });
      try {
        const p = await noImages.people.create({ name: 'Private' });
        const t = await noImages.templates.add(template(p.id, { thumbnail: new Uint8Array([1, 2, 3]) }));
        expect(t.hasThumbnail).toBe(false);
        expect(await store.templates.getThumbnail(t.id)).toBeNull();
      } finally {
        await noImages.close();
      }
    });

    it('deletes a person with their templates, logging a gallery remove per template', async () => {
      const keep = await store.people.create({ name: 'Keep' });
      const kept = await store.templates.add(template(keep.id));
      const gone = await store.people.create({ name: 'Gone' });
      const start = await store.galleryChanges.latestSeq();
      const added: FaceTemplate[] = [];
      for (const modelId of ['fr_feature', 'fr_feature', 'other-model']) added.push(await store.templates.add(template(gone.id, { modelId })));
      await store.recognitionLog.append({ cameraId: 'door', personId: gone.id, decision: 'match', similarity: 0.7 });

      const removed = await store.people.delete(gone.id);
      expect(removed!.sort()).toEqual(added.map((t) => t.id).sort());
      for (const t of added) expect(await store.templates.get(t.id)).toBeNull();
      expect(await store.templates.get(kept.id)).not.toBeNull();

      const changes = await store.galleryChanges.since(start);
      expect(changes.map((c) => c.op)).toEqual(['add', 'add', 'add', 'remove', 'remove', 'remove']);
      for (let i = 1; i < changes.length; i++) expect(changes[i]!.seq).toBeGreaterThan(changes[i - 1]!.seq);
      expect(
        changes
          .filter((c) => c.op === 'remove')
          .map((c) => [c.templateId, c.personId, c.modelId])
          .sort(),
      ).toEqual(added.map((t) => [t.id, gone.id, t.modelId]).sort());
      expect(await store.galleryChanges.since(start, { modelId: 'other-model' })).toHaveLength(2);
      expect(await store.galleryChanges.since(start, { limit: 2 })).toHaveLength(2);
      expect(await store.galleryChanges.latestSeq()).toBe(changes.at(-1)!.seq);

      // The recognition log keeps the entry, without the person (ON DELETE SET NULL).
      expect((await store.recognitionLog.list({ cameraId: 'door' })).map((e) => e.personId)).toEqual([null]);
      expect(await store.templates.listPersonIdsWithCount()).toEqual([{ personId: keep.id, count: 1 }]);
    });

    it('changes count and checksum with every add and remove, per model, in step with an incremental hash', async () => {
      expect(await store.templates.checksum('fr_feature')).toEqual({ modelId: 'fr_feature', count: 0, idHashXor: '0000000000000000', latestSeq: 0 });
      const p = await store.people.create({ name: 'Sum' });
      const q = await store.people.create({ name: 'Other' });
      const mirror = new IdSetChecksum();

      const t1 = await store.templates.add(template(p.id));
      mirror.add(t1.id);
      const c1 = await store.templates.checksum('fr_feature');
      expect(c1).toMatchObject({ count: 1, idHashXor: templateIdHash(t1.id) });
      expect(c1.latestSeq).toBeGreaterThan(0);

      const t2 = await store.templates.add(template(q.id));
      mirror.add(t2.id);
      await store.templates.add(template(p.id, { modelId: 'other-model' }));
      const c2 = await store.templates.checksum('fr_feature');
      expect(c2).toMatchObject({ count: 2, idHashXor: mirror.idHashXor });
      expect(c2.idHashXor).not.toBe(c1.idHashXor);
      expect(c2.latestSeq).toBe(c1.latestSeq + 2);

      expect(await store.templates.delete(t2.id)).toEqual({ id: t2.id, personId: q.id, modelId: 'fr_feature' });
      expect(await store.templates.delete(t2.id)).toBeNull();
      mirror.remove(t2.id);
      const c3 = await store.templates.checksum('fr_feature');
      expect(c3).toMatchObject({ count: 1, idHashXor: c1.idHashXor, latestSeq: c2.latestSeq + 1 });
      expect(mirror.idHashXor).toBe(c3.idHashXor);
      expect((await store.templates.checksum('other-model')).count).toBe(1);
      expect(await store.templates.listPersonIdsWithCount('fr_feature')).toEqual([{ personId: p.id, count: 1 }]);
      // Small batches give the same answer as one.
      expect(await store.templates.checksum('fr_feature', 1)).toEqual(c3);
    });

    it('streams one model in keyset batches', async () => {
      const people = [await store.people.create({ name: 'S1' }), await store.people.create({ name: 'S2' })];
      const expected = new Map<string, { personId: string; embedding: Float32Array }>();
      for (let i = 0; i < 25; i++) {
        const t = await store.templates.add(template(people[i % 2]!.id, { embedding: embedding(i, 128) }));
        expected.set(t.id, { personId: t.personId, embedding: t.embedding });
      }
      for (let i = 0; i < 3; i++) await store.templates.add(template(people[0]!.id, { modelId: 'other-model' }));

      const sizes: number[] = [];
      const seen: string[] = [];
      for await (const batch of store.templates.streamAll('fr_feature', 10)) {
        sizes.push(batch.length);
        for (const v of batch) {
          seen.push(v.id);
          expect(v.personId).toBe(expected.get(v.id)!.personId);
          expect(Array.from(bits(v.embedding))).toEqual(Array.from(bits(expected.get(v.id)!.embedding)));
        }
      }
      expect(sizes).toEqual([10, 10, 5]);
      expect(new Set(seen)).toEqual(new Set(expected.keys()));

      const exact: number[] = [];
      for await (const batch of store.templates.streamAll('fr_feature', 5)) exact.push(batch.length);
      expect(exact).toEqual([5, 5, 5, 5, 5]);
      const none: number[] = [];
      for await (const batch of store.templates.streamAll('no-such-model')) none.push(batch.length);
      expect(none).toEqual([]);
    });

    it('finds API keys by hash and prefix, touches and revokes them', async () => {
      const secret = generateApiKey();
      expect(secret.key.startsWith(secret.prefix)).toBe(true);
      expect(secret.keyHash).toBe(hashApiKey(secret.key));
      const created = await store.apiKeys.create({ name: 'kiosk', prefix: secret.prefix, keyHash: secret.keyHash, scopes: ['device', 'device'] });
      expect(created).toEqual({ id: created.id, name: 'kiosk', prefix: secret.prefix, scopes: ['device'], createdAt: nowMs, lastUsedAt: null, revokedAt: null });
      expect(created).not.toHaveProperty('keyHash');
      const admin = generateApiKey();
      nowMs += 5;
      await store.apiKeys.create({ name: 'admin', prefix: admin.prefix, keyHash: admin.keyHash, scopes: ['admin', 'operator'] });

      expect(await store.apiKeys.findByHash(hashApiKey(secret.key))).toEqual({ ...created, keyHash: secret.keyHash });
      expect(await store.apiKeys.findByHash(hashApiKey(`${secret.key}x`))).toBeNull();
      expect((await store.apiKeys.findByPrefix(secret.prefix)).map((k) => k.id)).toEqual([created.id]);
      expect((await store.apiKeys.list()).map((k) => k.name)).toEqual(['admin', 'kiosk']);
      expect((await store.apiKeys.list()).every((k) => !('keyHash' in k))).toBe(true);

      nowMs += 100;
      await store.apiKeys.touch(created.id);
      expect((await store.apiKeys.get(created.id))!.lastUsedAt).toBe(nowMs);
      expect(await store.apiKeys.revoke(created.id)).toBe(true);
      expect(await store.apiKeys.revoke(created.id)).toBe(false);
      expect(await store.apiKeys.revoke('missing')).toBe(false);
      expect((await store.apiKeys.findByHash(secret.keyHash))!.revokedAt).toBe(nowMs);
      await expect(store.apiKeys.create({ name: 'bad', prefix: 'x', keyHash: 'y', scopes: ['root' as never] })).rejects.toThrow(RangeError);
    });

    it('appends recognition decisions and lists them newest first with filters and a cursor', async () => {
      const p = await store.people.create({ name: 'Seen' });
      const base = nowMs;
      const entries = [];
      for (let i = 0; i < 6; i++) {
        entries.push(
          await store.recognitionLog.append({
            at: base + i * 1000,
            cameraId: i % 2 ? 'gate' : 'lobby',
            trackId: `t${i}`,
            personId: i < 3 ? p.id : null,
            modelId: 'fr_feature',
            similarity: 0.5 + i / 100,
            margin: 0.125,
            quality: 0.75,
            liveness: 0.9,
            decision: i < 3 ? 'match' : 'unknown',
            reason: i < 3 ? null : 'below_threshold',
          }),
        );
      }
      const minimal = await store.recognitionLog.append({ cameraId: 'lobby', decision: 'rejected', reason: 'spoof' });
      expect(minimal).toMatchObject({ at: nowMs, trackId: null, personId: null, similarity: null, liveness: null });

      const all = await store.recognitionLog.list();
      expect(all.map((e) => e.id)).toEqual([minimal, ...entries].map((e) => e.id).sort((a, b) => b - a));
      expect(all[1]).toEqual(entries[5]);
      expect((await store.recognitionLog.list({ personId: p.id })).map((e) => e.trackId)).toEqual(['t2', 't1', 't0']);
      expect((await store.recognitionLog.list({ cameraId: 'gate', decision: 'unknown' })).map((e) => e.trackId)).toEqual(['t5', 't3']);
      expect((await store.recognitionLog.list({ sinceMs: base + 2000, untilMs: base + 4000 })).map((e) => e.trackId)).toEqual(['t3', 't2']);
      const page1 = await store.recognitionLog.list({ limit: 3 });
      const page2 = await store.recognitionLog.list({ limit: 3, beforeId: page1.at(-1)!.id });
      expect([...page1, ...page2].map((e) => e.id)).toEqual(all.slice(0, 6).map((e) => e.id));
    });

    it.runIf(backend.name === 'postgres')('lets several nodes migrate a fresh database at once', async () => {
      const config = await handle.fresh();
      const nodes = await Promise.all([1, 2, 3].map(() => openDatabase(config)));
      try {
        const runs = await Promise.all(nodes.map((n) => migrateToLatest(n)));
        expect(runs.flat()).toEqual(MIGRATION_NAMES);
      } finally {
        await Promise.all(nodes.map((n) => n.close()));
      }
    });

    it.runIf(backend.name === 'postgres')('makes a second gallery writer wait for the first to commit, so seq order is commit order', async () => {
      const p = await store.people.create({ name: 'Ordered' });
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let firstAdded!: () => void;
      const added = new Promise<void>((r) => (firstAdded = r));
      const first = store.transaction(async (tx) => {
        const t = await tx.templates.add(template(p.id));
        firstAdded();
        await held;
        return t;
      });
      await added;
      let secondDone = false;
      const second = store.templates.add(template(p.id)).then((t) => {
        secondDone = true;
        return t;
      });
      await new Promise((r) => setTimeout(r, 300));
      const secondDoneWhileFirstOpen = secondDone;
      release();
      const [a, b] = await Promise.all([first, second]);
      expect(secondDoneWhileFirstOpen).toBe(false);
      const changes = await store.galleryChanges.since(0);
      expect(changes.map((c) => c.templateId)).toEqual([a.id, b.id]);
    });

    it.runIf(backend.name === 'postgres')('numbers gallery changes uniquely under concurrent writers', async () => {
      const p = await store.people.create({ name: 'Busy' });
      const start = await store.galleryChanges.latestSeq();
      const added = await Promise.all(Array.from({ length: 12 }, () => store.templates.add(template(p.id))));
      const changes = await store.galleryChanges.since(start);
      expect(new Set(changes.map((c) => c.templateId))).toEqual(new Set(added.map((t) => t.id)));
      expect(new Set(changes.map((c) => c.seq)).size).toBe(12);
    });
  });
}
