import { Migrator, sql, type Kysely, type MigrationResult } from 'kysely';
import type { Database } from './schema.ts';
import type { Store } from './database.ts';
import { migrationProvider, type DialectMigration } from './migrations/index.ts';

/*
 * Concurrency. PostgreSQL: Kysely's PostgresAdapter.acquireMigrationLock takes a session-level
 * pg_advisory_lock on a fixed key (node_modules/kysely/dist/esm/dialect/postgres/postgres-adapter.js,
 * 0.28), on one connection, and the pending migrations then run in a single transaction on it
 * (transactional DDL); nodes starting together wait for each other and the later ones find
 * nothing to do. Its bookkeeping tables are created before the lock, but it re-checks after a
 * failed CREATE, so a race there is harmless. SQLite: Kysely's lock is a no-op and it runs
 * migrations outside a transaction, so we wrap the whole run in BEGIN IMMEDIATE: it takes the
 * file's write lock (another process waits, up to busy_timeout) and a failing migration leaves
 * no half-built schema. Foreign keys are off during the run (see below), so a migration may
 * rebuild a table the SQLite way (create new, copy, drop old, rename).
 */

export class MigrationError extends Error {
  constructor(
    readonly migrationName: string | undefined,
    cause: unknown,
  ) {
    super(`database migration ${migrationName ?? '(setup)'} failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'MigrationError';
  }
}

export interface MigrationStatus {
  name: string;
  /** When it ran (epoch ms), or null when pending. */
  executedAt: number | null;
}

function migrator(store: Store, migrations?: Record<string, DialectMigration>, db: Kysely<Database> = store.db): Migrator {
  return new Migrator({ db, provider: migrationProvider(store.dialect, migrations) });
}

/*
 * Several nodes starting together on one PostgreSQL (issue 9): Kysely's own lock is taken only
 * after it has created its bookkeeping tables, and concurrent CREATE TABLE IF NOT EXISTS can still
 * fail on PostgreSQL's catalog (a unique violation on pg_type). So the whole run, bookkeeping
 * included, happens under a session advisory lock of ours, on one connection: the first node
 * migrates, the others wait and then find nothing to do. (int, int) key space, like the gallery
 * write lock in repository-context.ts, with another object number.
 */
const MIGRATION_LOCK_CLASS = 0x46616365; // 'Face'
const MIGRATION_LOCK_OBJECT = 2;

/**
 * Brings the schema to the latest version and returns the names of the migrations that ran
 * (empty when it was current). Throws MigrationError, having rolled the run back, when one fails.
 * `migrations` replaces the built-in list (tests only).
 */
export async function migrateToLatest(store: Store, options: { migrations?: Record<string, DialectMigration> } = {}): Promise<string[]> {
  let results: MigrationResult[] | undefined;
  let error: unknown;
  if (store.dialect === 'sqlite') {
    // SQLite's procedure for schema changes: foreign keys off (outside the transaction, where the
    // pragma has effect) so rebuilding a table cannot cascade-delete its children, then a
    // foreign_key_check before commit.
    await sql`pragma foreign_keys = off`.execute(store.db);
    try {
      await sql`begin immediate`.execute(store.db);
      try {
        ({ results, error } = await migrator(store, options.migrations).migrateToLatest());
        if (error === undefined) {
          const violations = await sql`pragma foreign_key_check`.execute(store.db);
          if (violations.rows.length > 0) error = new Error(`foreign key violations after migrating: ${JSON.stringify(violations.rows.slice(0, 5))}`);
        }
      } catch (err) {
        error = err;
      }
      await sql.raw(error === undefined ? 'commit' : 'rollback').execute(store.db);
    } finally {
      await sql`pragma foreign_keys = on`.execute(store.db);
    }
  } else {
    await store.db.connection().execute(async (conn) => {
      await sql`select pg_advisory_lock(${sql.lit(MIGRATION_LOCK_CLASS)}, ${sql.lit(MIGRATION_LOCK_OBJECT)})`.execute(conn);
      try {
        ({ results, error } = await migrator(store, options.migrations, conn).migrateToLatest());
      } finally {
        await sql`select pg_advisory_unlock(${sql.lit(MIGRATION_LOCK_CLASS)}, ${sql.lit(MIGRATION_LOCK_OBJECT)})`.execute(conn);
      }
    });
  }
  if (error !== undefined) {
    throw new MigrationError(results?.find((r) => r.status === 'Error')?.migrationName, error);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Every known migration and whether it has run, oldest first. */
export async function migrationStatus(store: Store): Promise<MigrationStatus[]> {
  const migrations = await migrator(store).getMigrations();
  return migrations.map((m) => ({ name: m.name, executedAt: m.executedAt ? m.executedAt.getTime() : null }));
}
