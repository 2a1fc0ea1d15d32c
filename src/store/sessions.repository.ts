import { randomUUID } from 'node:crypto';
import { sql, type Selectable } from 'kysely';
import { isForeignKeyViolation } from './errors.ts';
import { pageLimit, type RepositoryContext } from './repository-context.ts';
import type { SessionsTable } from './schema.ts';
import type { Page } from './types.ts';

/** One roster entry as given at start (a person id or an external id) and the person it named, if any. */
export interface RosterEntry {
  ref: string;
  personId: string | null;
}

export type SessionStatus = 'running' | 'stopped';

/** A recognition session (seed 004): who was seen on one camera between a start and a stop. */
export interface RecognitionSession {
  id: string;
  cameraId: string;
  label: string | null;
  /** null = everyone recognised counts. */
  roster: RosterEntry[] | null;
  startedAt: number;
  stoppedAt: number | null;
  status: SessionStatus;
}

export interface NewRecognitionSession {
  cameraId: string;
  label?: string | null;
  roster?: RosterEntry[] | null;
  /** Default now. */
  startedAt?: number;
}

/** One person seen during a session. */
export interface SessionSighting {
  sessionId: string;
  personId: string;
  firstSeen: number;
  lastSeen: number;
  bestConfidence: number;
}

/** A sighting with the person's current name and external id. */
export interface SessionSightingWithPerson extends SessionSighting {
  name: string;
  externalId: string | null;
}

export interface SessionListQuery {
  cameraId?: string;
  status?: SessionStatus;
  /** Page size; default 50, at most 1000. */
  limit?: number;
  offset?: number;
}

function toSession(row: Selectable<SessionsTable>): RecognitionSession {
  return {
    id: row.id,
    cameraId: row.camera_id,
    label: row.label,
    roster: row.roster === null ? null : (JSON.parse(row.roster) as RosterEntry[]),
    startedAt: row.started_at,
    stoppedAt: row.stopped_at,
    status: row.status === 'stopped' ? 'stopped' : 'running',
  };
}

export class SessionsRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(input: NewRecognitionSession): Promise<RecognitionSession> {
    const row: SessionsTable = {
      id: randomUUID(),
      camera_id: input.cameraId,
      label: input.label ?? null,
      roster: input.roster ? JSON.stringify(input.roster) : null,
      started_at: input.startedAt ?? this.ctx.now(),
      stopped_at: null,
      status: 'running',
    };
    await this.ctx.db.insertInto('sessions').values(row).execute();
    return toSession(row);
  }

  async get(id: string): Promise<RecognitionSession | null> {
    const row = await this.ctx.db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toSession(row) : null;
  }

  /** Newest first. */
  async list(query: SessionListQuery = {}): Promise<Page<RecognitionSession>> {
    const limit = pageLimit(query.limit, 50);
    const offset = Math.max(0, Math.floor(query.offset ?? 0));
    let select = this.ctx.db.selectFrom('sessions');
    if (query.cameraId !== undefined) select = select.where('camera_id', '=', query.cameraId);
    if (query.status !== undefined) select = select.where('status', '=', query.status);
    const [rows, count] = await Promise.all([
      select.selectAll().orderBy('started_at', 'desc').orderBy('id', 'desc').limit(limit).offset(offset).execute(),
      select.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items: rows.map(toSession), total: Number(count.n), limit, offset };
  }

  /** Every running session (to resume recording after a restart). */
  async listRunning(): Promise<RecognitionSession[]> {
    const rows = await this.ctx.db.selectFrom('sessions').selectAll().where('status', '=', 'running').orderBy('started_at').execute();
    return rows.map(toSession);
  }

  /** Marks a running session stopped; null when there is no such running session. */
  async stop(id: string, at: number = this.ctx.now()): Promise<RecognitionSession | null> {
    const result = await this.ctx.db
      .updateTable('sessions')
      .set({ status: 'stopped', stopped_at: at })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return null;
    return this.get(id);
  }

  /**
   * Merges sightings into the stored ones: first seen is the earlier, last seen the later, best
   * confidence the higher. A sighting of a person deleted meanwhile is skipped. Returns how many
   * were written.
   */
  async upsertSightings(sightings: readonly SessionSighting[]): Promise<number> {
    const least = sql.raw(this.ctx.dialect === 'postgres' ? 'least' : 'min');
    const greatest = sql.raw(this.ctx.dialect === 'postgres' ? 'greatest' : 'max');
    let written = 0;
    // One statement each: a person erased meanwhile fails only their own row.
    for (const s of sightings) {
      try {
        await this.ctx.db
          .insertInto('session_sightings')
          .values({ session_id: s.sessionId, person_id: s.personId, first_seen: s.firstSeen, last_seen: s.lastSeen, best_confidence: s.bestConfidence })
          .onConflict((oc) =>
            oc.columns(['session_id', 'person_id']).doUpdateSet({
              first_seen: sql<number>`${least}(session_sightings.first_seen, excluded.first_seen)`,
              last_seen: sql<number>`${greatest}(session_sightings.last_seen, excluded.last_seen)`,
              best_confidence: sql<number>`${greatest}(session_sightings.best_confidence, excluded.best_confidence)`,
            }),
          )
          .execute();
        written++;
      } catch (err) {
        if (!isForeignKeyViolation(err)) throw err;
      }
    }
    return written;
  }

  /** A session's sightings with each person's name and external id, in order of first sighting. */
  async sightings(sessionId: string): Promise<SessionSightingWithPerson[]> {
    const rows = await this.ctx.db
      .selectFrom('session_sightings as s')
      .innerJoin('people as p', 'p.id', 's.person_id')
      .select(['s.session_id', 's.person_id', 's.first_seen', 's.last_seen', 's.best_confidence', 'p.name', 'p.external_id'])
      .where('s.session_id', '=', sessionId)
      .orderBy('s.first_seen')
      .orderBy('s.person_id')
      .execute();
    return rows.map((r) => ({
      sessionId: r.session_id,
      personId: r.person_id,
      firstSeen: r.first_seen,
      lastSeen: r.last_seen,
      bestConfidence: r.best_confidence,
      name: r.name,
      externalId: r.external_id,
    }));
  }
}
