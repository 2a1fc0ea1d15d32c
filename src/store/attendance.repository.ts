import { randomUUID } from 'node:crypto';
import { sql, type Selectable } from 'kysely';
import { bytesToEmbedding, embeddingToBytes } from './embedding-bytes.ts';
import { openStoredEmbedding } from './embedding-cipher.ts';
import { pageLimit, type RepositoryContext } from './repository-context.ts';
import type { AttendanceTable } from './schema.ts';
import type { Page } from './types.ts';

export type AttendanceMethod = 'recognition' | 'manual';

/** One check-in: a person present on an attendance day, with the evidence and any correction. */
export interface AttendanceRecord {
  id: string;
  personId: string;
  /** 'YYYY-MM-DD' in the configured time zone. */
  day: string;
  /** Epoch ms. */
  checkInAt: number;
  /** The last sighting of the day, epoch ms (= checkInAt until a later one). */
  checkOutAt: number;
  /** 0 = on time. */
  minutesLate: number;
  method: AttendanceMethod;
  cameraId: string | null;
  sessionId: string | null;
  trackId: string | null;
  similarity: number | null;
  margin: number | null;
  liveness: number | null;
  agreeingFrames: number | null;
  /** Whether an image of the check-in was kept (never with privacy.storeImages off). */
  hasSnapshot: boolean;
  note: string | null;
  /** Who marked a manual check-in (API key name). */
  markedBy: string | null;
  revoked: boolean;
  revokedReason: string | null;
  revokedBy: string | null;
  revokedAt: number | null;
  createdAt: number;
}

/** A record with the person's current name, external id and department. */
export interface AttendanceRecordWithPerson extends AttendanceRecord {
  name: string;
  externalId: string | null;
  department: string | null;
}

export interface NewCheckIn {
  personId: string;
  day: string;
  checkInAt: number;
  minutesLate: number;
  method: AttendanceMethod;
  cameraId?: string | null;
  sessionId?: string | null;
  trackId?: string | null;
  similarity?: number | null;
  margin?: number | null;
  liveness?: number | null;
  agreeingFrames?: number | null;
  /** The check-in face's embedding (kept as negative evidence should it be revoked). */
  embedding?: { modelId: string; vector: Float32Array } | null;
  /** JPEG bytes; dropped when the store keeps no images. */
  snapshot?: Uint8Array | null;
  note?: string | null;
  markedBy?: string | null;
}

export type CheckInResult = { inserted: true; record: AttendanceRecord } | { inserted: false; existing: AttendanceRecord };

export interface AttendanceQuery {
  /** Attendance days, both included, 'YYYY-MM-DD'. */
  fromDay?: string;
  toDay?: string;
  personId?: string;
  department?: string;
  cameraId?: string;
  sessionId?: string;
  method?: AttendanceMethod;
  /** Revoked check-ins are left out unless asked for. */
  includeRevoked?: boolean;
  /** Default newest first. */
  order?: 'asc' | 'desc';
  /** Page size; default 50, at most 1000. */
  limit?: number;
  offset?: number;
}

export interface RevokeInput {
  reason: string;
  by: string | null;
  at?: number;
}

/** A revoked recognition check-in's face: "this was not personId". */
export interface NegativeExample {
  recordId: string;
  personId: string;
  modelId: string;
  embedding: Float32Array;
}

/** Present and late counts of one day, overall or for one department. */
export interface DayPresence {
  day: string;
  department: string | null;
  present: number;
  late: number;
}

/** A person who counts as expected at work (active). */
export interface ExpectedPerson {
  id: string;
  name: string;
  externalId: string | null;
  department: string | null;
  createdAt: number;
}

const COLUMNS = [
  'a.id',
  'a.person_id',
  'a.attendance_day',
  'a.check_in_at',
  'a.check_out_at',
  'a.minutes_late',
  'a.method',
  'a.camera_id',
  'a.session_id',
  'a.track_id',
  'a.similarity',
  'a.margin',
  'a.liveness',
  'a.agreeing_frames',
  'a.note',
  'a.marked_by',
  'a.revoked',
  'a.revoked_reason',
  'a.revoked_by',
  'a.revoked_at',
  'a.created_at',
] as const;

type RecordRow = Omit<Selectable<AttendanceTable>, 'embedding' | 'snapshot' | 'model_id'> & { has_snapshot: number | boolean | string };

function toRecord(row: RecordRow): AttendanceRecord {
  return {
    id: row.id,
    personId: row.person_id,
    day: row.attendance_day,
    checkInAt: row.check_in_at,
    checkOutAt: row.check_out_at,
    minutesLate: row.minutes_late,
    method: row.method === 'manual' ? 'manual' : 'recognition',
    cameraId: row.camera_id,
    sessionId: row.session_id,
    trackId: row.track_id,
    similarity: row.similarity,
    margin: row.margin,
    liveness: row.liveness,
    agreeingFrames: row.agreeing_frames,
    hasSnapshot: Number(row.has_snapshot) === 1 || row.has_snapshot === true,
    note: row.note,
    markedBy: row.marked_by,
    revoked: row.revoked === 1,
    revokedReason: row.revoked_reason,
    revokedBy: row.revoked_by,
    revokedAt: row.revoked_at,
    createdAt: row.created_at,
  };
}

export class AttendanceRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  private selectRecords() {
    return this.ctx.db
      .selectFrom('attendance as a')
      .innerJoin('people as p', 'p.id', 'a.person_id')
      .select(COLUMNS)
      .select(sql<number>`case when a.snapshot is null then 0 else 1 end`.as('has_snapshot'))
      .select(['p.name', 'p.external_id', 'p.department']);
  }

  /**
   * Writes a check-in unless the person already has one (not revoked) that day: the unique index
   * decides, so concurrent writers get exactly one row. A person deleted meanwhile fails with the
   * driver's foreign key error.
   */
  async checkIn(input: NewCheckIn): Promise<CheckInResult> {
    const id = randomUUID();
    const row: AttendanceTable = {
      id,
      person_id: input.personId,
      attendance_day: input.day,
      check_in_at: input.checkInAt,
      check_out_at: input.checkInAt,
      minutes_late: input.minutesLate,
      method: input.method,
      camera_id: input.cameraId ?? null,
      session_id: input.sessionId ?? null,
      track_id: input.trackId ?? null,
      similarity: input.similarity ?? null,
      margin: input.margin ?? null,
      liveness: input.liveness ?? null,
      agreeing_frames: input.agreeingFrames ?? null,
      model_id: input.embedding?.modelId ?? null,
      // Sealed like template embeddings when trust.embeddingKey is set (the row id is the authenticated data).
      embedding: input.embedding ? (this.ctx.cipher?.seal(embeddingToBytes(input.embedding.vector), id) ?? Buffer.from(embeddingToBytes(input.embedding.vector))) : null,
      snapshot: input.snapshot && this.ctx.storeImages ? Buffer.from(input.snapshot) : null,
      note: input.note ?? null,
      marked_by: input.markedBy ?? null,
      revoked: 0,
      revoked_reason: null,
      revoked_by: null,
      revoked_at: null,
      created_at: this.ctx.now(),
    };
    const inserted = await this.ctx.db
      .insertInto('attendance')
      .values(row)
      // The index predicate is spelled as in the index: SQLite matches a partial index only on a literal.
      .onConflict((oc) => oc.columns(['person_id', 'attendance_day']).where(sql<boolean>`revoked = 0`).doNothing())
      .returning('id')
      .executeTakeFirst();
    if (inserted) return { inserted: true, record: (await this.get(row.id))! };
    const existing = await this.current(input.personId, input.day);
    // Revoked between our insert and this read: try once more.
    if (!existing) return this.checkIn(input);
    return { inserted: false, existing };
  }

  /** Moves the check-out of a person's (not revoked) check-in of a day to `atMs` when that is later. Returns whether a row changed. */
  async extendCheckOut(personId: string, day: string, atMs: number): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('attendance')
      .set({ check_out_at: atMs })
      .where('person_id', '=', personId)
      .where('attendance_day', '=', day)
      .where('revoked', '=', 0)
      .where('check_out_at', '<', atMs)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async get(id: string): Promise<AttendanceRecordWithPerson | null> {
    const row = await this.selectRecords().where('a.id', '=', id).executeTakeFirst();
    return row ? withPerson(row) : null;
  }

  /** A person's check-in (not revoked) of a day. */
  async current(personId: string, day: string): Promise<AttendanceRecordWithPerson | null> {
    const row = await this.selectRecords().where('a.person_id', '=', personId).where('a.attendance_day', '=', day).where('a.revoked', '=', 0).executeTakeFirst();
    return row ? withPerson(row) : null;
  }

  /** Check-ins matching the filters, by check-in time (newest first unless order asc), with a total. */
  async list(query: AttendanceQuery = {}): Promise<Page<AttendanceRecordWithPerson>> {
    const limit = pageLimit(query.limit, 50);
    const offset = Math.max(0, Math.floor(query.offset ?? 0));
    let select = this.ctx.db.selectFrom('attendance as a').innerJoin('people as p', 'p.id', 'a.person_id');
    if (query.fromDay !== undefined) select = select.where('a.attendance_day', '>=', query.fromDay);
    if (query.toDay !== undefined) select = select.where('a.attendance_day', '<=', query.toDay);
    if (query.personId !== undefined) select = select.where('a.person_id', '=', query.personId);
    if (query.department !== undefined) select = select.where('p.department', '=', query.department);
    if (query.cameraId !== undefined) select = select.where('a.camera_id', '=', query.cameraId);
    if (query.sessionId !== undefined) select = select.where('a.session_id', '=', query.sessionId);
    if (query.method !== undefined) select = select.where('a.method', '=', query.method);
    if (!query.includeRevoked) select = select.where('a.revoked', '=', 0);
    const order = query.order ?? 'desc';
    const [rows, count] = await Promise.all([
      select
        .select(COLUMNS)
        .select(sql<number>`case when a.snapshot is null then 0 else 1 end`.as('has_snapshot'))
        .select(['p.name', 'p.external_id', 'p.department'])
        .orderBy('a.check_in_at', order)
        .orderBy('a.id', order)
        .limit(limit)
        .offset(offset)
        .execute(),
      select.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items: rows.map(withPerson), total: Number(count.n), limit, offset };
  }

  /** Marks a check-in revoked; null when there is no such check-in or it was revoked already. */
  async revoke(id: string, input: RevokeInput): Promise<AttendanceRecordWithPerson | null> {
    const result = await this.ctx.db
      .updateTable('attendance')
      .set({ revoked: 1, revoked_reason: input.reason, revoked_by: input.by, revoked_at: input.at ?? this.ctx.now() })
      .where('id', '=', id)
      .where('revoked', '=', 0)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return null;
    return this.get(id);
  }

  /** The stored check-in image, when one was kept. */
  async snapshot(id: string): Promise<Buffer | null> {
    const row = await this.ctx.db.selectFrom('attendance').select('snapshot').where('id', '=', id).executeTakeFirst();
    return row?.snapshot ?? null;
  }

  /** Drops every stored check-in image (privacy.storeImages turned off); returns how many. */
  async purgeSnapshots(): Promise<number> {
    const result = await this.ctx.db.updateTable('attendance').set({ snapshot: null }).where('snapshot', 'is not', null).executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Every revoked check-in's face of one model: the negative examples of the identity decision. */
  async negativeExamples(modelId: string): Promise<NegativeExample[]> {
    const rows = await this.ctx.db
      .selectFrom('attendance')
      .select(['id', 'person_id', 'model_id', 'embedding'])
      .where('revoked', '=', 1)
      .where('model_id', '=', modelId)
      .where('embedding', 'is not', null)
      .execute();
    return rows.map((r) => ({ recordId: r.id, personId: r.person_id, modelId: r.model_id!, embedding: bytesToEmbedding(openStoredEmbedding(r.embedding!, r.id, this.ctx.cipher)) }));
  }

  /** The embedding of one check-in, if kept. */
  async embeddingOf(id: string): Promise<{ modelId: string; embedding: Float32Array } | null> {
    const row = await this.ctx.db.selectFrom('attendance').select(['model_id', 'embedding']).where('id', '=', id).executeTakeFirst();
    if (!row || row.embedding === null || row.model_id === null) return null;
    return { modelId: row.model_id, embedding: bytesToEmbedding(openStoredEmbedding(row.embedding, id, this.ctx.cipher)) };
  }

  /** Present and late counts (check-ins not revoked) per day and department, days both included. */
  async presence(fromDay: string, toDay: string): Promise<DayPresence[]> {
    const rows = await this.ctx.db
      .selectFrom('attendance as a')
      .innerJoin('people as p', 'p.id', 'a.person_id')
      .select(['a.attendance_day', 'p.department'])
      .select((eb) => [eb.fn.countAll<number>().as('present'), eb.fn.sum<number>(sql<number>`case when a.minutes_late > 0 then 1 else 0 end`).as('late')])
      .where('a.attendance_day', '>=', fromDay)
      .where('a.attendance_day', '<=', toDay)
      .where('a.revoked', '=', 0)
      .groupBy(['a.attendance_day', 'p.department'])
      .orderBy('a.attendance_day')
      .execute();
    return rows.map((r) => ({ day: r.attendance_day, department: r.department, present: Number(r.present), late: Number(r.late ?? 0) }));
  }

  /** Active people, by name: who is expected (absent = expected and not present). */
  async expectedPeople(department?: string): Promise<ExpectedPerson[]> {
    let select = this.ctx.db.selectFrom('people').select(['id', 'name', 'external_id', 'department', 'created_at']).where('active', '=', 1);
    if (department !== undefined) select = select.where('department', '=', department);
    const rows = await select.orderBy('name').orderBy('id').execute();
    return rows.map((r) => ({ id: r.id, name: r.name, externalId: r.external_id, department: r.department, createdAt: r.created_at }));
  }
}

function withPerson(row: RecordRow & { name: string; external_id: string | null; department: string | null }): AttendanceRecordWithPerson {
  return { ...toRecord(row), name: row.name, externalId: row.external_id, department: row.department };
}
