import type { Kysely } from 'kysely';
import type { Dialect } from '../schema.ts';

/*
 * Camera definitions (issue 4): ffmpeg cameras (rtsp, mjpeg, v4l2, file) and registered push
 * cameras. `enabled` = should run (started at boot); `origin` says whether config.cameras or the
 * API created it (config cameras are rewritten from the config at every start). A URL may hold the
 * camera's credentials: the API never shows them.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const pg = dialect === 'postgres';
  const epochMs = pg ? 'bigint' : 'integer';
  const float = pg ? 'double precision' : 'real';

  await db.schema
    .createTable('cameras')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('url', 'text')
    .addColumn('device', 'text')
    .addColumn('path', 'text')
    .addColumn('max_fps', float)
    .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('loop', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('origin', 'text', (c) => c.notNull())
    .addColumn('created_at', epochMs, (c) => c.notNull())
    .addColumn('updated_at', epochMs, (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('cameras').execute();
}
