import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../schema.ts';

/*
 * The first schema. One definition for both dialects; the branches are only column types:
 * epoch-ms times are bigint in PostgreSQL (INTEGER is 64-bit in SQLite), floats are double
 * precision (SQLite REAL is already 8 bytes), bytes are bytea/blob, and log sequences are
 * identity columns / AUTOINCREMENT (never reused, so a sequence number names one change forever).
 * Template `source` has no CHECK: adding a source later would mean rebuilding the SQLite table.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const pg = dialect === 'postgres';
  const epochMs = pg ? 'bigint' : 'integer';
  const float = pg ? 'double precision' : 'real';
  const bytes = pg ? 'bytea' : 'blob';

  await db.schema
    .createTable('people')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('external_id', 'text')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('email', 'text')
    .addColumn('department', 'text')
    .addColumn('type', 'text')
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('search_text', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('created_at', epochMs, (c) => c.notNull())
    .addColumn('updated_at', epochMs, (c) => c.notNull())
    // Unique when present: both dialects let any number of rows hold NULL.
    .addUniqueConstraint('people_external_id_key', ['external_id'])
    .execute();
  await db.schema.createIndex('people_name_idx').on('people').columns(['name', 'id']).execute();

  await db.schema
    .createTable('face_templates')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('person_id', 'text', (c) => c.notNull().references('people.id').onDelete('cascade'))
    .addColumn('model_id', 'text', (c) => c.notNull())
    .addColumn('embedding', bytes, (c) => c.notNull())
    .addColumn('pose_label', 'text')
    .addColumn('yaw_deg', float)
    .addColumn('pitch_deg', float)
    .addColumn('roll_deg', float)
    .addColumn('quality', float)
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('thumbnail', bytes)
    .addColumn('created_at', epochMs, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('face_templates_person_idx').on('face_templates').column('person_id').execute();
  // Keyset order for streaming one model's templates and computing its checksum.
  await db.schema.createIndex('face_templates_model_idx').on('face_templates').columns(['model_id', 'id']).execute();

  await db.schema
    .createTable('gallery_changes')
    .addColumn('seq', pg ? 'bigint' : 'integer', (c) =>
      pg ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
    )
    .addColumn('template_id', 'text', (c) => c.notNull())
    .addColumn('person_id', 'text', (c) => c.notNull())
    .addColumn('model_id', 'text', (c) => c.notNull())
    .addColumn('op', 'text', (c) => c.notNull())
    .addColumn('at', epochMs, (c) => c.notNull())
    .addCheckConstraint('gallery_changes_op_check', sql`op in ('add', 'remove')`)
    .execute();

  await db.schema
    .createTable('recognition_log')
    .addColumn('id', pg ? 'bigint' : 'integer', (c) =>
      pg ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
    )
    .addColumn('at', epochMs, (c) => c.notNull())
    .addColumn('camera_id', 'text', (c) => c.notNull())
    .addColumn('track_id', 'text')
    .addColumn('person_id', 'text', (c) => c.references('people.id').onDelete('set null'))
    .addColumn('model_id', 'text')
    .addColumn('similarity', float)
    .addColumn('margin', float)
    .addColumn('quality', float)
    .addColumn('liveness', float)
    .addColumn('decision', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .execute();
  await db.schema.createIndex('recognition_log_at_idx').on('recognition_log').column('at').execute();
  await db.schema.createIndex('recognition_log_person_idx').on('recognition_log').columns(['person_id', 'id']).execute();
  await db.schema.createIndex('recognition_log_camera_idx').on('recognition_log').columns(['camera_id', 'id']).execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('key_hash', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('created_at', epochMs, (c) => c.notNull())
    .addColumn('last_used_at', epochMs)
    .addColumn('revoked_at', epochMs)
    .addUniqueConstraint('api_keys_key_hash_key', ['key_hash'])
    .execute();
  await db.schema.createIndex('api_keys_prefix_idx').on('api_keys').column('prefix').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['api_keys', 'recognition_log', 'gallery_changes', 'face_templates', 'people']) {
    await db.schema.dropTable(table).execute();
  }
}
