import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Store } from '../../src/store/database.ts';
import { migrateToLatest, migrationStatus } from '../../src/store/migrate.ts';
import { MIGRATION_NAMES } from '../../src/store/migrations/index.ts';
import { storeBackends, type BackendHandle } from '../store/backends.ts';

/*
 * Several nodes starting together on one fresh PostgreSQL database (issue 9): every one calls
 * migrateToLatest at once, each with its own pool; the schema must be built exactly once and no
 * node may fail.
 */
const postgres = (await storeBackends()).find((b) => b.name === 'postgres')!;

describe.skipIf(postgres.skipReason !== null)('migrations with several nodes starting together (PostgreSQL)', () => {
  let handle: BackendHandle;
  beforeAll(async () => {
    handle = await postgres.create();
  });
  afterAll(async () => {
    await handle?.dispose();
  });

  it('runs every migration once when 6 nodes migrate a fresh database at the same time', async () => {
    const stores: Store[] = await Promise.all(Array.from({ length: 6 }, () => openDatabase(handle.config)));
    try {
      const applied = await Promise.all(stores.map((s) => migrateToLatest(s)));
      // Exactly one node ran the migrations; the others found the schema current.
      expect(applied.filter((a) => a.length > 0)).toHaveLength(1);
      expect(applied.find((a) => a.length > 0)).toEqual([...MIGRATION_NAMES]);
      expect(applied.filter((a) => a.length === 0)).toHaveLength(5);
      const status = await migrationStatus(stores[0]!);
      expect(status.map((s) => s.name)).toEqual([...MIGRATION_NAMES]);
      expect(status.every((s) => s.executedAt !== null)).toBe(true);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});
