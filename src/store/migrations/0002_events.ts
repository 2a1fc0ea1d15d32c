import type { Kysely } from 'kysely';
import type { Dialect } from '../schema.ts';

/*
 * The persisted event ring behind HTTP polling (GET /api/v1/events?after=…). The server assigns
 * ids itself, in emit order, before the row is written (a WebSocket client sees the id at once,
 * and a batch written later keeps it), so `id` is a plain primary key, not an identity column;
 * at start the server continues from the largest id stored. `data` is the payload as JSON text.
 * Pruning keeps the newest events.ringSize rows.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const pg = dialect === 'postgres';
  const int8 = pg ? 'bigint' : 'integer';

  await db.schema
    .createTable('events')
    .addColumn('id', int8, (c) => c.primaryKey())
    .addColumn('at', int8, (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('camera_id', 'text', (c) => c.notNull())
    .addColumn('track_id', 'text')
    .addColumn('data', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('events').execute();
}
