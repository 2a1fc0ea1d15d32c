import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../schema.ts';

/*
 * Attendance check-ins: one row per person and attendance day (the day in the configured time
 * zone, 'YYYY-MM-DD', computed by the service). Once per day is the database's rule, not only the
 * service's: a partial unique index on (person_id, attendance_day) over the rows not revoked, so
 * two cameras (or two servers) seeing a person at the same moment write one check-in, and a
 * revoked check-in (kept for the record) does not stop the real person's check-in that day.
 * The check-in's embedding is kept: revoking it makes it a negative example for that person.
 * Rows go with their person when the person is erased; a deleted session leaves them unattached.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const pg = dialect === 'postgres';
  const epochMs = pg ? 'bigint' : 'integer';
  const float = pg ? 'double precision' : 'real';
  const bytes = pg ? 'bytea' : 'blob';

  await db.schema
    .createTable('attendance')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('person_id', 'text', (c) => c.notNull().references('people.id').onDelete('cascade'))
    .addColumn('attendance_day', 'text', (c) => c.notNull())
    .addColumn('check_in_at', epochMs, (c) => c.notNull())
    .addColumn('check_out_at', epochMs, (c) => c.notNull())
    .addColumn('minutes_late', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('camera_id', 'text')
    .addColumn('session_id', 'text', (c) => c.references('sessions.id').onDelete('set null'))
    .addColumn('track_id', 'text')
    .addColumn('similarity', float)
    .addColumn('margin', float)
    .addColumn('liveness', float)
    .addColumn('agreeing_frames', 'integer')
    .addColumn('model_id', 'text')
    .addColumn('embedding', bytes)
    .addColumn('snapshot', bytes)
    .addColumn('note', 'text')
    .addColumn('marked_by', 'text')
    .addColumn('revoked', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('revoked_reason', 'text')
    .addColumn('revoked_by', 'text')
    .addColumn('revoked_at', epochMs)
    .addColumn('created_at', epochMs, (c) => c.notNull())
    .addCheckConstraint('attendance_method_check', sql`method in ('recognition', 'manual')`)
    .execute();
  await db.schema
    .createIndex('attendance_person_day_key')
    .on('attendance')
    .columns(['person_id', 'attendance_day'])
    .unique()
    .where(sql.ref('revoked'), '=', 0)
    .execute();
  await db.schema.createIndex('attendance_day_idx').on('attendance').columns(['attendance_day', 'check_in_at']).execute();
  await db.schema.createIndex('attendance_person_idx').on('attendance').columns(['person_id', 'attendance_day']).execute();
  await db.schema.createIndex('attendance_session_idx').on('attendance').column('session_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('attendance').execute();
}
