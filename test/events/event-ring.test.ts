import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/events/event-bus.ts';
import { EventRing } from '../../src/events/event-ring.ts';
import { startEventsRuntime } from '../../src/events/events-runtime.ts';
import { parseConfig } from '../../src/config/config.ts';
import { openDatabase, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { storeBackends, type BackendHandle } from '../store/backends.ts';

const backends = await storeBackends();

for (const backend of backends) {
  describe.skipIf(backend.skipReason !== null)(`event ring on ${backend.name}`, () => {
    let handle: BackendHandle;

    beforeAll(async () => {
      handle = await backend.create();
    });
    afterAll(async () => {
      await handle?.dispose();
    });

    async function open(): Promise<Store> {
      const store = await openDatabase(handle.config);
      await migrateToLatest(store);
      return store;
    }

    it('persists events in emit order, pages them by cursor and filter, and continues ids across a restart', async () => {
      let store = await open();
      let ring = new EventRing(store.events, { ringSize: 1000 });
      let bus = new EventBus({ lastId: await ring.latestId() });
      bus.subscribe((e) => ring.add(e));

      const emitted = [
        bus.emit('person_recognized', { camera_id: 'door', track_id: 't1', person_id: 'p1', name: 'Ada', external_id: null, confidence: 0.75, margin: 0.2 }),
        bus.emit('unknown_person_detected', { camera_id: 'hall', track_id: 't2', confidence: null, reason: 'no_gallery', show_registration_dialog: false, action_required: false }),
        bus.emit('person_left_area', { camera_id: 'door', track_id: 't1' }),
        bus.emit('system_ready', { camera_id: '*' }),
      ];
      // Nothing waited on the disk: the rows are queued until after this tick.
      expect(ring.stats()).toMatchObject({ pending: 4, written: 0 });

      const all = await ring.since(0);
      expect(all.events).toEqual(emitted);
      expect(all).toMatchObject({ cursor: 4, hasMore: false, gap: false });

      const page1 = await ring.since(0, { limit: 2 });
      expect(page1.events.map((e) => e.id)).toEqual([1, 2]);
      expect(page1).toMatchObject({ cursor: 2, hasMore: true });
      const page2 = await ring.since(page1.cursor, { limit: 2 });
      expect(page2.events.map((e) => e.id)).toEqual([3, 4]);
      expect(page2.hasMore).toBe(false);
      expect((await ring.since(4)).events).toEqual([]);
      expect((await ring.since(4)).cursor).toBe(4);

      // Camera filters keep events for every camera; type filters are exact.
      expect((await ring.since(0, { cameras: ['door'] })).events.map((e) => e.id)).toEqual([1, 3, 4]);
      expect((await ring.since(0, { types: ['unknown_person_detected', 'system_ready'] })).events.map((e) => e.id)).toEqual([2, 4]);

      await ring.close();
      await store.close();

      // A restart: the ring is still there and ids go on from the newest.
      store = await open();
      ring = new EventRing(store.events, { ringSize: 1000 });
      bus = new EventBus({ lastId: await ring.latestId() });
      bus.subscribe((e) => ring.add(e));
      expect(bus.lastId).toBe(4);
      const next = bus.emit('registration_failed', { camera_id: 'door', track_id: 't1', reason: 'timeout' });
      expect(next.id).toBe(5);
      const after = await ring.since(2);
      expect(after.events.map((e) => [e.id, e.type])).toEqual([
        [3, 'person_left_area'],
        [4, 'system_ready'],
        [5, 'registration_failed'],
      ]);
      expect(after.events[0]).toEqual(emitted[2]);
      await ring.close();
      await store.close();
    });

    it('keeps the newest ringSize events, pruning every so often rather than per append, and reports gaps', async () => {
      const store = await open();
      try {
        await store.db.deleteFrom('events').execute();
        const ring = new EventRing(store.events, { ringSize: 100, pruneEvery: 50 });
        const bus = new EventBus({ lastId: await ring.latestId() });
        bus.subscribe((e) => ring.add(e));
        const first = bus.lastId + 1;
        for (let i = 0; i < 130; i++) bus.emit('person_left_area', { camera_id: 'c', track_id: String(i) });
        await ring.flush();
        // 130 appended in batches; pruning ran at the 50-append marks, not after every row.
        const count = async () => Number((await store.db.selectFrom('events').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
        expect(await count()).toBeGreaterThanOrEqual(100);
        await ring.prune();
        expect(await count()).toBe(100);
        const oldestKept = first + 30;
        expect(await store.events.oldestId()).toBe(oldestKept);

        const stale = await ring.since(first);
        expect(stale.gap).toBe(true);
        expect(stale.events[0]!.id).toBe(oldestKept);
        expect((await ring.since(oldestKept - 1)).gap).toBe(false);
        expect(ring.stats()).toMatchObject({ written: 130, dropped: 0, writeErrors: 0, pending: 0 });
      } finally {
        await store.close();
      }
    });

    it('a burst is written in a few batches, not one statement per event', async () => {
      const store = await open();
      try {
        let appends = 0;
        const counting = {
          ...store.events,
          append: async (rows: Parameters<Store['events']['append']>[0]) => {
            appends++;
            await store.events.append(rows);
          },
          since: store.events.since.bind(store.events),
          latestId: store.events.latestId.bind(store.events),
          oldestId: store.events.oldestId.bind(store.events),
          prune: store.events.prune.bind(store.events),
        };
        const ring = new EventRing(counting, { ringSize: 10_000, batchSize: 500 });
        const bus = new EventBus({ lastId: await ring.latestId() });
        bus.subscribe((e) => ring.add(e));
        const start = performance.now();
        for (let i = 0; i < 1000; i++) bus.emit('person_left_area', { camera_id: 'burst', track_id: String(i) });
        const emitMs = performance.now() - start;
        await ring.flush();
        expect(appends).toBeLessThanOrEqual(3);
        expect(emitMs).toBeLessThan(500);
        const page = await ring.since(bus.lastId - 1000, { cameras: ['burst'], limit: 500 });
        expect(page.events.map((e) => e.track_id)).toEqual(Array.from({ length: 500 }, (_, i) => String(i)));
      } finally {
        await store.close();
      }
    });

    it('startEventsRuntime wires state, ring and decisions, and resumes ids', async () => {
      const config = parseConfig({ events: { ringSize: 500 } }).events;
      const store = await open();
      try {
        const lastBefore = await store.events.latestId();
        const events = await startEventsRuntime(config, store.events, { log: () => undefined });
        expect(events.bus.lastId).toBe(lastBefore);
        events.bus.emit('unknown_person_detected', { camera_id: 'gate', track_id: 'x', confidence: 0.1, reason: 'below_threshold', show_registration_dialog: true, action_required: true });
        expect(events.state.waitingTrack('gate')).toBe('x');
        events.decisions.decide({ cameraId: 'gate', register: false });
        const page = await events.ring.since(lastBefore);
        expect(page.events.map((e) => e.type)).toEqual(['unknown_person_detected', 'registration_cancelled']);
        expect(events.stats()).toMatchObject({ lastId: lastBefore + 2, mqtt: null, webhooks: [] });
        await events.close();
        // close() pruned to the configured size.
        expect(await store.events.oldestId()).toBeGreaterThanOrEqual((await store.events.latestId()) - 499);
      } finally {
        await store.close();
      }
    });
  });
}
