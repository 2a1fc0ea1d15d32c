import type { Selectable } from 'kysely';
import { atomically, lockEventWrites, pageLimit, type RepositoryContext } from './repository-context.ts';
import type { EventsTable } from './schema.ts';
import type { EventsSinceQuery, StoredEvent } from '../domain/stored-event.ts';

/** Events for every camera; they match any camera filter. */
const ALL_CAMERAS = '*';

function toEvent(row: Omit<Selectable<EventsTable>, 'seq'>): StoredEvent {
  return { id: row.id, at: row.at, type: row.type, cameraId: row.camera_id, trackId: row.track_id, data: JSON.parse(row.data) };
}

/** The persisted ring of recent events behind HTTP polling. */
export class EventsRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  /**
   * Writes a batch in one statement per 500 rows; ids come from the caller (emit order). On
   * PostgreSQL the rows also get their seq, under a lock held to commit (see 0007_cluster).
   */
  async append(events: readonly StoredEvent[]): Promise<void> {
    if (this.ctx.dialect === 'postgres') {
      await atomically(this.ctx, async (db) => {
        await lockEventWrites(db, this.ctx.dialect);
        await new EventsRepository({ ...this.ctx, db }).insert(events);
      });
      return;
    }
    await this.insert(events);
  }

  private async insert(events: readonly StoredEvent[]): Promise<void> {
    for (let i = 0; i < events.length; i += 500) {
      const rows = events.slice(i, i + 500).map((e) => ({
        id: e.id,
        at: e.at,
        type: e.type,
        camera_id: e.cameraId,
        track_id: e.trackId,
        data: JSON.stringify(e.data),
      }));
      await this.ctx.db.insertInto('events').values(rows).execute();
    }
  }

  /**
   * Events after the event with id `cursor`, oldest first. SQLite: id > cursor. PostgreSQL: in
   * seq order (commit order, whichever node wrote them) after that event's seq; a cursor naming
   * no stored event (pruned) falls back to id > cursor.
   */
  async since(cursor: number, query: EventsSinceQuery = {}): Promise<StoredEvent[]> {
    const pg = this.ctx.dialect === 'postgres';
    let select = this.ctx.db.selectFrom('events').select(['id', 'at', 'type', 'camera_id', 'track_id', 'data']);
    if (pg && cursor > 0) {
      const at = await this.ctx.db.selectFrom('events').select('seq').where('id', '=', cursor).executeTakeFirst();
      select = at?.seq !== undefined ? select.where('seq', '>', at.seq) : select.where('id', '>', cursor);
    } else {
      select = select.where('id', '>', cursor);
    }
    if (query.cameras && query.cameras.length > 0) select = select.where('camera_id', 'in', [...query.cameras, ALL_CAMERAS]);
    if (query.types && query.types.length > 0) select = select.where('type', 'in', [...query.types]);
    const rows = await select.orderBy(pg ? 'seq' : 'id', 'asc').limit(pageLimit(query.limit, 100)).execute();
    return rows.map(toEvent);
  }

  /** The events with these ids (those still stored), in the order asked. */
  async byIds(ids: readonly number[]): Promise<StoredEvent[]> {
    if (ids.length === 0) return [];
    const rows = await this.ctx.db.selectFrom('events').select(['id', 'at', 'type', 'camera_id', 'track_id', 'data']).where('id', 'in', [...ids]).execute();
    const byId = new Map(rows.map((r) => [r.id, toEvent(r)]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  /** The largest id stored, 0 when empty: where a restarted server continues counting. */
  async latestId(): Promise<number> {
    const row = await this.ctx.db.selectFrom('events').select((eb) => eb.fn.max('id').as('max')).executeTakeFirst();
    return Number(row?.max ?? 0);
  }

  /** The smallest id still stored, or null when empty: a cursor below it has lost events. */
  async oldestId(): Promise<number | null> {
    const row = await this.ctx.db.selectFrom('events').select((eb) => eb.fn.min('id').as('min')).executeTakeFirst();
    return row?.min === null || row?.min === undefined ? null : Number(row.min);
  }

  /** Deletes all but the newest `keep` events; returns how many went. */
  async prune(keep: number): Promise<number> {
    const order = this.ctx.dialect === 'postgres' ? 'seq' : 'id';
    const boundary = await this.ctx.db
      .selectFrom('events')
      .select(order)
      .orderBy(order, 'desc')
      .limit(1)
      .offset(Math.max(0, Math.floor(keep)))
      .executeTakeFirst();
    if (!boundary) return 0;
    const result = await this.ctx.db.deleteFrom('events').where(order, '<=', boundary[order]!).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Retention: deletes events older than cutoffMs (epoch ms); returns how many. */
  async deleteOlderThan(cutoffMs: number): Promise<number> {
    const result = await this.ctx.db.deleteFrom('events').where('at', '<', cutoffMs).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

export type { EventsSinceQuery, StoredEvent };
