/**
 * `npm run bench:cluster`: two Facegate nodes (`facegate serve` child processes, 1 vision worker
 * each) on one PostgreSQL database made for the run, with a gallery of --templates synthetic
 * templates (default 100k: random unit vectors of the real model's 512 dimensions, seeded, so
 * every node's index is HNSW like a large site's) plus one real person.
 *
 * - Sync latency: a face added on one node (POST /api/v1/people/:id/faces) → the template in the
 *   other node's index (its gallery size, polled every 2 ms through GET /api/v1/system/cluster),
 *   timed from the writer's 201 answer, so it is the store → NOTIFY → catch-up path alone (the
 *   writer's embedding time is not in it); then the same for erasing it (DELETE …/faces/:id).
 *   --samples times, alternating A → B and B → A; p50, p99, max.
 * - Throughput: POST /api/v1/recognize with a real face (one probe photo), --clients requests
 *   in flight for --seconds, first all to node A (one node), then spread over A and B (two
 *   nodes). Baseline in the same run: one node.
 *
 * Index kind: the nodes run with gallery.hnswAboveTemplates = --hnsw-above (default 200000), so
 * 100k templates use the exact index. usearch's HNSW build is single-threaded (usearch #735) and
 * random 512-d vectors are its worst case: on this shared 2-core machine one node had not finished
 * building after 20 minutes. Exact search over 100k costs ≈3 ms (bench:gallery), small next to the
 * ≈100+ ms embedding of a recognition, and the sync path (a change-log read and one add) is the
 * same for both kinds. --hnsw-above 50000 measures with HNSW where there is time for the build.
 *
 * Options: --templates N (100000), --samples N (60), --seconds N (20), --clients N (4), --hnsw-above N (200000).
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { availableParallelism, cpus } from 'node:os';
import { parseConfig } from '../src/config/config.ts';
import { seededRandom } from '../src/domain/random.ts';
import { migrateToLatest, openDatabase } from '../src/store/index.ts';
import { FR_FEATURE_MODEL_ID } from '../src/vision/onnx/embedder.ts';
import { loadFaceFixtures } from '../test/api/face-fixtures.ts';
import { client, createKey, type Json } from '../test/api/test-app.ts';
import { createClusterDatabase, postgresProblem, startNode, type NodeProcess } from '../test/cluster/cluster-fixtures.ts';
import { median, option, printTable, quantile, writeResults } from './report.ts';

const TEMPLATES = option('templates', 100_000);
const SAMPLES = option('samples', 60);
const SECONDS = option('seconds', 20);
const CLIENTS = option('clients', 4);
const DIMS = 512;
const PER_PERSON = 5;
const HNSW_ABOVE = option('hnsw-above', 200_000);
const nodeEnv = { FACEGATE_GALLERY__HNSW_ABOVE_TEMPLATES: String(HNSW_ABOVE) };

const b64 = (bytes: Buffer): string => bytes.toString('base64');

/** Writes the synthetic gallery straight into the store (before the nodes start: they build their indexes from it). */
async function seed(url: string): Promise<number> {
  const started = performance.now();
  const store = await openDatabase(parseConfig({ database: { url, poolSize: 4 } }));
  try {
    await migrateToLatest(store);
    const random = seededRandom(9);
    const now = Date.now();
    const batch = 500;
    for (let start = 0; start < TEMPLATES; start += batch) {
      const count = Math.min(batch, TEMPLATES - start);
      const people: { id: string; name: string; active: number; metadata: string; search_text: string; created_at: number; updated_at: number }[] = [];
      const templates: { id: string; person_id: string; model_id: string; embedding: Buffer; source: string; created_at: number }[] = [];
      for (let i = start; i < start + count; i++) {
        const personId = `synthetic-${Math.floor(i / PER_PERSON)}`;
        if (i % PER_PERSON === 0) people.push({ id: personId, name: personId, active: 1, metadata: '{}', search_text: personId, created_at: now, updated_at: now });
        const v = new Float32Array(DIMS);
        let norm = 0;
        for (let d = 0; d < DIMS; d++) {
          v[d] = random() - 0.5;
          norm += v[d]! * v[d]!;
        }
        for (let d = 0; d < DIMS; d++) v[d]! /= Math.sqrt(norm);
        templates.push({ id: `t-${i}`, person_id: personId, model_id: FR_FEATURE_MODEL_ID, embedding: Buffer.from(v.buffer), source: 'import', created_at: now });
      }
      if (people.length > 0) await store.db.insertInto('people').values(people).execute();
      await store.db.insertInto('face_templates').values(templates).execute();
    }
  } finally {
    await store.close();
  }
  return performance.now() - started;
}

async function throughput(targets: ReturnType<typeof client>[], image: string): Promise<{ requests: number; perSecond: number; p50Ms: number; p99Ms: number; errors: number }> {
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + SECONDS * 1000;
  let next = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < deadline) {
        const call = targets[next++ % targets.length]!;
        const t0 = performance.now();
        const res = await call('POST', '/api/v1/recognize', { image });
        if (res.status === 200) latencies.push(performance.now() - t0);
        else errors++;
      }
    }),
  );
  return { requests: latencies.length, perSecond: latencies.length / SECONDS, p50Ms: median(latencies), p99Ms: quantile(latencies, 0.99), errors };
}

async function main(): Promise<void> {
  const problem = await postgresProblem();
  if (problem) throw new Error(`${problem}: bench:cluster needs PostgreSQL (scripts/ci/postgres.sh starts one)`);
  const db = await createClusterDatabase('facegate_bench_cluster');
  const dir = await mkdtemp(join(tmpdir(), 'facegate-bench-cluster-'));
  const nodes: NodeProcess[] = [];
  try {
    console.log(`seeding ${TEMPLATES} synthetic templates…`);
    const seedMs = await seed(db.url);
    console.log(`seeded in ${(seedMs / 1000).toFixed(1)} s; starting two nodes (each builds its index from the store)…`);
    const startAt = performance.now();
    const a = await startNode({ nodeId: 'a', databaseUrl: db.url, dataDir: join(dir, 'a'), env: nodeEnv, startTimeoutMs: 30 * 60_000 });
    nodes.push(a);
    const aReadyMs = performance.now() - startAt;
    // Node a saved the index it built; node b starts from a copy (as a new node can be seeded from
    // another's data folder) and checks it against the store by count and checksum instead of
    // building its own, which halves the set-up time on this 2-core machine.
    await cp(join(dir, 'a', 'gallery'), join(dir, 'b', 'gallery'), { recursive: true });
    const b = await startNode({ nodeId: 'b', databaseUrl: db.url, dataDir: join(dir, 'b'), env: nodeEnv, startTimeoutMs: 30 * 60_000 });
    nodes.push(b);
    const bReadyMs = performance.now() - startAt - aReadyMs;
    const key = a.printedKey!;
    const adminA = client(a.base, key);
    const adminB = client(b.base, key);
    const info = (await adminB('GET', '/api/v1/system/info')).json as Json;
    console.log(`node a ready in ${(aReadyMs / 1000).toFixed(1)} s, node b in ${(bReadyMs / 1000).toFixed(1)} s; gallery ${info.gallery.size} templates (${info.gallery.kind})`);

    const fx = await loadFaceFixtures();
    const faces = [fx.a1, fx.a2].map(b64);
    const person = (await adminA('POST', '/api/v1/people', { name: 'Probe person' })).json as Json;
    const gallerySize = async (call: ReturnType<typeof client>): Promise<number> => ((await call('GET', '/api/v1/system/cluster')).json as Json).gallerySize as number;

    // ---- sync latency ----
    // Each sample adds a face on the writer and waits for it in the reader's index, then erases it
    // on the writer and waits for it to leave: the person keeps their two enrolled faces, so the
    // recognition below sees an ordinary gallery.
    const enrolled = await adminA('POST', `/api/v1/people/${person.id}/faces`, { images: faces });
    if (enrolled.json.added !== 2) throw new Error(`enrolling the probe person failed: ${JSON.stringify(enrolled.json)}`);
    const waitForSize = async (reader: ReturnType<typeof client>, size: number, since: number): Promise<number> => {
      for (;;) {
        if ((await gallerySize(reader)) === size) return performance.now() - since;
        if (performance.now() - since > 10_000) throw new Error('a change did not reach the other node in 10 s');
        await new Promise((r) => setTimeout(r, 2));
      }
    };
    const addMs: number[] = [];
    const eraseMs: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const [writer, reader] = i % 2 === 0 ? [adminA, adminB] : [adminB, adminA];
      const before = await gallerySize(reader);
      const res = await writer('POST', `/api/v1/people/${person.id}/faces`, { images: [faces[i % 2]!] });
      if (res.status !== 201) throw new Error(`adding a face failed: ${res.status} ${JSON.stringify(res.json)}`);
      addMs.push(await waitForSize(reader, before + 1, performance.now()));
      const faceId = (res.json as Json).results[0].face.id as string;
      const erased = await writer('DELETE', `/api/v1/people/${person.id}/faces/${faceId}`);
      if (erased.status !== 204) throw new Error(`erasing a face failed: ${erased.status}`);
      eraseMs.push(await waitForSize(reader, before, performance.now()));
    }
    const stats = (v: number[]) => ({ samples: v.length, p50Ms: median(v), p99Ms: quantile(v, 0.99), maxMs: Math.max(...v) });
    const sync = { add: stats(addMs), erase: stats(eraseMs) };
    printTable(`A change on one node → in the other node's index (${info.gallery.size} templates, ${info.gallery.kind} index), from the writer's answer`, ['change', 'samples', 'p50 ms', 'p99 ms', 'max ms'], [
      ['face added', sync.add.samples, sync.add.p50Ms, sync.add.p99Ms, sync.add.maxMs],
      ['face erased', sync.erase.samples, sync.erase.p50Ms, sync.erase.p99Ms, sync.erase.maxMs],
    ]);

    // ---- throughput ----
    const probe = b64(fx.a3);
    const deviceA = client(a.base, await createKey(adminA, 'device'));
    const deviceB = client(b.base, await createKey(adminB, 'device'));
    const check = (await deviceB('POST', '/api/v1/recognize', { image: probe })).json as Json;
    if (!check.faces.some((f: Json) => f.person?.id === person.id)) throw new Error(`the probe is not recognised on node b: ${JSON.stringify(check.faces)}`);
    await throughput([deviceA], probe); // warm-up of both the engine and the connection (discarded)
    const one = await throughput([deviceA], probe);
    const two = await throughput([deviceA, deviceB], probe);
    printTable(`Recognition throughput, ${CLIENTS} requests in flight for ${SECONDS} s (1 vision worker per node, ${availableParallelism()} cores)`, ['nodes', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'vs 1 node'], [
      [1, one.perSecond, one.p50Ms, one.p99Ms, one.errors, '1.00×'],
      [2, two.perSecond, two.p50Ms, two.p99Ms, two.errors, `${(two.perSecond / one.perSecond).toFixed(2)}×`],
    ]);

    const file = writeResults('cluster', {
      date: new Date().toISOString(),
      machine: { cores: availableParallelism(), cpu: cpus()[0]?.model },
      templates: info.gallery.size,
      indexKind: info.gallery.kind,
      seedMs,
      nodeReadyMs: { a: aReadyMs, b: bReadyMs },
      sync,
      throughput: { clients: CLIENTS, seconds: SECONDS, oneNode: one, twoNodes: two, ratio: two.perSecond / one.perSecond },
    });
    console.log(`\nwrote ${file}`);
  } finally {
    for (const n of nodes) await n.stop().catch(() => undefined);
    await db.drop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
