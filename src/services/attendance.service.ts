import type { AttendanceConfig } from '../config/config.ts';
import {
  addDays,
  attendanceDay,
  AttendanceLedger,
  csvLine,
  dayCounts,
  dayCount,
  daysBetween,
  isWorkDay,
  localIso,
  minutesLate,
  parseTimeOfDay,
  type AttendanceRules,
  type DayCounts,
} from '../domain/attendance.ts';
import { AppError } from '../domain/errors.ts';
import type { EventBus } from '../events/event-bus.ts';
import { ALL_CAMERAS } from '../events/event-map.ts';
import type { AttendanceQuery, AttendanceRecordWithPerson, ExpectedPerson, Page, Store } from '../store/index.ts';
import type { SightingEvidence, SightingSink } from './camera-pipeline.service.ts';
import type { NegativeExamples } from './negative-examples.ts';

/*
 * Attendance (seeds 002 and 004): people recognised by a camera are checked in at most once per
 * attendance day, the last sighting of the day is their check-out, and reports read it back. The
 * camera pipeline reports every frame in which a track carries a person's identity; the domain
 * ledger counts agreeing frames, applies the eligibility rules and suppresses duplicates in
 * memory, and the store's unique index is the final word (two cameras or two servers racing
 * write one row). Check-outs are merged in memory and written every flushEveryMs, never one write
 * per frame. Revoking a check-in keeps the row (with reason and who), frees the day for the real
 * person and turns the check-in's face into a negative example for the person it was taken for.
 */

export const MAX_REPORT_DAYS = 366;
const EXPORT_PAGE = 1000;
const TRACK_IDLE_MS = 10 * 60_000;

export interface AttendanceServiceDeps {
  store: Store;
  /** Where attendance_checked_in goes; unset for read-only use (the CLI export). */
  bus?: Pick<EventBus, 'emit'>;
  config: AttendanceConfig;
  /** The identity search threshold in force (the default minimum similarity of a check-in). */
  searchThreshold: number;
  /** vision.livenessThreshold (applies when config.requireLiveness). */
  livenessThreshold: number;
  /** False when privacy.storeImages is off: no snapshots, whatever config.storeSnapshots says. */
  storeImages: boolean;
  /** The session running on a camera, if any (check-ins record it). */
  sessionOn?: (cameraId: string) => string | undefined;
  negatives?: Pick<NegativeExamples, 'add'>;
  now?: () => number;
  log?: (message: string) => void;
}

/** A check-in as the API shows it: the record plus local times and the late flag. */
export interface AttendanceLog extends Omit<AttendanceRecordWithPerson, 'revokedAt'> {
  /** Local ISO 8601 with offset, in attendance.timeZone. */
  checkInTime: string;
  checkOutTime: string;
  late: boolean;
  revokedAt: number | null;
}

export interface AbsentPerson {
  personId: string;
  name: string;
  externalId: string | null;
  department: string | null;
}

export interface TodayReport {
  day: string;
  timeZone: string;
  workDay: boolean;
  /** Local start time and grace that lateness is measured against. */
  startTime: string;
  lateAfterMin: number;
  counts: { expected: number; present: number; late: number; absent: number };
  present: AttendanceLog[];
  absent: AbsentPerson[];
}

export interface StatsReport {
  from: string;
  to: string;
  timeZone: string;
  days: DayCounts[];
  departments: { department: string | null; days: DayCounts[]; totals: { present: number; late: number; absent: number } }[];
  totals: { present: number; late: number; absent: number };
}

export interface CheckInStatus {
  personId: string;
  name: string;
  day: string;
  checkedIn: boolean;
  record: AttendanceLog | null;
}

export interface MarkInput {
  personId: string;
  /** Epoch ms; default now. */
  atMs?: number;
  note?: string | null;
  by: string | null;
}

export interface LogsFilter {
  from?: string;
  to?: string;
  personId?: string;
  department?: string;
  cameraId?: string;
  sessionId?: string;
  method?: 'recognition' | 'manual';
  includeRevoked?: boolean;
  limit?: number;
  offset?: number;
}

export class AttendanceNotFoundError extends AppError {
  constructor(id: string) {
    super('attendance_not_found', 404, `no check-in with id "${id}"`, { id });
  }
}

export const CSV_HEADER = [
  'id',
  'day',
  'person_id',
  'external_id',
  'name',
  'department',
  'check_in',
  'check_out',
  'late',
  'minutes_late',
  'method',
  'camera_id',
  'session_id',
  'similarity',
  'margin',
  'liveness',
  'revoked',
  'revoked_reason',
  'revoked_by',
  'note',
] as const;

export function rulesFromConfig(config: AttendanceConfig, searchThreshold: number, livenessThreshold: number): AttendanceRules {
  return {
    timeZone: config.timeZone,
    dayBoundaryMin: parseTimeOfDay(config.dayBoundary),
    startMin: parseTimeOfDay(config.startTime),
    lateAfterMin: config.lateAfterMin,
    workDays: config.workDays,
    minSimilarity: config.minSimilarity ?? searchThreshold,
    minAgreeingFrames: config.minAgreeingFrames,
    ...(config.requireLiveness ? { minLiveness: livenessThreshold } : {}),
  };
}

export class AttendanceService implements SightingSink {
  readonly rules: AttendanceRules;
  private readonly ledger: AttendanceLedger;
  /** person\0day → latest check-out not yet written. */
  private readonly pendingCheckOuts = new Map<string, { personId: string; day: string; atMs: number }>();
  private readonly writes = new Set<Promise<void>>();
  private readonly now: () => number;
  private readonly log: (message: string) => void;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(private readonly deps: AttendanceServiceDeps) {
    this.rules = rulesFromConfig(deps.config, deps.searchThreshold, deps.livenessThreshold);
    this.ledger = new AttendanceLedger(this.rules);
    this.now = deps.now ?? Date.now;
    this.log = deps.log ?? (() => undefined);
  }

  start(): void {
    this.timer = setInterval(() => {
      this.flush().catch((err: Error) => this.log(`attendance: could not write check-outs: ${err.message}`));
    }, this.deps.config.flushEveryMs);
    this.timer.unref();
  }

  /** The attendance day of an instant (default now). */
  dayOf(atMs: number = this.now()): string {
    return attendanceDay(atMs, this.rules);
  }

  /** One frame in which a track carries a person's identity (from the camera pipeline). Cheap; writes happen in the background. */
  sighted(cameraId: string, personId: string, confidence: number, atMs: number, evidence?: SightingEvidence): void {
    // Only per-frame sightings count frames; the one that comes with an identity decision repeats a frame.
    if (!this.deps.config.enabled || !evidence?.frame) return;
    const action = this.ledger.observe({ personId, cameraId, trackId: evidence.trackId, atMs, similarity: confidence, liveness: evidence.liveness });
    if (action.kind === 'check_out') this.queueCheckOut(personId, action.day, action.atMs);
    if (action.kind !== 'check_in') return;
    const write = this.writeCheckIn(cameraId, personId, confidence, atMs, action.day, action.minutesLate, action.agreeingFrames, evidence);
    this.writes.add(write);
    void write.finally(() => this.writes.delete(write));
  }

  private async writeCheckIn(
    cameraId: string,
    personId: string,
    similarity: number,
    atMs: number,
    day: string,
    late: number,
    agreeingFrames: number,
    evidence: SightingEvidence,
  ): Promise<void> {
    const keepImage = this.deps.storeImages && this.deps.config.storeSnapshots;
    try {
      const result = await this.deps.store.attendance.checkIn({
        personId,
        day,
        checkInAt: atMs,
        minutesLate: late,
        method: 'recognition',
        cameraId,
        sessionId: this.deps.sessionOn?.(cameraId) ?? null,
        trackId: evidence.trackId,
        similarity: round(similarity),
        margin: evidence.margin,
        liveness: evidence.liveness === null ? null : round(evidence.liveness),
        agreeingFrames,
        embedding: evidence.embedding,
        snapshot: keepImage ? (evidence.frame?.bytes ?? null) : null,
      });
      const stored = result.inserted ? result.record : result.existing;
      const checkOut = this.ledger.checkedIn(personId, day, stored.checkOutAt);
      if (checkOut !== null) this.queueCheckOut(personId, day, checkOut);
      if (result.inserted) {
        const record = result.record as AttendanceRecordWithPerson;
        this.deps.bus?.emit('attendance_checked_in', {
          camera_id: cameraId,
          track_id: evidence.trackId,
          ...this.eventPayload(record),
          message: `${record.name} checked in`,
        });
      }
    } catch (err) {
      this.ledger.checkInFailed(personId, day);
      this.log(`attendance: could not check ${personId} in: ${(err as Error).message}`);
    }
  }

  private eventPayload(record: AttendanceRecordWithPerson) {
    return {
      person_id: record.personId,
      name: record.name,
      external_id: record.externalId,
      at: new Date(record.checkInAt).toISOString(),
      camera: record.cameraId ?? 'manual',
      session_id: record.sessionId,
      record_id: record.id,
      day: record.day,
      late: record.minutesLate > 0,
      minutes_late: record.minutesLate,
      method: record.method,
      confidence: record.similarity === null ? null : Math.max(-1, Math.min(1, record.similarity)),
    };
  }

  private queueCheckOut(personId: string, day: string, atMs: number): void {
    const key = `${personId}\u0000${day}`;
    const prev = this.pendingCheckOuts.get(key);
    if (!prev || atMs > prev.atMs) this.pendingCheckOuts.set(key, { personId, day, atMs });
  }

  /** Writes pending check-outs (after waiting for check-ins under way); concurrent callers share one write. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    await Promise.allSettled([...this.writes]);
    const batch = [...this.pendingCheckOuts.values()];
    this.pendingCheckOuts.clear();
    const now = this.now();
    this.ledger.prune(attendanceDay(now - 36 * 3600_000, this.rules), now, TRACK_IDLE_MS);
    if (batch.length === 0) return;
    this.flushing = (async () => {
      for (const [i, c] of batch.entries()) {
        try {
          await this.deps.store.attendance.extendCheckOut(c.personId, c.day, c.atMs);
        } catch (err) {
          // Written at the next flush.
          for (const rest of batch.slice(i)) this.queueCheckOut(rest.personId, rest.day, rest.atMs);
          throw err;
        }
      }
    })().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush().catch((err: Error) => this.log(`attendance: could not write check-outs at close: ${err.message}`));
  }

  // ---- reading ----

  private toLog(record: AttendanceRecordWithPerson): AttendanceLog {
    return {
      ...record,
      checkInTime: localIso(record.checkInAt, this.rules.timeZone),
      checkOutTime: localIso(record.checkOutAt, this.rules.timeZone),
      late: record.minutesLate > 0,
    };
  }

  private query(filter: LogsFilter): AttendanceQuery {
    if (filter.from !== undefined && filter.to !== undefined && filter.to < filter.from) {
      throw new AppError('validation_failed', 400, `"to" (${filter.to}) is before "from" (${filter.from})`);
    }
    const q: AttendanceQuery = {};
    if (filter.from !== undefined) q.fromDay = filter.from;
    if (filter.to !== undefined) q.toDay = filter.to;
    if (filter.personId !== undefined) q.personId = filter.personId;
    if (filter.department !== undefined) q.department = filter.department;
    if (filter.cameraId !== undefined) q.cameraId = filter.cameraId;
    if (filter.sessionId !== undefined) q.sessionId = filter.sessionId;
    if (filter.method !== undefined) q.method = filter.method;
    if (filter.includeRevoked !== undefined) q.includeRevoked = filter.includeRevoked;
    if (filter.limit !== undefined) q.limit = filter.limit;
    if (filter.offset !== undefined) q.offset = filter.offset;
    return q;
  }

  /** Check-ins, newest first, filtered and paged. */
  async logs(filter: LogsFilter = {}): Promise<Page<AttendanceLog>> {
    await this.flush();
    const page = await this.deps.store.attendance.list(this.query(filter));
    return { ...page, items: page.items.map((r) => this.toLog(r)) };
  }

  private async all(query: AttendanceQuery): Promise<AttendanceRecordWithPerson[]> {
    const out: AttendanceRecordWithPerson[] = [];
    for (let offset = 0; ; offset += EXPORT_PAGE) {
      const page = await this.deps.store.attendance.list({ ...query, order: 'asc', limit: EXPORT_PAGE, offset });
      out.push(...page.items);
      if (page.items.length < EXPORT_PAGE) return out;
    }
  }

  /** Who is present today (attendance day now) and who of the active people is not. */
  async today(department?: string): Promise<TodayReport> {
    await this.flush();
    const day = this.dayOf();
    const present = await this.all({ fromDay: day, toDay: day, ...(department === undefined ? {} : { department }) });
    const expected = (await this.deps.store.attendance.expectedPeople(department)).filter((p) => expectedOn(p, day, this.rules));
    const here = new Set(present.map((r) => r.personId));
    const absent = expected.filter((p) => !here.has(p.id)).map((p) => ({ personId: p.id, name: p.name, externalId: p.externalId, department: p.department }));
    const late = present.filter((r) => r.minutesLate > 0).length;
    return {
      day,
      timeZone: this.rules.timeZone,
      workDay: isWorkDay(day, this.rules),
      startTime: this.deps.config.startTime,
      lateAfterMin: this.rules.lateAfterMin,
      counts: { expected: expected.length, present: present.length, late, absent: absent.length },
      present: present.map((r) => this.toLog(r)),
      absent,
    };
  }

  /** Per day present / late / absent, overall and per department. Absent counts on work days only. */
  async stats(from?: string, to?: string): Promise<StatsReport> {
    await this.flush();
    const toDay = to ?? this.dayOf();
    const fromDay = from ?? addDays(toDay, -6);
    if (toDay < fromDay) throw new AppError('validation_failed', 400, `"to" (${toDay}) is before "from" (${fromDay})`);
    // Counted before the days are listed: a span of centuries is refused at once, not built first.
    if (dayCount(fromDay, toDay) > MAX_REPORT_DAYS) throw new AppError('validation_failed', 400, `a report covers at most ${MAX_REPORT_DAYS} days`);
    const days = daysBetween(fromDay, toDay);
    const presence = await this.deps.store.attendance.presence(fromDay, toDay);
    const people = await this.deps.store.attendance.expectedPeople();
    const departments = [...new Set([...people.map((p) => p.department), ...presence.map((p) => p.department)])].sort((a, b) =>
      a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1,
    );
    // Per department (undefined = everyone): present/late by day, and the sorted first days people count from.
    const key = (department: string | null | undefined, d: string) => `${department === undefined ? '*' : `=${department ?? ''}`}\u0000${d}`;
    const byDay = new Map<string, { present: number; late: number }>();
    for (const p of presence) {
      for (const k of [key(undefined, p.day), key(p.department, p.day)]) {
        const c = byDay.get(k) ?? { present: 0, late: 0 };
        c.present += p.present;
        c.late += p.late;
        byDay.set(k, c);
      }
    }
    const firstDays = new Map<string, string[]>();
    for (const p of people) {
      const first = attendanceDay(p.createdAt, this.rules);
      for (const k of [key(undefined, ''), key(p.department, '')]) {
        const list = firstDays.get(k);
        if (list) list.push(first);
        else firstDays.set(k, [first]);
      }
    }
    for (const list of firstDays.values()) list.sort();
    const countsFor = (department: string | null | undefined): DayCounts[] => {
      const starts = firstDays.get(key(department, '')) ?? [];
      return days.map((d) => {
        const c = byDay.get(key(department, d)) ?? { present: 0, late: 0 };
        return dayCounts(d, c.present, c.late, countAtMost(starts, d), this.rules);
      });
    };
    const totals = (list: DayCounts[]) => ({
      present: list.reduce((n, d) => n + d.present, 0),
      late: list.reduce((n, d) => n + d.late, 0),
      absent: list.reduce((n, d) => n + (d.absent ?? 0), 0),
    });
    const overall = countsFor(undefined);
    return {
      from: fromDay,
      to: toDay,
      timeZone: this.rules.timeZone,
      days: overall,
      departments: departments.map((department) => {
        const list = countsFor(department);
        return { department, days: list, totals: totals(list) };
      }),
      totals: totals(overall),
    };
  }

  /** One person's check-ins (newest first) with totals; 404 for an unknown person. */
  async personHistory(personId: string, filter: Pick<LogsFilter, 'from' | 'to' | 'limit' | 'offset' | 'includeRevoked'> = {}) {
    const person = await this.deps.store.people.get(personId);
    if (!person) throw new AppError('person_not_found', 404, `no person with id "${personId}"`, { personId });
    const page = await this.logs({ ...filter, personId });
    return {
      person: { id: person.id, name: person.name, externalId: person.externalId, department: person.department, active: person.active },
      ...page,
    };
  }

  /** Whether a person is checked in today (seed 002's check-in-status). */
  async checkInStatus(personId: string): Promise<CheckInStatus> {
    const person = await this.deps.store.people.get(personId);
    if (!person) throw new AppError('person_not_found', 404, `no person with id "${personId}"`, { personId });
    await this.flush();
    const day = this.dayOf();
    const record = await this.deps.store.attendance.current(personId, day);
    return { personId, name: person.name, day, checkedIn: record !== null, record: record ? this.toLog(record) : null };
  }

  /** CSV of the check-ins matching the filter (oldest first), header first; cells are spreadsheet-safe. */
  async *exportCsv(filter: Omit<LogsFilter, 'limit' | 'offset'> = {}): AsyncGenerator<string> {
    await this.flush();
    const query = this.query(filter);
    yield csvLine(CSV_HEADER);
    for (let offset = 0; ; offset += EXPORT_PAGE) {
      const page = await this.deps.store.attendance.list({ ...query, order: 'asc', limit: EXPORT_PAGE, offset });
      for (const r of page.items) {
        yield csvLine([
          r.id,
          r.day,
          r.personId,
          r.externalId,
          r.name,
          r.department,
          localIso(r.checkInAt, this.rules.timeZone),
          localIso(r.checkOutAt, this.rules.timeZone),
          r.minutesLate > 0,
          r.minutesLate,
          r.method,
          r.cameraId,
          r.sessionId,
          r.similarity === null ? null : round(r.similarity),
          r.margin === null ? null : round(r.margin),
          r.liveness === null ? null : round(r.liveness),
          r.revoked,
          r.revokedReason,
          r.revokedBy,
          r.note,
        ]);
      }
      if (page.items.length < EXPORT_PAGE) return;
    }
  }

  // ---- corrections ----

  /** An operator marks a person present (manual check-in); 409 already_checked_in when they are. */
  async mark(input: MarkInput): Promise<AttendanceLog> {
    const now = this.now();
    const atMs = input.atMs ?? now;
    if (atMs > now + 60_000) throw new AppError('validation_failed', 400, 'a check-in cannot be in the future');
    const person = await this.deps.store.people.get(input.personId);
    if (!person) throw new AppError('person_not_found', 404, `no person with id "${input.personId}"`, { personId: input.personId });
    const day = this.dayOf(atMs);
    const result = await this.deps.store.attendance.checkIn({
      personId: person.id,
      day,
      checkInAt: atMs,
      minutesLate: minutesLate(atMs, this.rules),
      method: 'manual',
      note: input.note ?? null,
      markedBy: input.by,
    });
    if (!result.inserted) {
      throw new AppError('already_checked_in', 409, `${person.name} is already checked in on ${day}`, { id: result.existing.id, day });
    }
    this.ledger.marked(person.id, day, result.record.checkOutAt);
    const record = result.record as AttendanceRecordWithPerson;
    this.deps.bus?.emit('attendance_checked_in', { camera_id: ALL_CAMERAS, track_id: null, ...this.eventPayload(record), message: `${record.name} marked present` });
    return this.toLog(record);
  }

  /**
   * Revokes a wrong check-in with a reason: the row stays (revoked, with reason and who), the day
   * is free for the real person, and the check-in's face becomes a negative example for the
   * person it was taken for. 404 unknown id, 409 already_revoked.
   */
  async revoke(id: string, reason: string, by: string | null): Promise<AttendanceLog> {
    // Pending check-outs of this row must not land after it is revoked (they would not anyway: revoked rows are not updated).
    const record = await this.deps.store.attendance.revoke(id, { reason, by, at: this.now() });
    if (!record) {
      const existing = await this.deps.store.attendance.get(id);
      if (!existing) throw new AttendanceNotFoundError(id);
      throw new AppError('already_revoked', 409, `check-in "${id}" was already revoked`, { id });
    }
    this.ledger.revoked(record.personId, record.day, record.cameraId !== null && record.trackId !== null ? { cameraId: record.cameraId, trackId: record.trackId } : null);
    const face = await this.deps.store.attendance.embeddingOf(id);
    if (face) this.deps.negatives?.add({ recordId: id, personId: record.personId, modelId: face.modelId, embedding: face.embedding });
    return this.toLog(record);
  }

  /** A check-in by id; 404 when unknown. */
  async get(id: string): Promise<AttendanceLog> {
    const record = await this.deps.store.attendance.get(id);
    if (!record) throw new AttendanceNotFoundError(id);
    return this.toLog(record);
  }

  /** The stored check-in image; 404 when there is none. */
  async snapshot(id: string): Promise<Buffer> {
    const bytes = await this.deps.store.attendance.snapshot(id);
    if (!bytes) throw new AppError('snapshot_not_found', 404, `check-in "${id}" has no stored image`, { id });
    return bytes;
  }
}

/** How many of the sorted days are on or before `day` (binary search). */
function countAtMost(sorted: readonly string[], day: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= day) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A person counts as expected on a day from the attendance day they were created on. */
function expectedOn(person: ExpectedPerson, day: string, rules: AttendanceRules): boolean {
  return attendanceDay(person.createdAt, rules) <= day;
}

const round = (value: number, digits = 4): number => Number(value.toFixed(digits));
