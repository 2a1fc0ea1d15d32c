/*
 * What attendance adds to the frame path: AttendanceLedger.observe for a known face that is
 * already checked in (every later frame of the day moves the check-out), with the attendance day
 * cached per minute, against attendanceDay computed for every sighting (no cache).
 *
 *   npm run bench:attendance -- [--calls 200000]
 */
import { AttendanceLedger, attendanceDay, parseTimeOfDay, type AttendanceRules } from '../src/domain/attendance.ts';
import { option, printTable, writeResults } from './report.ts';

const CALLS = option('calls', 200_000);
const FRAME_MS = 33;

const rules: AttendanceRules = {
  timeZone: 'Europe/Berlin',
  dayBoundaryMin: parseTimeOfDay('04:00'),
  startMin: parseTimeOfDay('09:00'),
  lateAfterMin: 0,
  workDays: [1, 2, 3, 4, 5],
  minSimilarity: 0.5,
  minAgreeingFrames: 3,
};
const start = Date.UTC(2026, 10, 23, 7, 0);

function microsPerCall(run: () => void): number {
  run(); // warm-up
  const t0 = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - t0) / 1000 / CALLS;
}

const observe = microsPerCall(() => {
  const ledger = new AttendanceLedger(rules);
  const first = ledger.observe({ personId: 'p', cameraId: 'door', trackId: 't', atMs: start, similarity: 0.8, liveness: null });
  ledger.checkedIn('p', first.day, start);
  for (let i = 1; i <= CALLS; i++) ledger.observe({ personId: 'p', cameraId: 'door', trackId: 't', atMs: start + i * FRAME_MS, similarity: 0.8, liveness: null });
});
let sink = '';
const uncached = microsPerCall(() => {
  for (let i = 1; i <= CALLS; i++) sink = attendanceDay(start + i * FRAME_MS, rules);
});

printTable(`${CALLS.toLocaleString('en')} calls, one frame every ${FRAME_MS} ms (${sink})`, ['call', 'µs per call'], [
  ['AttendanceLedger.observe (day cached per minute)', observe],
  ['attendanceDay (no cache)', uncached],
]);
console.log(`\nresults: ${writeResults('attendance-ledger', { calls: CALLS, frameMs: FRAME_MS, observeMicros: observe, uncachedDayMicros: uncached })}`);
