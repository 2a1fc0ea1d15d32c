import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.ts';
import { EventBus } from '../../src/events/event-bus.ts';
import { AttendanceService } from '../../src/services/attendance.service.ts';
import { openDatabase, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { storeBackends, type BackendHandle } from './backends.ts';

/* The attendance repository on both databases: once per day under concurrency, check-out, revocation, reports. */

const backends = await storeBackends();

function unit(seed: number, dims = 8): Float32Array {
  const v = Float32Array.from({ length: dims }, (_, i) => Math.sin(seed + i));
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

for (const backend of backends) {
  describe.skipIf(backend.skipReason !== null)(`attendance on ${backend.name}`, () => {
    let handle: BackendHandle;
    let store: Store;
    let imagesOff: Store;
    let nowMs = 1_700_000_000_000;
    const clock = () => nowMs;

    beforeAll(async () => {
      handle = await backend.create();
      store = await openDatabase(handle.config, { now: clock });
      await migrateToLatest(store);
      imagesOff = await openDatabase({ ...handle.config, privacy: { storeImages: false } }, { now: clock });
    });
    afterAll(async () => {
      await imagesOff?.close();
      await store?.close();
      await handle?.dispose();
    });
    beforeEach(async () => {
      await store.db.deleteFrom('attendance').execute();
      await store.db.deleteFrom('session_sightings').execute();
      await store.db.deleteFrom('sessions').execute();
      await store.db.deleteFrom('people').execute();
    });

    it('writes one check-in per person and day, even for many concurrent writers', async () => {
      const anna = await store.people.create({ name: 'Anna', externalId: 'E-1', department: 'Lab' });
      const writes = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          store.attendance.checkIn({ personId: anna.id, day: '2026-06-10', checkInAt: 1000 + i, minutesLate: 0, method: 'recognition', cameraId: i % 2 ? 'door' : 'hall' }),
        ),
      );
      expect(writes.filter((w) => w.inserted)).toHaveLength(1);
      const winner = writes.find((w) => w.inserted)!;
      for (const w of writes) if (!w.inserted) expect(w.existing.id).toBe(winner.inserted ? winner.record.id : '');
      const page = await store.attendance.list({});
      expect(page.total).toBe(1);
      expect(page.items[0]).toMatchObject({ personId: anna.id, name: 'Anna', externalId: 'E-1', department: 'Lab', day: '2026-06-10', method: 'recognition', revoked: false });
      // Another day is another check-in.
      expect((await store.attendance.checkIn({ personId: anna.id, day: '2026-06-11', checkInAt: 90_000_000, minutesLate: 3, method: 'manual' })).inserted).toBe(true);
    });

    it('keeps the evidence, the embedding and (only when images are allowed) the snapshot', async () => {
      const anna = await store.people.create({ name: 'Anna' });
      const session = await store.sessions.create({ cameraId: 'door' });
      const vector = unit(1);
      const res = await store.attendance.checkIn({
        personId: anna.id,
        day: '2026-06-10',
        checkInAt: 5000,
        minutesLate: 12,
        method: 'recognition',
        cameraId: 'door',
        sessionId: session.id,
        trackId: 'ab-1',
        similarity: 0.71,
        margin: 0.2,
        liveness: 0.93,
        agreeingFrames: 4,
        embedding: { modelId: 'm1', vector },
        snapshot: new Uint8Array([0xff, 0xd8, 0xff]),
      });
      expect(res.inserted).toBe(true);
      const record = res.inserted ? res.record : null;
      expect(record).toMatchObject({
        checkInAt: 5000,
        checkOutAt: 5000,
        minutesLate: 12,
        cameraId: 'door',
        sessionId: session.id,
        trackId: 'ab-1',
        agreeingFrames: 4,
        hasSnapshot: true,
      });
      expect(record!.similarity).toBeCloseTo(0.71, 6);
      expect([...(await store.attendance.snapshot(record!.id))!]).toEqual([0xff, 0xd8, 0xff]);
      expect(await store.attendance.embeddingOf(record!.id)).toEqual({ modelId: 'm1', embedding: vector });

      const ben = await imagesOff.people.create({ name: 'Ben' });
      const noImage = await imagesOff.attendance.checkIn({ personId: ben.id, day: '2026-06-10', checkInAt: 1, minutesLate: 0, method: 'recognition', snapshot: new Uint8Array([1]) });
      expect(noImage.inserted && noImage.record.hasSnapshot).toBe(false);
      // Turning images off later purges the ones kept.
      expect(await store.attendance.purgeSnapshots()).toBe(1);
      expect(await store.attendance.snapshot(record!.id)).toBeNull();
      expect((await store.attendance.get(record!.id))!.hasSnapshot).toBe(false);
      // Deleting the session leaves the check-in, unattached.
      await store.db.deleteFrom('sessions').where('id', '=', session.id).execute();
      expect((await store.attendance.get(record!.id))!.sessionId).toBeNull();
    });

    it('moves the check-out forward only', async () => {
      const anna = await store.people.create({ name: 'Anna' });
      await store.attendance.checkIn({ personId: anna.id, day: '2026-06-10', checkInAt: 1000, minutesLate: 0, method: 'recognition' });
      expect(await store.attendance.extendCheckOut(anna.id, '2026-06-10', 5000)).toBe(true);
      expect(await store.attendance.extendCheckOut(anna.id, '2026-06-10', 3000)).toBe(false);
      expect(await store.attendance.extendCheckOut(anna.id, '2026-06-11', 9000)).toBe(false);
      expect((await store.attendance.current(anna.id, '2026-06-10'))!.checkOutAt).toBe(5000);
    });

    it('revokes once, keeps the row, frees the day, and gives negative examples', async () => {
      const anna = await store.people.create({ name: 'Anna' });
      const first = await store.attendance.checkIn({
        personId: anna.id,
        day: '2026-06-10',
        checkInAt: 1000,
        minutesLate: 0,
        method: 'recognition',
        embedding: { modelId: 'm1', vector: unit(2) },
      });
      const id = first.inserted ? first.record.id : '';
      nowMs = 2_000_000;
      const revoked = await store.attendance.revoke(id, { reason: 'it was Ben', by: 'ops key' });
      expect(revoked).toMatchObject({ revoked: true, revokedReason: 'it was Ben', revokedBy: 'ops key', revokedAt: 2_000_000 });
      expect(await store.attendance.revoke(id, { reason: 'again', by: null })).toBeNull();
      expect(await store.attendance.revoke('nope', { reason: 'x', by: null })).toBeNull();
      expect(await store.attendance.current(anna.id, '2026-06-10')).toBeNull();
      expect((await store.attendance.list({})).total).toBe(0);
      expect((await store.attendance.list({ includeRevoked: true })).total).toBe(1);
      // The real Anna may still check in that day.
      expect((await store.attendance.checkIn({ personId: anna.id, day: '2026-06-10', checkInAt: 3000, minutesLate: 0, method: 'recognition' })).inserted).toBe(true);
      const negatives = await store.attendance.negativeExamples('m1');
      expect(negatives).toEqual([{ recordId: id, personId: anna.id, modelId: 'm1', embedding: unit(2) }]);
      expect(await store.attendance.negativeExamples('other-model')).toEqual([]);
      // Erasing the person erases their attendance.
      await store.people.delete(anna.id);
      expect((await store.attendance.list({ includeRevoked: true })).total).toBe(0);
    });

    it('two servers on one database seeing a person in the same instant write one check-in and emit one event', async () => {
      const anna = await store.people.create({ name: 'Anna' });
      const other = await openDatabase(handle.config, { now: clock });
      try {
        let emitted = 0;
        const server = (db: Store) => {
          const bus = new EventBus();
          bus.subscribe(() => emitted++, { types: ['attendance_checked_in'] });
          return new AttendanceService({
            store: db,
            bus,
            config: parseConfig({ attendance: { minAgreeingFrames: 1 } }).attendance,
            searchThreshold: 0.5,
            livenessThreshold: 0.2,
            storeImages: true,
          });
        };
        const [one, two] = [server(store), server(other)];
        const at = Date.parse('2026-06-10T08:00:00Z');
        const evidence = (trackId: string) => ({ trackId, margin: 0.3, liveness: 0.9, embedding: null, frame: { seq: 1, bytes: new Uint8Array([1]) } });
        one.sighted('door', anna.id, 0.8, at, evidence('a'));
        two.sighted('hall', anna.id, 0.8, at, evidence('b'));
        await Promise.all([one.flush(), two.flush()]);
        expect((await store.attendance.list({})).total).toBe(1);
        expect(emitted).toBe(1);
        // The loser learnt the check-in from the store: its later sighting moves the check-out.
        const loser = (await store.attendance.list({})).items[0]!.cameraId === 'door' ? two : one;
        loser.sighted('x', anna.id, 0.8, at + 60_000, evidence('c'));
        await loser.flush();
        expect((await store.attendance.list({})).items[0]!.checkOutAt).toBe(at + 60_000);
      } finally {
        await other.close();
      }
    });

    it('filters, pages and reports per day and department', async () => {
      const anna = await store.people.create({ name: 'Anna', department: 'Lab' });
      const ben = await store.people.create({ name: 'Ben', department: 'Ops' });
      const cara = await store.people.create({ name: 'Cara', department: 'Lab' });
      await store.people.create({ name: 'Dan', department: 'Ops', active: false });
      const session = await store.sessions.create({ cameraId: 'door' });
      const rows = [
        { personId: anna.id, day: '2026-06-10', checkInAt: 100, minutesLate: 0, cameraId: 'door', sessionId: session.id },
        { personId: ben.id, day: '2026-06-10', checkInAt: 200, minutesLate: 7, cameraId: 'hall' },
        { personId: anna.id, day: '2026-06-11', checkInAt: 300, minutesLate: 1, cameraId: 'door' },
        { personId: cara.id, day: '2026-06-12', checkInAt: 400, minutesLate: 0, cameraId: 'hall' },
      ];
      for (const r of rows) await store.attendance.checkIn({ ...r, method: 'recognition' });
      await store.attendance.checkIn({ personId: cara.id, day: '2026-06-10', checkInAt: 150, minutesLate: 0, method: 'manual', note: 'badge' });

      const ids = async (q: Parameters<Store['attendance']['list']>[0]) => (await store.attendance.list(q)).items.map((r) => `${r.name}@${r.day}`);
      expect(await ids({})).toEqual(['Cara@2026-06-12', 'Anna@2026-06-11', 'Ben@2026-06-10', 'Cara@2026-06-10', 'Anna@2026-06-10']);
      expect(await ids({ order: 'asc', fromDay: '2026-06-11' })).toEqual(['Anna@2026-06-11', 'Cara@2026-06-12']);
      expect(await ids({ toDay: '2026-06-10', department: 'Lab' })).toEqual(['Cara@2026-06-10', 'Anna@2026-06-10']);
      expect(await ids({ cameraId: 'hall' })).toEqual(['Cara@2026-06-12', 'Ben@2026-06-10']);
      expect(await ids({ sessionId: session.id })).toEqual(['Anna@2026-06-10']);
      expect(await ids({ personId: anna.id })).toEqual(['Anna@2026-06-11', 'Anna@2026-06-10']);
      expect(await ids({ method: 'manual' })).toEqual(['Cara@2026-06-10']);
      const page = await store.attendance.list({ limit: 2, offset: 2 });
      expect(page).toMatchObject({ total: 5, limit: 2, offset: 2 });
      expect(page.items.map((r) => r.name)).toEqual(['Ben', 'Cara']);

      expect(await store.attendance.presence('2026-06-10', '2026-06-11')).toEqual(
        expect.arrayContaining([
          { day: '2026-06-10', department: 'Lab', present: 2, late: 0 },
          { day: '2026-06-10', department: 'Ops', present: 1, late: 1 },
          { day: '2026-06-11', department: 'Lab', present: 1, late: 1 },
        ]),
      );
      expect(await store.attendance.presence('2026-06-10', '2026-06-11')).toHaveLength(3);
      expect((await store.attendance.expectedPeople()).map((p) => p.name)).toEqual(['Anna', 'Ben', 'Cara']);
      expect((await store.attendance.expectedPeople('Ops')).map((p) => p.name)).toEqual(['Ben']);
    });
  });
}
