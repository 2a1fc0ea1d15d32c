import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import type { NewCamera } from '../../src/store/cameras.repository.ts';
import { storeBackends, type BackendHandle } from './backends.ts';

const backends = await storeBackends();

for (const backend of backends) {
  describe.skipIf(backend.skipReason !== null)(`cameras repository on ${backend.name}`, () => {
    let handle: BackendHandle;
    let store: Store;
    let nowMs = 1_700_000_000_000;

    const camera = (over: Partial<NewCamera> = {}): NewCamera => ({
      id: 'door-1',
      name: 'Front door',
      kind: 'rtsp',
      url: 'rtsp://user:pw@10.0.0.5/stream',
      device: null,
      path: null,
      maxFps: 7.5,
      enabled: true,
      loop: false,
      origin: 'api',
      ...over,
    });

    beforeAll(async () => {
      handle = await backend.create();
      store = await openDatabase(handle.config, { now: () => nowMs });
      await migrateToLatest(store);
    });
    afterAll(async () => {
      await store?.close();
      await handle?.dispose();
    });
    beforeEach(async () => {
      await store.db.deleteFrom('cameras').execute();
    });

    it('creates, reads back exactly, and refuses a taken id', async () => {
      const created = await store.cameras.create(camera());
      expect(created).toMatchObject({ id: 'door-1', createdAt: nowMs, updatedAt: nowMs });
      expect(await store.cameras.get('door-1')).toEqual(created);
      expect(await store.cameras.create(camera({ name: 'other' }))).toBeNull();
      expect((await store.cameras.get('door-1'))?.name).toBe('Front door');
      expect(await store.cameras.get('nope')).toBeNull();
    });

    it('lists by id; upsert rewrites a definition and keeps its creation time', async () => {
      await store.cameras.create(camera({ id: 'b', kind: 'push', url: null, maxFps: null }));
      await store.cameras.create(camera({ id: 'a', kind: 'file', url: null, path: '/v/a.mp4', loop: true }));
      expect((await store.cameras.list()).map((c) => c.id)).toEqual(['a', 'b']);
      const createdAt = nowMs;
      nowMs += 1000;
      const upserted = await store.cameras.upsert(camera({ id: 'a', kind: 'v4l2', url: null, device: '/dev/video0', origin: 'config', enabled: false }));
      expect(upserted).toMatchObject({ id: 'a', kind: 'v4l2', device: '/dev/video0', path: null, origin: 'config', enabled: false, loop: false, createdAt, updatedAt: nowMs });
      const inserted = await store.cameras.upsert(camera({ id: 'c' }));
      expect(inserted.createdAt).toBe(nowMs);
      expect((await store.cameras.get('b'))?.maxFps).toBeNull();
    });

    it('enables, disables and deletes', async () => {
      await store.cameras.create(camera());
      expect(await store.cameras.setEnabled('door-1', false)).toBe(true);
      expect((await store.cameras.get('door-1'))?.enabled).toBe(false);
      expect(await store.cameras.setEnabled('nope', true)).toBe(false);
      expect(await store.cameras.delete('door-1')).toBe(true);
      expect(await store.cameras.delete('door-1')).toBe(false);
      expect(await store.cameras.list()).toEqual([]);
    });
  });
}
