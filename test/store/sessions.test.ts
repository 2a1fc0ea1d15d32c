import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SessionsService } from '../../src/services/sessions.service.ts';
import { openDatabase, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { storeBackends, type BackendHandle } from './backends.ts';

/* Recognition sessions and their sightings on both databases, through the repository and the service. */

const backends = await storeBackends();

for (const backend of backends) {
  describe.skipIf(backend.skipReason !== null)(`sessions on ${backend.name}`, () => {
    let handle: BackendHandle;
    let store: Store;
    let nowMs = 1_700_000_000_000;
    const clock = () => nowMs;

    beforeAll(async () => {
      handle = await backend.create();
      store = await openDatabase(handle.config, { now: clock });
      await migrateToLatest(store);
    });
    afterAll(async () => {
      await store?.close();
      await handle?.dispose();
    });
    beforeEach(async () => {
      await store.db.deleteFrom('session_sightings').execute();
      await store.db.deleteFrom('sessions').execute();
      await store.db.deleteFrom('people').execute();
    });

    it('merges sightings: earliest first, latest last, best confidence; skips people deleted meanwhile', async () => {
      const anna = await store.people.create({ name: 'Anna', externalId: 'R-1' });
      const ben = await store.people.create({ name: 'Ben' });
      const session = await store.sessions.create({ cameraId: 'door', roster: null, startedAt: 1000 });
      expect(session).toMatchObject({ cameraId: 'door', status: 'running', startedAt: 1000, stoppedAt: null, roster: null });

      expect(await store.sessions.upsertSightings([{ sessionId: session.id, personId: anna.id, firstSeen: 2000, lastSeen: 2500, bestConfidence: 0.6 }])).toBe(1);
      await store.sessions.upsertSightings([
        { sessionId: session.id, personId: anna.id, firstSeen: 1500, lastSeen: 2200, bestConfidence: 0.7 },
        { sessionId: session.id, personId: ben.id, firstSeen: 3000, lastSeen: 3000, bestConfidence: 0.55 },
        { sessionId: session.id, personId: 'deleted-person', firstSeen: 3000, lastSeen: 3000, bestConfidence: 0.9 },
      ]);
      await store.sessions.upsertSightings([{ sessionId: session.id, personId: anna.id, firstSeen: 4000, lastSeen: 4000, bestConfidence: 0.5 }]);
      const rows = await store.sessions.sightings(session.id);
      expect(rows).toEqual([
        { sessionId: session.id, personId: anna.id, firstSeen: 1500, lastSeen: 4000, bestConfidence: 0.7, name: 'Anna', externalId: 'R-1' },
        { sessionId: session.id, personId: ben.id, firstSeen: 3000, lastSeen: 3000, bestConfidence: 0.55, name: 'Ben', externalId: null },
      ]);

      const stopped = await store.sessions.stop(session.id, 5000);
      expect(stopped).toMatchObject({ status: 'stopped', stoppedAt: 5000 });
      expect(await store.sessions.stop(session.id, 6000)).toBeNull();
      // Erasing a person erases their sightings.
      await store.people.delete(ben.id);
      expect((await store.sessions.sightings(session.id)).map((r) => r.name)).toEqual(['Anna']);
    });

    it('lists newest first, filtered by camera and status, with a total', async () => {
      for (const [i, camera] of ['a', 'b', 'a'].entries()) await store.sessions.create({ cameraId: camera, startedAt: 1000 + i });
      const all = await store.sessions.list();
      expect(all.total).toBe(3);
      expect(all.items.map((s) => s.startedAt)).toEqual([1002, 1001, 1000]);
      const onA = await store.sessions.list({ cameraId: 'a', limit: 1 });
      expect(onA).toMatchObject({ total: 2, limit: 1, offset: 0 });
      expect(onA.items[0]!.startedAt).toBe(1002);
      await store.sessions.stop(onA.items[0]!.id);
      expect((await store.sessions.list({ status: 'running' })).total).toBe(2);
      expect((await store.sessions.listRunning()).map((s) => s.startedAt)).toEqual([1000, 1001]);
    });

    it('service: one running session per camera; a roster splits recognised, not on roster and absent; survives a restart', async () => {
      const anna = await store.people.create({ name: 'Anna', externalId: '13030824141' });
      const ben = await store.people.create({ name: 'Ben', externalId: 'R-2' });
      const cleo = await store.people.create({ name: 'Cleo' });
      let service = new SessionsService({ store, now: clock, flushEveryMs: 3_600_000 });
      await service.start();
      nowMs = Date.UTC(2025, 8, 6, 13, 30, 10);
      const session = await service.startSession({ cameraId: 'class-1', roster: ['13030824141', ben.id, 'R-404'] });
      expect(session.roster).toEqual([
        { ref: '13030824141', personId: anna.id },
        { ref: ben.id, personId: ben.id },
        { ref: 'R-404', personId: null },
      ]);
      await expect(service.startSession({ cameraId: 'class-1' })).rejects.toMatchObject({ code: 'session_running', status: 409 });

      service.sighted('class-1', anna.id, 0.62, nowMs);
      service.sighted('class-1', anna.id, 0.71, nowMs + 4000);
      service.sighted('class-1', cleo.id, 0.66, nowMs + 1000);
      service.sighted('other-camera', ben.id, 0.9, nowMs);
      // A restart: what was merged in memory is written at close and read back at start.
      await service.close();
      service = new SessionsService({ store, now: clock, flushEveryMs: 3_600_000 });
      await service.start();
      expect(service.runningOn('class-1')).toBe(session.id);
      service.sighted('class-1', anna.id, 0.5, nowMs + 9000);

      nowMs += 60_000;
      const report = await service.stopSession(session.id);
      expect(report.session).toMatchObject({ status: 'stopped', stoppedAt: nowMs });
      expect(report.recognizedStudents).toEqual([
        {
          personId: anna.id,
          externalId: '13030824141',
          name: 'Anna',
          firstSeen: Date.UTC(2025, 8, 6, 13, 30, 10),
          lastSeen: Date.UTC(2025, 8, 6, 13, 30, 19),
          bestConfidence: 0.71,
          rollNo: '13030824141',
          timestamp: '2025-09-06T13:30:10.000Z',
        },
      ]);
      expect(report.notOnRoster.map((s) => [s.name, s.rollNo])).toEqual([['Cleo', cleo.id]]);
      expect(report.absent).toEqual([
        { ref: ben.id, personId: ben.id, externalId: 'R-2', name: 'Ben' },
        { ref: 'R-404', personId: null, externalId: null, name: null },
      ]);
      // Stopped: nothing more is recorded, a second stop is a 409, and the report can be read again.
      service.sighted('class-1', ben.id, 0.9, nowMs);
      await expect(service.stopSession(session.id)).rejects.toMatchObject({ code: 'session_stopped', status: 409 });
      expect((await service.get(session.id)).recognizedStudents.map((s) => s.name)).toEqual(['Anna']);
      await expect(service.get('nope')).rejects.toMatchObject({ code: 'session_not_found', status: 404 });
      // The camera is free again.
      const next = await service.startSession({ cameraId: 'class-1' });
      expect((await service.stopSession(next.id)).absent).toBeNull();
      await service.close();
    });
  });
}
