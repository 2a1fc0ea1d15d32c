/*
 * Attendance rules, pure: which attendance day an instant belongs to, whether a sighting may check
 * a person in, whether a check-in is late, and the per-day ledger that turns a stream of sightings
 * into at most one check-in per person and day plus the latest sighting as check-out.
 *
 * Days are computed from wall-clock fields in the configured IANA time zone (Intl.DateTimeFormat),
 * never by adding hours to an instant: on a DST change day the local day is 23 or 25 hours long,
 * and "instant − boundary" would put sightings near the boundary into the wrong day. The day
 * boundary (e.g. 04:00) lets a night shift's 01:30 sighting belong to the day before.
 */

/** An attendance day, 'YYYY-MM-DD' in the configured time zone. */
export type AttendanceDay = string;

export interface AttendanceRules {
  /** IANA time zone, e.g. 'Europe/Berlin'. */
  timeZone: string;
  /** Local minutes after midnight at which a new attendance day starts (0 = midnight). */
  dayBoundaryMin: number;
  /** Local start of the working day, minutes after midnight; a later check-in is late. */
  startMin: number;
  /** Minutes of grace after startMin before a check-in counts as late. */
  lateAfterMin: number;
  /** ISO weekdays (1 = Monday … 7 = Sunday) on which absence counts. */
  workDays: readonly number[];
  /** The track's identity similarity must reach this (the search threshold in force). */
  minSimilarity: number;
  /** Frames of the track that carried the person's identity before a check-in. */
  minAgreeingFrames: number;
  /** Liveness score needed; undefined = liveness is not required. */
  minLiveness?: number;
}

const DAY_PATTERN = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIME_PATTERN = /^([01]\d|2[0-3]):([0-5]\d)$/;
const MS_PER_DAY = 86_400_000;

/** 'HH:MM' → minutes after midnight; throws RangeError on anything else. */
export function parseTimeOfDay(text: string): number {
  const m = TIME_PATTERN.exec(text);
  if (!m) throw new RangeError(`"${text}" is not a time of day HH:MM`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/** Whether the runtime knows this IANA time zone. */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** Whether text is a real calendar date 'YYYY-MM-DD'. */
export function isAttendanceDay(text: string): boolean {
  const m = DAY_PATTERN.exec(text);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.getUTCFullYear() === Number(m[1]) && d.getUTCMonth() === Number(m[2]) - 1 && d.getUTCDate() === Number(m[3]);
}

export interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall-clock time of an instant (epoch ms) in a time zone. */
export function localTime(atMs: number, timeZone: string): LocalTime {
  const out: LocalTime = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const part of formatter(timeZone).formatToParts(new Date(atMs))) {
    if (part.type === 'year' || part.type === 'month' || part.type === 'day' || part.type === 'hour' || part.type === 'minute' || part.type === 'second') {
      out[part.type] = Number(part.value);
    }
  }
  return out;
}

/** The zone's offset from UTC at an instant, in minutes (Berlin summer: +120). */
export function utcOffsetMin(atMs: number, timeZone: string): number {
  const t = localTime(atMs, timeZone);
  const asUtc = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second);
  return Math.round((asUtc - Math.floor(atMs / 1000) * 1000) / 60_000);
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

function formatDay(year: number, month: number, day: number): AttendanceDay {
  return `${pad(year, 4)}-${pad(month)}-${pad(day)}`;
}

/** Epoch ms of a day's 00:00 UTC (Date.UTC would read the years 0–99 as 1900–1999). */
function utcMidnightMs(day: AttendanceDay): number {
  const m = DAY_PATTERN.exec(day);
  if (!m) throw new RangeError(`"${day}" is not a day YYYY-MM-DD`);
  return new Date(0).setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
}

/** A calendar day plus n days (calendar arithmetic, no time zone involved). */
export function addDays(day: AttendanceDay, n: number): AttendanceDay {
  const d = new Date(utcMidnightMs(day) + n * MS_PER_DAY);
  return formatDay(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate());
}

/** How many days `from` to `to` spans, both included (0 or less when to < from), without listing them. */
export function dayCount(from: AttendanceDay, to: AttendanceDay): number {
  return Math.round((utcMidnightMs(to) - utcMidnightMs(from)) / MS_PER_DAY) + 1;
}

/** Days from `from` to `to`, both included; empty when to < from. Never the day after `to` (9999-12-31 has none). */
export function daysBetween(from: AttendanceDay, to: AttendanceDay): AttendanceDay[] {
  return Array.from({ length: Math.max(0, dayCount(from, to)) }, (_, i) => addDays(from, i));
}

/** ISO weekday of a day: 1 = Monday … 7 = Sunday. */
export function isoWeekday(day: AttendanceDay): number {
  const w = new Date(utcMidnightMs(day)).getUTCDay();
  return w === 0 ? 7 : w;
}

export function isWorkDay(day: AttendanceDay, rules: Pick<AttendanceRules, 'workDays'>): boolean {
  return rules.workDays.includes(isoWeekday(day));
}

/** The attendance day of an instant: the local date, or the day before when the local time is before the boundary. */
export function attendanceDay(atMs: number, rules: Pick<AttendanceRules, 'timeZone' | 'dayBoundaryMin'>): AttendanceDay {
  const t = localTime(atMs, rules.timeZone);
  const day = formatDay(t.year, t.month, t.day);
  return t.hour * 60 + t.minute < rules.dayBoundaryMin ? addDays(day, -1) : day;
}

/**
 * Local minutes since the start (midnight) of the instant's attendance day: after the boundary
 * this is the time of day, before it (a night shift past midnight) 24 h more.
 */
export function minutesIntoDay(atMs: number, rules: Pick<AttendanceRules, 'timeZone' | 'dayBoundaryMin'>): number {
  const t = localTime(atMs, rules.timeZone);
  const minutes = t.hour * 60 + t.minute + t.second / 60;
  return t.hour * 60 + t.minute < rules.dayBoundaryMin ? minutes + 24 * 60 : minutes;
}

/** How many minutes after the start time (plus grace) a check-in came, to the nearest minute (at least 1 when late); 0 when on time. */
export function minutesLate(atMs: number, rules: Pick<AttendanceRules, 'timeZone' | 'dayBoundaryMin' | 'startMin' | 'lateAfterMin'>): number {
  const late = minutesIntoDay(atMs, rules) - (rules.startMin + rules.lateAfterMin);
  // Any lateness counts (at least 1); otherwise to the nearest minute.
  return late > 0 ? Math.max(1, Math.round(late)) : 0;
}

export function isLate(atMs: number, rules: Pick<AttendanceRules, 'timeZone' | 'dayBoundaryMin' | 'startMin' | 'lateAfterMin'>): boolean {
  return minutesLate(atMs, rules) > 0;
}

/** An instant as local ISO 8601 with the zone's offset, e.g. '2026-03-29T09:15:00+02:00'. */
export function localIso(atMs: number, timeZone: string): string {
  const t = localTime(atMs, timeZone);
  const offset = utcOffsetMin(atMs, timeZone);
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return `${formatDay(t.year, t.month, t.day)}T${pad(t.hour)}:${pad(t.minute)}:${pad(t.second)}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** What a sighting brings as evidence for a check-in. */
export interface SightingEvidence {
  /** The track's identity similarity for the person. */
  similarity: number;
  /** Frames of this track that carried the person's identity so far (this one included). */
  agreeingFrames: number;
  /** The track's liveness score; null = not measured. */
  liveness: number | null;
}

export type Eligibility = { eligible: true } | { eligible: false; reason: 'below_threshold' | 'too_few_frames' | 'liveness_unmeasured' | 'spoof_suspected' };

/** Whether a sighting may check its person in: search threshold, agreeing frames, and liveness when required. */
export function checkInEligibility(evidence: SightingEvidence, rules: Pick<AttendanceRules, 'minSimilarity' | 'minAgreeingFrames' | 'minLiveness'>): Eligibility {
  if (!(evidence.similarity >= rules.minSimilarity)) return { eligible: false, reason: 'below_threshold' };
  if (evidence.agreeingFrames < rules.minAgreeingFrames) return { eligible: false, reason: 'too_few_frames' };
  if (rules.minLiveness !== undefined) {
    if (evidence.liveness === null) return { eligible: false, reason: 'liveness_unmeasured' };
    if (evidence.liveness < rules.minLiveness) return { eligible: false, reason: 'spoof_suspected' };
  }
  return { eligible: true };
}

export interface Sighting extends SightingEvidence {
  personId: string;
  cameraId: string;
  trackId: string;
  atMs: number;
}

export type LedgerAction =
  /** Write a check-in (the store's unique constraint is the final word); then call checkedIn or checkInFailed. */
  | { kind: 'check_in'; day: AttendanceDay; minutesLate: number }
  /** The person is checked in today: this sighting moves the check-out to atMs. */
  | { kind: 'check_out'; day: AttendanceDay; atMs: number }
  /** Nothing to write: not eligible yet, a check-in is being written, or the sighting is older than the check-out. */
  | { kind: 'none'; day: AttendanceDay; reason: string };

type DayState = { kind: 'writing'; pendingCheckOutMs: number } | { kind: 'checked_in'; checkOutMs: number };

/**
 * Per person and attendance day, what is known in memory: a check-in being written, or done (with
 * the latest check-out). Also counts each track's agreeing frames, and remembers tracks whose
 * check-in was revoked so that the same wrong track does not check the person in again.
 */
export class AttendanceLedger {
  private readonly days = new Map<string, DayState>();
  private readonly trackFrames = new Map<string, { personId: string; frames: number; lastMs: number }>();
  private readonly revokedTracks = new Set<string>();
  /** The day of the last minute asked about: every zone offset is whole minutes, so a day never changes within one. */
  private cachedMinute = Number.NaN;
  private cachedDay: AttendanceDay = '';

  constructor(private readonly rules: AttendanceRules) {}

  /** attendanceDay, cached per minute (the ledger runs for every frame of every known track). */
  dayOf(atMs: number): AttendanceDay {
    const minute = Math.floor(atMs / 60_000);
    if (minute !== this.cachedMinute) {
      this.cachedDay = attendanceDay(atMs, this.rules);
      this.cachedMinute = minute;
    }
    return this.cachedDay;
  }

  /** One frame of a track that carries a person's identity. */
  observe(s: Omit<Sighting, 'agreeingFrames'>): LedgerAction & { agreeingFrames: number } {
    const trackKey = `${s.cameraId}\u0000${s.trackId}`;
    const counted = this.trackFrames.get(trackKey);
    const frames = counted && counted.personId === s.personId ? counted.frames + 1 : 1;
    this.trackFrames.set(trackKey, { personId: s.personId, frames, lastMs: s.atMs });
    return { ...this.decide({ ...s, agreeingFrames: frames }), agreeingFrames: frames };
  }

  private decide(s: Sighting): LedgerAction {
    const day = this.dayOf(s.atMs);
    const key = dayKey(s.personId, day);
    const state = this.days.get(key);
    if (state?.kind === 'checked_in') {
      if (s.atMs <= state.checkOutMs) return { kind: 'none', day, reason: 'not_later' };
      state.checkOutMs = s.atMs;
      return { kind: 'check_out', day, atMs: s.atMs };
    }
    if (state?.kind === 'writing') {
      state.pendingCheckOutMs = Math.max(state.pendingCheckOutMs, s.atMs);
      return { kind: 'none', day, reason: 'writing' };
    }
    if (this.revokedTracks.has(trackRevocationKey(s.cameraId, s.trackId, s.personId))) return { kind: 'none', day, reason: 'revoked_track' };
    const eligibility = checkInEligibility(s, this.rules);
    if (!eligibility.eligible) return { kind: 'none', day, reason: eligibility.reason };
    this.days.set(key, { kind: 'writing', pendingCheckOutMs: s.atMs });
    return { kind: 'check_in', day, minutesLate: minutesLate(s.atMs, this.rules) };
  }

  /**
   * The check-in of (person, day) is in the store (written now, or found there: another camera or
   * server won the race). Returns the check-out to write when sightings came meanwhile, else null.
   */
  checkedIn(personId: string, day: AttendanceDay, storedCheckOutMs: number): number | null {
    const key = dayKey(personId, day);
    const state = this.days.get(key);
    const pending = state?.kind === 'writing' ? state.pendingCheckOutMs : state?.kind === 'checked_in' ? state.checkOutMs : storedCheckOutMs;
    const checkOutMs = Math.max(pending, storedCheckOutMs);
    this.days.set(key, { kind: 'checked_in', checkOutMs });
    return checkOutMs > storedCheckOutMs ? checkOutMs : null;
  }

  /** Writing the check-in failed: the next eligible sighting tries again. */
  checkInFailed(personId: string, day: AttendanceDay): void {
    const key = dayKey(personId, day);
    if (this.days.get(key)?.kind === 'writing') this.days.delete(key);
  }

  /**
   * A check-in was revoked: the person is no longer checked in that day (a later, genuine sighting
   * may check them in), but the track that produced the wrong check-in never will.
   */
  revoked(personId: string, day: AttendanceDay, source: { cameraId: string; trackId: string } | null): void {
    this.days.delete(dayKey(personId, day));
    if (source) this.revokedTracks.add(trackRevocationKey(source.cameraId, source.trackId, personId));
  }

  /** A manual check-in was written: sightings from now on only move the check-out. */
  marked(personId: string, day: AttendanceDay, atMs: number): void {
    this.days.set(dayKey(personId, day), { kind: 'checked_in', checkOutMs: atMs });
  }

  /** Forgets days before `keepFromDay` and tracks not seen for `trackIdleMs` (bounds memory). */
  prune(keepFromDay: AttendanceDay, nowMs: number, trackIdleMs: number): void {
    for (const key of this.days.keys()) {
      if (key.slice(key.lastIndexOf('\u0000') + 1) < keepFromDay) this.days.delete(key);
    }
    for (const [key, t] of this.trackFrames) if (nowMs - t.lastMs > trackIdleMs) this.trackFrames.delete(key);
    // Track ids carry a random per-run prefix and are never reused; the set only needs to outlive the day.
    if (this.revokedTracks.size > 10_000) this.revokedTracks.clear();
  }

  get size(): { days: number; tracks: number } {
    return { days: this.days.size, tracks: this.trackFrames.size };
  }
}

function dayKey(personId: string, day: AttendanceDay): string {
  return `${personId}\u0000${day}`;
}

function trackRevocationKey(cameraId: string, trackId: string, personId: string): string {
  return `${cameraId}\u0000${trackId}\u0000${personId}`;
}

/** One day's counts for reports. */
export interface DayCounts {
  day: AttendanceDay;
  workDay: boolean;
  present: number;
  late: number;
  /** Active people not present; null on a day that is not a work day. */
  absent: number | null;
}

/** Present/late/absent of one day from the present and late counts and how many people were expected. */
export function dayCounts(day: AttendanceDay, present: number, late: number, expected: number, rules: Pick<AttendanceRules, 'workDays'>): DayCounts {
  const workDay = isWorkDay(day, rules);
  return { day, workDay, present, late, absent: workDay ? Math.max(0, expected - present) : null };
}

/**
 * A CSV cell safe to open in a spreadsheet: quoted when needed, and a leading = + - @ (or tab/CR)
 * — which Excel and LibreOffice would run as a formula — is neutralised with a leading apostrophe
 * (OWASP's CSV injection advice).
 */
export function csvCell(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  let text = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvLine(values: readonly (string | number | boolean | null | undefined)[]): string {
  return `${values.map(csvCell).join(',')}\r\n`;
}
