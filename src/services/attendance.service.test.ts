import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/config.ts';
import { EventBus } from '../events/event-bus.ts';
import type { AnyFacegateEvent } from '../events/event-map.ts';
import { migrateToLatest, openDatabase, type Store } from '../store/index.ts';
import { AttendanceService } from './attendance.service.ts';
import type { SightingEvidence } from './camera-pipeline.service.ts';
import { NegativeExamples } from './negative-examples.ts';

/* The attendance service over a real SQLite store and event bus: sightings in, check-ins, events and reports out. */

const MODEL = 'm1';
const unit = (...values: number[]): Float32Array => {
  const v = new Float32Array(4);
  values.forEach((x, i) => (v[i] = x));
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
};

describe('AttendanceService', () => {
  let dir: string;
  let store: Store;
  let bus: EventBus;
  let events: AnyFacegateEvent[];
  let nowMs: number;
  let negatives: NegativeExamples;

  const make = (over: Record<string, unknown> = {}, storeImages = true) =>
    new AttendanceService({
      store,
      bus,
      config: parseConfig({ attendance: { timeZone: 'Europe/Berlin', startTime: '09:00', minAgreeingFrames: 2, ...over } }).attendance,
      searchThreshold: 0.5,
      livenessThreshold: 0.2,
      storeImages,
      sessionOn: (cameraId) => (cameraId === 'class' ? sessionId : undefined),
      negatives,
      now: () => nowMs,
    });
  let sessionId: string | undefined;

  let seq = 0;
  const evidence = (trackId: string, vector = unit(1, 0, 0, 0)): SightingEvidence => ({
    trackId,
    margin: 0.2,
    liveness: 0.9,
    embedding: { modelId: MODEL, vector },
    frame: { seq: seq++, bytes: new Uint8Array([0xff, 0xd8, seq & 0xff]) },
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'facegate-attendance-'));
    store = await openDatabase({ dataDir: dir, database: { poolSize: 1 } }, { now: () => nowMs });
    await migrateToLatest(store);
    bus = new EventBus({ now: () => nowMs });
    events = [];
    bus.subscribe((e) => events.push(e));
    nowMs = Date.parse('2026-03-30T06:30:00Z'); // Monday 08:30 CEST
    negatives = new NegativeExamples(store.attendance, MODEL);
    sessionId = undefined;
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('checks a person in once across two cameras, keeps the last sighting as check-out, and emits one event', async () => {
    const anna = await store.people.create({ name: 'Anna', externalId: 'E-7', department: 'Lab' });
    await store.people.create({ name: 'Ben', department: 'Ops' });
    const attendance = make();
    const t = nowMs;
    // Frame 1 on each camera: not enough agreeing frames yet.
    attendance.sighted('door', anna.id, 0.7, t, evidence('d1'));
    attendance.sighted('hall', anna.id, 0.7, t, evidence('h1'));
    // The sighting that comes with an identity decision (no frame) does not count.
    attendance.sighted('door', anna.id, 0.7, t + 1, { ...evidence('d1'), frame: null });
    await attendance.flush();
    expect((await attendance.logs()).total).toBe(0);
    // Frame 2 on both cameras at the same moment: both are eligible, one row wins.
    attendance.sighted('door', anna.id, 0.7, t + 100, evidence('d1'));
    attendance.sighted('hall', anna.id, 0.7, t + 100, evidence('h1'));
    await attendance.flush();
    attendance.sighted('hall', anna.id, 0.7, t + 5000, evidence('h1'));
    await attendance.flush();
    const logs = await attendance.logs();
    expect(logs.total).toBe(1);
    expect(logs.items[0]).toMatchObject({
      name: 'Anna',
      day: '2026-03-30',
      checkInAt: t + 100,
      checkOutAt: t + 5000,
      checkInTime: '2026-03-30T08:30:00+02:00',
      late: false,
      method: 'recognition',
      agreeingFrames: 2,
      hasSnapshot: true,
    });
    const checkIns = events.filter((e) => e.type === 'attendance_checked_in');
    expect(checkIns).toHaveLength(1);
    expect(checkIns[0]!.data).toMatchObject({ person_id: anna.id, name: 'Anna', external_id: 'E-7', day: '2026-03-30', late: false, method: 'recognition' });

    const today = await attendance.today();
    expect(today.counts).toEqual({ expected: 2, present: 1, late: 0, absent: 1 });
    expect(today.absent.map((p) => p.name)).toEqual(['Ben']);
    const status = await attendance.checkInStatus(anna.id);
    expect(status).toMatchObject({ checkedIn: true, day: '2026-03-30' });
  });

  it('flags lateness, records the running session, and keeps no snapshot when images are off', async () => {
    const anna = await store.people.create({ name: 'Anna' });
    sessionId = (await store.sessions.create({ cameraId: 'class' })).id;
    const attendance = make({}, false);
    const t = Date.parse('2026-03-30T07:20:00Z'); // 09:20 CEST
    attendance.sighted('class', anna.id, 0.8, t, evidence('c1'));
    attendance.sighted('class', anna.id, 0.8, t + 50, evidence('c1'));
    await attendance.flush();
    const [log] = (await attendance.logs({ sessionId })).items;
    expect(log).toMatchObject({ late: true, minutesLate: 20, sessionId, hasSnapshot: false });
  });

  it('does not check in below the threshold or with a suspected spoof', async () => {
    const anna = await store.people.create({ name: 'Anna' });
    const attendance = make();
    for (let i = 0; i < 5; i++) attendance.sighted('door', anna.id, 0.45, nowMs + i, evidence('low'));
    for (let i = 0; i < 5; i++) attendance.sighted('door', anna.id, 0.9, nowMs + i, { ...evidence('spoof'), liveness: 0.05 });
    await attendance.flush();
    expect((await attendance.logs()).total).toBe(0);
  });

  it('marks by hand, refuses a second check-in, revokes with a reason and learns the face as negative evidence', async () => {
    const anna = await store.people.create({ name: 'Anna' });
    const ben = await store.people.create({ name: 'Ben' });
    const attendance = make();
    const marked = await attendance.mark({ personId: ben.id, note: 'forgot badge', by: 'ops' });
    expect(marked).toMatchObject({ method: 'manual', markedBy: 'ops', note: 'forgot badge', late: false });
    await expect(attendance.mark({ personId: ben.id, by: 'ops' })).rejects.toMatchObject({ code: 'already_checked_in', status: 409 });
    await expect(attendance.mark({ personId: 'nobody', by: 'ops' })).rejects.toMatchObject({ status: 404 });
    await expect(attendance.mark({ personId: ben.id, atMs: nowMs + 3600_000, by: 'ops' })).rejects.toMatchObject({ status: 400 });

    // Ben's face is taken for Anna on track w1.
    const bensFace = unit(0, 1, 0, 0);
    attendance.sighted('door', anna.id, 0.6, nowMs, evidence('w1', bensFace));
    attendance.sighted('door', anna.id, 0.6, nowMs + 10, evidence('w1', bensFace));
    await attendance.flush();
    const wrong = (await attendance.logs({ personId: anna.id })).items[0]!;
    const revoked = await attendance.revoke(wrong.id, 'that was Ben', 'ops');
    expect(revoked).toMatchObject({ revoked: true, revokedReason: 'that was Ben', revokedBy: 'ops' });
    await expect(attendance.revoke(wrong.id, 'again', 'ops')).rejects.toMatchObject({ code: 'already_revoked', status: 409 });
    await expect(attendance.revoke('nope', 'x', 'ops')).rejects.toMatchObject({ code: 'attendance_not_found', status: 404 });
    expect(negatives.similarities({ modelId: MODEL, vector: bensFace })).toEqual([{ personId: anna.id, similarity: 1, templateId: wrong.id }]);
    // A fresh service (a restart) loads it from the store.
    const reloaded = new NegativeExamples(store.attendance, MODEL);
    await reloaded.load();
    expect(reloaded.size).toBe(1);

    // The wrong track does not check Anna in again; the real Anna on a new track does.
    attendance.sighted('door', anna.id, 0.6, nowMs + 20, evidence('w1', bensFace));
    attendance.sighted('door', anna.id, 0.6, nowMs + 30, evidence('w1', bensFace));
    await attendance.flush();
    expect((await attendance.checkInStatus(anna.id)).checkedIn).toBe(false);
    attendance.sighted('door', anna.id, 0.8, nowMs + 40, evidence('a2'));
    attendance.sighted('door', anna.id, 0.8, nowMs + 50, evidence('a2'));
    await attendance.flush();
    expect((await attendance.checkInStatus(anna.id)).checkedIn).toBe(true);
    expect((await attendance.logs({ includeRevoked: true })).total).toBe(3);
  });

  it('reports stats per day and department and exports spreadsheet-safe CSV', async () => {
    const anna = await store.people.create({ name: '=cmd|calc', department: 'Lab' });
    const ben = await store.people.create({ name: 'Ben', department: 'Ops' });
    // People must exist before the days counted: move their creation back.
    await store.db.updateTable('people').set({ created_at: Date.parse('2026-03-01T00:00:00Z') }).execute();
    const attendance = make();
    nowMs = Date.parse('2026-03-30T12:00:00Z');
    await attendance.mark({ personId: anna.id, atMs: Date.parse('2026-03-27T07:00:00Z'), by: 'ops' }); // Fri 08:00 CET
    await attendance.mark({ personId: ben.id, atMs: Date.parse('2026-03-27T09:00:00Z'), by: 'ops' }); // 10:00, late
    await attendance.mark({ personId: anna.id, atMs: Date.parse('2026-03-30T07:30:00Z'), by: 'ops' }); // Mon 09:30 CEST, late
    const stats = await attendance.stats('2026-03-27', '2026-03-30');
    expect(stats.days).toEqual([
      { day: '2026-03-27', workDay: true, present: 2, late: 1, absent: 0 },
      { day: '2026-03-28', workDay: false, present: 0, late: 0, absent: null },
      { day: '2026-03-29', workDay: false, present: 0, late: 0, absent: null },
      { day: '2026-03-30', workDay: true, present: 1, late: 1, absent: 1 },
    ]);
    expect(stats.totals).toEqual({ present: 3, late: 2, absent: 1 });
    expect(stats.departments.map((d) => [d.department, d.totals])).toEqual([
      ['Lab', { present: 2, late: 1, absent: 0 }],
      ['Ops', { present: 1, late: 1, absent: 1 }],
    ]);
    await expect(attendance.stats('2026-03-30', '2026-03-01')).rejects.toMatchObject({ status: 400 });

    let csv = '';
    for await (const chunk of attendance.exportCsv({ from: '2026-03-27', to: '2026-03-27' })) csv += chunk;
    const lines = csv.trimEnd().split('\r\n');
    expect(lines[0]).toMatch(/^id,day,person_id,external_id,name,department,check_in,check_out,late,/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toContain(`,'=cmd|calc,Lab,2026-03-27T08:00:00+01:00,`);
    expect(lines[2]).toContain(',Ben,Ops,2026-03-27T10:00:00+01:00,2026-03-27T10:00:00+01:00,true,60,manual,');
  });
});
