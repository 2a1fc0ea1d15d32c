import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../schema.ts';

/*
 * Recognition sessions (seed 004): a session runs on one camera between a start and a stop and
 * keeps one sighting row per person seen (first and last time, best confidence). The roster is
 * JSON (the entries given at start and the person each resolved to) because it is only ever read
 * whole. A sighting goes with its session, and with its person when the person is erased.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const pg = dialect === 'postgres';
  const epochMs = pg ? 'bigint' : 'integer';
  const float = pg ? 'double precision' : 'real';

  await db.schema
    .createTable('sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('camera_id', 'text', (c) => c.notNull())
    .addColumn('label', 'text')
    .addColumn('roster', 'text')
    .addColumn('started_at', epochMs, (c) => c.notNull())
    .addColumn('stopped_at', epochMs)
    .addColumn('status', 'text', (c) => c.notNull())
    .addCheckConstraint('sessions_status_check', sql`status in ('running', 'stopped')`)
    .execute();
  await db.schema.createIndex('sessions_started_idx').on('sessions').columns(['started_at', 'id']).execute();
  await db.schema.createIndex('sessions_camera_idx').on('sessions').columns(['camera_id', 'status']).execute();

  await db.schema
    .createTable('session_sightings')
    .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    .addColumn('person_id', 'text', (c) => c.notNull().references('people.id').onDelete('cascade'))
    .addColumn('first_seen', epochMs, (c) => c.notNull())
    .addColumn('last_seen', epochMs, (c) => c.notNull())
    .addColumn('best_confidence', float, (c) => c.notNull())
    .addPrimaryKeyConstraint('session_sightings_pkey', ['session_id', 'person_id'])
    .execute();
  await db.schema.createIndex('session_sightings_person_idx').on('session_sightings').column('person_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('session_sightings').execute();
  await db.schema.dropTable('sessions').execute();
}
