import { describe, expect, it } from 'vitest';
import {
  addDays,
  attendanceDay,
  AttendanceLedger,
  checkInEligibility,
  csvCell,
  csvLine,
  dayCount,
  dayCounts,
  daysBetween,
  isAttendanceDay,
  isLate,
  isoWeekday,
  isValidTimeZone,
  localIso,
  minutesIntoDay,
  minutesLate,
  parseTimeOfDay,
  utcOffsetMin,
  type AttendanceRules,
} from './attendance.ts';

const at = (iso: string): number => Date.parse(iso);

const berlin: AttendanceRules = {
  timeZone: 'Europe/Berlin',
  dayBoundaryMin: 4 * 60,
  startMin: 9 * 60,
  lateAfterMin: 0,
  workDays: [1, 2, 3, 4, 5],
  minSimilarity: 0.5,
  minAgreeingFrames: 3,
  minLiveness: 0.2,
};

describe('attendance day', () => {
  it('follows the local date after the boundary and the day before it', () => {
    expect(attendanceDay(at('2026-06-10T10:00:00Z'), berlin)).toBe('2026-06-10');
    // 01:30 local on the 11th is still the 10th's night shift.
    expect(attendanceDay(at('2026-06-10T23:30:00Z'), berlin)).toBe('2026-06-10');
    // 03:59 vs 04:00 local (UTC+2 in summer).
    expect(attendanceDay(at('2026-06-11T01:59:59Z'), berlin)).toBe('2026-06-10');
    expect(attendanceDay(at('2026-06-11T02:00:00Z'), berlin)).toBe('2026-06-11');
    // Midnight boundary: the plain local date; UTC midnight is not local midnight.
    expect(attendanceDay(at('2026-06-10T22:30:00Z'), { timeZone: 'Europe/Berlin', dayBoundaryMin: 0 })).toBe('2026-06-11');
    expect(attendanceDay(at('2026-06-10T22:30:00Z'), { timeZone: 'UTC', dayBoundaryMin: 0 })).toBe('2026-06-10');
    // West of UTC.
    expect(attendanceDay(at('2026-06-11T03:00:00Z'), { timeZone: 'America/New_York', dayBoundaryMin: 0 })).toBe('2026-06-10');
  });

  it('is right across the spring-forward change (Europe/Berlin, 29 March 2026, 02:00 → 03:00)', () => {
    // 03:59 CEST (01:59Z) is before the 04:00 boundary: the 28th.
    expect(attendanceDay(at('2026-03-29T01:59:00Z'), berlin)).toBe('2026-03-28');
    // 04:00 CEST is 02:00Z: the day starts one UTC hour earlier than the day before.
    expect(attendanceDay(at('2026-03-29T02:00:00Z'), berlin)).toBe('2026-03-29');
    // 04:30 CEST: an "instant minus 4 h" rule would say 23:30 CET on the 28th — wrong.
    expect(attendanceDay(at('2026-03-29T02:30:00Z'), berlin)).toBe('2026-03-29');
    // The day before still started at 03:00Z (04:00 CET).
    expect(attendanceDay(at('2026-03-28T02:59:00Z'), berlin)).toBe('2026-03-27');
    expect(attendanceDay(at('2026-03-28T03:00:00Z'), berlin)).toBe('2026-03-28');
    expect(utcOffsetMin(at('2026-03-29T00:59:00Z'), 'Europe/Berlin')).toBe(60);
    expect(utcOffsetMin(at('2026-03-29T01:00:00Z'), 'Europe/Berlin')).toBe(120);
  });

  it('is right across the fall-back change (Europe/Berlin, 25 October 2026, 03:00 → 02:00)', () => {
    // 03:30 CET (02:30Z), after the clocks went back: still before 04:00, so the 24th.
    expect(attendanceDay(at('2026-10-25T02:30:00Z'), berlin)).toBe('2026-10-24');
    expect(attendanceDay(at('2026-10-25T02:59:59Z'), berlin)).toBe('2026-10-24');
    expect(attendanceDay(at('2026-10-25T03:00:00Z'), berlin)).toBe('2026-10-25');
    // The repeated hour 02:00–03:00 local happens twice; both belong to the 24th.
    expect(attendanceDay(at('2026-10-25T00:30:00Z'), berlin)).toBe('2026-10-24');
    expect(attendanceDay(at('2026-10-25T01:30:00Z'), berlin)).toBe('2026-10-24');
    expect(localIso(at('2026-10-25T00:30:00Z'), 'Europe/Berlin')).toBe('2026-10-25T02:30:00+02:00');
    expect(localIso(at('2026-10-25T01:30:00Z'), 'Europe/Berlin')).toBe('2026-10-25T02:30:00+01:00');
  });

  it('does calendar arithmetic without time zones', () => {
    expect(addDays('2026-03-28', 1)).toBe('2026-03-29');
    expect(addDays('2026-03-01', -1)).toBe('2026-02-28');
    expect(addDays('2024-03-01', -1)).toBe('2024-02-29');
    expect(addDays('2026-12-31', 1)).toBe('2027-01-01');
    expect(daysBetween('2026-03-28', '2026-03-30')).toEqual(['2026-03-28', '2026-03-29', '2026-03-30']);
    expect(daysBetween('2026-03-30', '2026-03-28')).toEqual([]);
    // The last day there is: no day after it is ever computed.
    expect(daysBetween('9999-12-30', '9999-12-31')).toEqual(['9999-12-30', '9999-12-31']);
    expect(dayCount('0100-01-01', '9999-12-31')).toBe(3_615_900);
    expect(dayCount('2026-03-30', '2026-03-28')).toBe(-1);
    // Years below 100 are not 1900–1999.
    expect(addDays('0100-01-01', -1)).toBe('0099-12-31');
    expect(isoWeekday('2026-03-29')).toBe(7);
    expect(isoWeekday('2026-03-30')).toBe(1);
    expect(isAttendanceDay('2026-02-29')).toBe(false);
    expect(isAttendanceDay('2024-02-29')).toBe(true);
    expect(isAttendanceDay('2026-1-01')).toBe(false);
    expect(parseTimeOfDay('04:00')).toBe(240);
    expect(parseTimeOfDay('23:59')).toBe(1439);
    expect(() => parseTimeOfDay('24:00')).toThrow(RangeError);
    expect(() => parseTimeOfDay('9:00')).toThrow(RangeError);
    expect(isValidTimeZone('Europe/Berlin')).toBe(true);
    expect(isValidTimeZone('Mars/Olympus')).toBe(false);
    expect(() => addDays('yesterday', 1)).toThrow(RangeError);
  });
});

describe('lateness', () => {
  it('compares local time with the start time plus grace, in summer and winter time alike', () => {
    // 09:05 CEST on the DST day and 09:05 CET the day before: both 5 minutes late.
    expect(minutesLate(at('2026-03-29T07:05:00Z'), berlin)).toBe(5);
    expect(minutesLate(at('2026-03-28T08:05:00Z'), berlin)).toBe(5);
    expect(isLate(at('2026-03-28T08:00:00Z'), berlin)).toBe(false);
    expect(isLate(at('2026-03-28T08:00:01Z'), berlin)).toBe(true);
    expect(isLate(at('2026-03-28T07:59:00Z'), berlin)).toBe(false);
    const grace = { ...berlin, lateAfterMin: 10 };
    expect(isLate(at('2026-03-28T08:09:00Z'), grace)).toBe(false);
    expect(minutesLate(at('2026-03-28T08:15:00Z'), grace)).toBe(5);
  });

  it('counts a check-in after midnight (before the boundary) as very late for the day before', () => {
    // 01:00 local on the 29th belongs to the 28th, 25 h after its midnight.
    expect(minutesIntoDay(at('2026-06-29T23:00:00Z'), berlin)).toBe(25 * 60);
    expect(minutesLate(at('2026-06-29T23:00:00Z'), berlin)).toBe(16 * 60);
    // A night shift starting at 22:00 is on time at 21:55, late at 00:10 the next calendar day.
    const night = { ...berlin, startMin: 22 * 60 };
    expect(isLate(at('2026-06-10T19:55:00Z'), night)).toBe(false);
    expect(minutesLate(at('2026-06-10T22:10:00Z'), night)).toBe(130);
  });
});

describe('check-in eligibility', () => {
  it('needs the threshold, enough agreeing frames and, when required, liveness', () => {
    const ok = { similarity: 0.6, agreeingFrames: 3, liveness: 0.9 };
    expect(checkInEligibility(ok, berlin)).toEqual({ eligible: true });
    expect(checkInEligibility({ ...ok, similarity: 0.49 }, berlin)).toEqual({ eligible: false, reason: 'below_threshold' });
    expect(checkInEligibility({ ...ok, similarity: Number.NaN }, berlin)).toEqual({ eligible: false, reason: 'below_threshold' });
    expect(checkInEligibility({ ...ok, agreeingFrames: 2 }, berlin)).toEqual({ eligible: false, reason: 'too_few_frames' });
    expect(checkInEligibility({ ...ok, liveness: null }, berlin)).toEqual({ eligible: false, reason: 'liveness_unmeasured' });
    expect(checkInEligibility({ ...ok, liveness: 0.1 }, berlin)).toEqual({ eligible: false, reason: 'spoof_suspected' });
    const { minLiveness: _ignored, ...noLiveness } = berlin;
    expect(checkInEligibility({ ...ok, liveness: null }, noLiveness)).toEqual({ eligible: true });
    expect(checkInEligibility({ ...ok, liveness: 0.01 }, noLiveness)).toEqual({ eligible: true });
  });
});

describe('attendance ledger', () => {
  const base = { personId: 'anna', cameraId: 'door', trackId: 't1', similarity: 0.7, liveness: 0.9 };
  const t0 = at('2026-06-10T06:00:00Z'); // 08:00 local

  it('checks in once per day after enough agreeing frames; later sightings move the check-out', () => {
    const ledger = new AttendanceLedger(berlin);
    expect(ledger.observe({ ...base, atMs: t0 })).toMatchObject({ kind: 'none', reason: 'too_few_frames', agreeingFrames: 1 });
    expect(ledger.observe({ ...base, atMs: t0 + 100 })).toMatchObject({ kind: 'none', agreeingFrames: 2 });
    expect(ledger.observe({ ...base, atMs: t0 + 200 })).toEqual({ kind: 'check_in', day: '2026-06-10', minutesLate: 0, agreeingFrames: 3 });
    // While the check-in is being written, sightings only raise the pending check-out.
    expect(ledger.observe({ ...base, atMs: t0 + 300 })).toMatchObject({ kind: 'none', reason: 'writing' });
    expect(ledger.checkedIn('anna', '2026-06-10', t0 + 200)).toBe(t0 + 300);
    expect(ledger.observe({ ...base, atMs: t0 + 400 })).toMatchObject({ kind: 'check_out', atMs: t0 + 400 });
    // Another camera, same moment or older: nothing new.
    expect(ledger.observe({ ...base, cameraId: 'hall', trackId: 'x', atMs: t0 + 400 })).toMatchObject({ kind: 'none', reason: 'not_later' });
    // Evening sighting on another camera: a check-out, never a second check-in.
    expect(ledger.observe({ ...base, cameraId: 'hall', trackId: 'x', atMs: t0 + 9 * 3600_000 })).toMatchObject({ kind: 'check_out' });
    // The next day starts over.
    const nextDay = t0 + 24 * 3600_000;
    for (let i = 0; i < 2; i++) expect(ledger.observe({ ...base, trackId: 't2', atMs: nextDay + i })).toMatchObject({ kind: 'none' });
    expect(ledger.observe({ ...base, trackId: 't2', atMs: nextDay + 2 })).toMatchObject({ kind: 'check_in', day: '2026-06-11' });
  });

  it('counts agreeing frames per track and person; a change of person starts the count over', () => {
    const ledger = new AttendanceLedger(berlin);
    ledger.observe({ ...base, atMs: t0 });
    ledger.observe({ ...base, atMs: t0 + 1 });
    expect(ledger.observe({ ...base, personId: 'ben', atMs: t0 + 2 })).toMatchObject({ agreeingFrames: 1 });
    expect(ledger.observe({ ...base, atMs: t0 + 3 })).toMatchObject({ kind: 'none', agreeingFrames: 1 });
    // Frames of two tracks do not add up.
    expect(ledger.observe({ ...base, trackId: 't9', atMs: t0 + 4 })).toMatchObject({ agreeingFrames: 1 });
  });

  it('suppresses duplicates when a store write found the check-in already there (another camera won)', () => {
    const ledger = new AttendanceLedger({ ...berlin, minAgreeingFrames: 1 });
    expect(ledger.observe({ ...base, atMs: t0 })).toMatchObject({ kind: 'check_in' });
    // The store says a row exists with check-out t0 + 50 (written by the other camera).
    expect(ledger.checkedIn('anna', '2026-06-10', t0 + 50)).toBeNull();
    expect(ledger.observe({ ...base, atMs: t0 + 10 })).toMatchObject({ kind: 'none', reason: 'not_later' });
    expect(ledger.observe({ ...base, atMs: t0 + 60 })).toMatchObject({ kind: 'check_out' });
  });

  it('retries after a failed write', () => {
    const ledger = new AttendanceLedger({ ...berlin, minAgreeingFrames: 1 });
    expect(ledger.observe({ ...base, atMs: t0 })).toMatchObject({ kind: 'check_in' });
    ledger.checkInFailed('anna', '2026-06-10');
    expect(ledger.observe({ ...base, atMs: t0 + 1 })).toMatchObject({ kind: 'check_in' });
  });

  it('flags a late check-in', () => {
    const ledger = new AttendanceLedger({ ...berlin, minAgreeingFrames: 1 });
    expect(ledger.observe({ ...base, atMs: at('2026-06-10T07:20:00Z') })).toMatchObject({ kind: 'check_in', minutesLate: 20 });
  });

  it('after a revocation the wrong track never checks the person in again, a new track may', () => {
    const ledger = new AttendanceLedger({ ...berlin, minAgreeingFrames: 1 });
    expect(ledger.observe({ ...base, atMs: t0 })).toMatchObject({ kind: 'check_in' });
    ledger.checkedIn('anna', '2026-06-10', t0);
    ledger.revoked('anna', '2026-06-10', { cameraId: 'door', trackId: 't1' });
    expect(ledger.observe({ ...base, atMs: t0 + 10 })).toMatchObject({ kind: 'none', reason: 'revoked_track' });
    expect(ledger.observe({ ...base, trackId: 't7', atMs: t0 + 20 })).toMatchObject({ kind: 'check_in' });
  });

  it('a manual mark turns later sightings into check-outs; pruning forgets old days and idle tracks', () => {
    const ledger = new AttendanceLedger({ ...berlin, minAgreeingFrames: 1 });
    ledger.marked('anna', '2026-06-10', t0);
    expect(ledger.observe({ ...base, atMs: t0 + 5 })).toMatchObject({ kind: 'check_out' });
    expect(ledger.size).toEqual({ days: 1, tracks: 1 });
    ledger.prune('2026-06-11', t0 + 120_000, 60_000);
    expect(ledger.size).toEqual({ days: 0, tracks: 0 });
  });
});

describe('ledger day cache', () => {
  it('agrees with attendanceDay minute by minute across both DST changes and the boundary', () => {
    const ledger = new AttendanceLedger(berlin);
    for (const start of ['2026-03-28T23:00:00Z', '2026-10-24T23:00:00Z']) {
      for (let ms = Date.parse(start); ms < Date.parse(start) + 5 * 3600_000; ms += 29_000) {
        expect(ledger.dayOf(ms)).toBe(attendanceDay(ms, berlin));
      }
    }
  });
});

describe('reports', () => {
  it('counts present, late and absent; absence counts on work days only', () => {
    expect(dayCounts('2026-06-10', 3, 1, 5, berlin)).toEqual({ day: '2026-06-10', workDay: true, present: 3, late: 1, absent: 2 });
    expect(dayCounts('2026-06-13', 1, 0, 5, berlin)).toEqual({ day: '2026-06-13', workDay: false, present: 1, late: 0, absent: null });
  });

  it('writes CSV cells a spreadsheet will not run as formulas', () => {
    expect(csvCell('=HYPERLINK("http://x")')).toBe(`"'=HYPERLINK(""http://x"")"`);
    expect(csvCell('+1')).toBe("'+1");
    expect(csvCell('-2')).toBe("'-2");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell('\tx')).toBe("'\tx");
    expect(csvCell(-0.5)).toBe('-0.5');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('line\nbreak')).toBe('"line\nbreak"');
    expect(csvCell(null)).toBe('');
    expect(csvCell(true)).toBe('true');
    expect(csvLine(['Anna', 1, null])).toBe('Anna,1,\r\n');
  });
});
