import type { Kysely, Migration, MigrationProvider } from 'kysely';
import type { Dialect } from '../schema.ts';
import * as m0001 from './0001_initial.ts';
import * as m0002 from './0002_events.ts';
import * as m0003 from './0003_cameras.ts';
import * as m0004 from './0004_sessions.ts';
import * as m0005 from './0005_attendance.ts';
import * as m0006 from './0006_users.ts';
import * as m0007 from './0007_cluster.ts';
import * as m0008 from './0008_audit.ts';

interface DialectMigration {
  up(db: Kysely<unknown>, dialect: Dialect): Promise<void>;
  down?(db: Kysely<unknown>, dialect: Dialect): Promise<void>;
}

/**
 * Every migration, in order. Append new ones here; never edit or rename one that has shipped.
 * On SQLite the whole run is one transaction with foreign keys off and checked before commit
 * (see migrate.ts), so a migration may rebuild a table: create new, copy, drop old, rename.
 */
const MIGRATIONS: Record<string, DialectMigration> = {
  '0001_initial': m0001,
  '0002_events': m0002,
  '0003_cameras': m0003,
  '0004_sessions': m0004,
  '0005_attendance': m0005,
  '0006_users': m0006,
  '0007_cluster': m0007,
  '0008_audit': m0008,
};

/** The names of every migration, in order (what a fresh database gets). */
export const MIGRATION_NAMES: readonly string[] = Object.keys(MIGRATIONS);

/** The in-code provider: migrations are bundled with the code, not read from a folder at run time. */
export function migrationProvider(dialect: Dialect, migrations: Record<string, DialectMigration> = MIGRATIONS): MigrationProvider {
  return {
    async getMigrations(): Promise<Record<string, Migration>> {
      return Object.fromEntries(
        Object.entries(migrations).map(([name, m]) => [
          name,
          {
            up: (db: Kysely<unknown>) => m.up(db, dialect),
            ...(m.down ? { down: (db: Kysely<unknown>) => m.down!(db, dialect) } : {}),
          },
        ]),
      );
    },
  };
}

export type { DialectMigration };
