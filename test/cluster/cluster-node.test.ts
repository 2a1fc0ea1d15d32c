import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterNode } from '../../src/cluster/cluster-node.ts';
import { parseConfig } from '../../src/config/config.ts';
import type { RegistrationDecision } from '../../src/events/decisions.ts';
import type { AnyFacegateEvent } from '../../src/events/event-map.ts';
import { startEventsRuntime, type EventsRuntime } from '../../src/events/events-runtime.ts';
import { GalleryService } from '../../src/services/gallery.service.ts';
import { migrateToLatest, openDatabase, type Store } from '../../src/store/index.ts';
import { createClusterDatabase, postgresProblem, waitUntil, type ClusterDatabase } from './cluster-fixtures.ts';

/*
 * The cluster machinery without the vision stack: two nodes in this process, each with its own
 * pool, LISTEN connection, event runtime and gallery, on one PostgreSQL database of its own.
 */
const pgProblem = await postgresProblem();
if (pgProblem) {
  if (process.env.CI) throw new Error(`${pgProblem}; CI requires it (scripts/ci/postgres.sh starts it)`);
  console.warn(`\n!!! ${pgProblem}: skipping the cluster node tests.\n`);
}

interface TestNode {
  store: Store;
  cluster: ClusterNode;
  events: EventsRuntime;
  gallery: GalleryService;
  relayed: AnyFacegateEvent[];
  decided: RegistrationDecision[];
  close(): Promise<void>;
}

const MODEL = 'test-model';

function vector(seed: number): Float32Array {
  const v = new Float32Array(8).map((_, i) => Math.sin(seed * 7.1 + i));
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

describe.skipIf(pgProblem !== null)('cluster nodes in one process', () => {
  let db: ClusterDatabase;
  let dir: string;
  let a: TestNode;
  let b: TestNode;

  async function node(nodeId: string): Promise<TestNode> {
    const config = parseConfig({ database: { url: db.url, poolSize: 4 }, cluster: { nodeId, leaseMs: 2000, renewEveryMs: 400, reconnectMs: 100 } });
    const store = await openDatabase(config);
    await migrateToLatest(store);
    const cluster = new ClusterNode({ nodeId, url: db.url, config: config.cluster, store });
    await cluster.prepare();
    const events = await startEventsRuntime(config.events, cluster.ringStore(), { allocateId: () => cluster.ids.next(), log: () => undefined });
    const gallery = new GalleryService(store, { modelId: MODEL, dir: join(dir, nodeId), saveEveryMs: 0, hnswAboveTemplates: 50_000 });
    await gallery.start();
    const relayed: AnyFacegateEvent[] = [];
    events.bus.subscribe((e) => relayed.push(e), undefined, { withRelayed: true });
    const decided: RegistrationDecision[] = [];
    events.decisions.register({ onDecision: (d) => void decided.push(d) });
    await cluster.start({ bus: events.bus, decisions: events.decisions, gallery, cameras: { reconcile: async () => undefined } });
    return {
      store,
      cluster,
      events,
      gallery,
      relayed,
      decided,
      async close() {
        await cluster.close();
        await events.close();
        await gallery.close();
        await store.close();
      },
    };
  }

  beforeAll(async () => {
    db = await createClusterDatabase('facegate_cluster_node');
    dir = await mkdtemp(join(tmpdir(), 'facegate-cluster-node-'));
    a = await node('a');
    b = await node('b');
  }, 60_000);

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('gives out unique event ids on both nodes, and polling either node returns every event once, in commit order', async () => {
    const emitted: number[] = [];
    for (let i = 0; i < 300; i++) {
      const from = i % 3 === 0 ? b : a;
      emitted.push(from.events.bus.emit('system_ready', { camera_id: `cam-${i}` }).id);
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(new Set(emitted).size).toBe(300);
    await Promise.all([a.events.ring.flush(), b.events.ring.flush()]);
    for (const reader of [a, b]) {
      const seen: string[] = [];
      let cursor = 0;
      for (;;) {
        const page = await reader.events.ring.since(cursor, { limit: 70, types: ['system_ready'] });
        seen.push(...page.events.map((e) => e.camera_id));
        cursor = page.cursor;
        if (!page.hasMore) break;
      }
      expect(seen.filter((c) => c.startsWith('cam-'))).toHaveLength(300);
      expect(new Set(seen).size).toBe(seen.length);
    }
    // Each node relayed the other's events to its clients, and only those.
    await waitUntil(async () => (a.relayed.filter((e) => e.camera_id.startsWith('cam-')).length === 300 ? true : undefined), 3000, 20, 'a to see all');
    await waitUntil(async () => (b.relayed.filter((e) => e.camera_id.startsWith('cam-')).length === 300 ? true : undefined), 3000, 20, 'b to see all');
    const idsOnA = a.relayed.filter((e) => e.camera_id.startsWith('cam-')).map((e) => e.id);
    expect(new Set(idsOnA).size).toBe(300);

    // The nodes' id blocks interleave: an event written later with a lower id than the cursor
    // (the other node's block) is still after it in the ring.
    const probeA = a.events.bus.emit('system_ready', { camera_id: 'probe-a' }).id;
    const probeB = b.events.bus.emit('system_ready', { camera_id: 'probe-b' }).id;
    const [highNode, lowNode] = probeA > probeB ? [a, b] : [b, a];
    await Promise.all([a.events.ring.flush(), b.events.ring.flush()]);
    const high = highNode.events.bus.emit('system_ready', { camera_id: 'late-1' });
    await Promise.all([a.events.ring.flush(), b.events.ring.flush()]);
    const low = lowNode.events.bus.emit('system_ready', { camera_id: 'late-2' });
    expect(low.id).toBeLessThan(high.id);
    await lowNode.events.ring.flush();
    const after = await a.events.ring.since(high.id, { types: ['system_ready'] });
    expect(after.events.map((e) => e.camera_id)).toEqual(['late-2']);
  });

  it('routes a registration decision made on node a to node b, where the camera waits, and only there', async () => {
    b.events.bus.emit('unknown_person_detected', {
      camera_id: 'door',
      track_id: 't-1',
      confidence: 0.3,
      reason: 'below_threshold',
      show_registration_dialog: true,
      action_required: true,
    });
    await waitUntil(async () => (a.events.state.get('door').waiting_for_user_response ? true : undefined), 2000, 10, "a's state to mirror b's wait");
    const decision = a.events.decisions.decide({ register: true });
    expect(decision).toEqual({ cameraId: 'door', trackId: 't-1', register: true });
    await waitUntil(async () => (b.decided.length > 0 ? true : undefined), 2000, 10, 'b to act on the decision');
    expect(b.decided).toEqual([{ cameraId: 'door', trackId: 't-1', register: true }]);
    expect(a.decided).toEqual([]);
    // b emitted the outcome; a's clients see it relayed, and the wait is over on both.
    await waitUntil(async () => (a.relayed.some((e) => e.type === 'registration_approved' && e.camera_id === 'door') ? true : undefined), 2000, 10, 'the outcome on a');
    expect(a.events.state.get('door').waiting_for_user_response).toBe(false);
    expect(b.events.state.get('door').waiting_for_user_response).toBe(false);
    expect(() => a.events.decisions.decide({ cameraId: 'door', register: true })).toThrow(/not waiting/);
  });

  it('catches up from the change log after its LISTEN connection was cut, and repairs drift by checksum', async () => {
    const person = await a.store.people.create({ name: 'Ada' });
    await a.gallery.commit((tx) => tx.templates.add({ personId: person.id, modelId: MODEL, embedding: vector(1), source: 'upload' }));
    await waitUntil(async () => (b.gallery.size === 1 ? true : undefined), 1000, 5, "b's index");

    // Cut b's LISTEN connection: what is committed meanwhile arrives by the catch-up read after reconnecting.
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      const before = (await b.cluster.status()).reconnects;
      await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'facegate-listen' and datname = current_database()`);
      await a.gallery.commit((tx) => tx.templates.add({ personId: person.id, modelId: MODEL, embedding: vector(2), source: 'upload' }));
      await waitUntil(async () => ((await b.cluster.status()).reconnects > before ? true : undefined), 5000, 20, 'b to reconnect');
      await waitUntil(async () => (b.gallery.size === 2 ? true : undefined), 2000, 10, "b's index after reconnecting");
    } finally {
      await admin.end();
    }

    // A template written behind the change log's back (a restore, a manual fix) is found by the checksum check.
    await a.store.db
      .insertInto('face_templates')
      .values({ id: 'manual-1', person_id: person.id, model_id: MODEL, embedding: Buffer.from(vector(3).buffer), source: 'import', created_at: Date.now() })
      .execute();
    const check = await b.gallery.verify();
    expect(check.inStep).toBe(false);
    expect(b.gallery.size).toBe(3);
  });

  it('stops trusting its leases (and has its cameras stopped) when it cannot renew them, before they can run out', async () => {
    // A third node whose database calls start failing (a network cut between it and PostgreSQL).
    const config = parseConfig({ database: { url: db.url, poolSize: 2 }, cluster: { nodeId: 'c', leaseMs: 2000, renewEveryMs: 400 } });
    const store = await openDatabase(config);
    let cut = false;
    const failing = new Proxy(store.cluster, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => (cut ? Promise.reject(new Error('connection lost')) : (value as (...a: unknown[]) => unknown).apply(target, args));
      },
    });
    const cutStore = new Proxy(store, { get: (target, prop) => (prop === 'cluster' ? failing : Reflect.get(target, prop, target)) });
    const c = new ClusterNode({ nodeId: 'c', url: db.url, config: config.cluster, store: cutStore });
    await c.prepare();
    const events = await startEventsRuntime(config.events, c.ringStore(), { allocateId: () => c.ids.next(), log: () => undefined });
    const reconciled: boolean[] = [];
    await store.cameras.create({ id: 'porch', name: 'Porch', kind: 'file', url: null, device: null, path: '/p.mp4', maxFps: null, enabled: true, loop: false, origin: 'api', nodeId: 'c' });
    await c.start({ bus: events.bus, decisions: events.decisions, gallery: { syncWithStore: async () => 0, verify: async () => ({ inStep: true }) }, cameras: { reconcile: async () => void reconciled.push(c.owns('porch')) } });
    try {
      await waitUntil(async () => (c.owns('porch') ? true : undefined), 3000, 20, 'c to take its camera');
      cut = true;
      const cutAt = performance.now();
      await waitUntil(async () => (!c.owns('porch') ? true : undefined), 3000, 10, 'c to give up its camera');
      // Given up before the lease (2000 ms from the last renewal) could run out, so no other node can run it at the same time.
      expect(performance.now() - cutAt).toBeLessThan(2000);
      await waitUntil(async () => (reconciled.at(-1) === false ? true : undefined), 2000, 10, 'the cameras to be told');
      // Once the database answers again the lease is renewed and the camera comes back.
      cut = false;
      await waitUntil(async () => (c.owns('porch') ? true : undefined), 3000, 20, 'c to take its camera again');
    } finally {
      await c.close();
      await events.close();
      await store.close();
    }
  });

  it('hands a killed node\'s camera lease to a live node once it runs out', async () => {
    await a.store.cameras.create({ id: 'yard', name: 'Yard', kind: 'file', url: null, device: null, path: '/x.mp4', maxFps: null, enabled: true, loop: false, origin: 'api', nodeId: 'gone' });
    // A node that held the lease and vanished (no heartbeat, lease running).
    await a.store.cluster.acquireLease('yard', 'gone', 1500);
    a.cluster.wake();
    b.cluster.wake();
    await new Promise((r) => setTimeout(r, 500));
    expect(a.cluster.holder('yard')).toBe('gone');
    const owner = await waitUntil(
      async () => (a.cluster.owns('yard') ? 'a' : b.cluster.owns('yard') ? 'b' : undefined),
      5000,
      20,
      'a live node to take the lease',
    );
    const other = owner === 'a' ? b : a;
    await new Promise((r) => setTimeout(r, 900));
    expect(other.cluster.owns('yard')).toBe(false);
    expect((await a.store.cluster.leases()).find((l) => l.cameraId === 'yard')?.nodeId).toBe(owner);
  });
});
