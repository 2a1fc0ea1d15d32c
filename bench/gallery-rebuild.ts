/*
 * How long a gallery rebuild holds the event loop: Gallery.rebuild of N synthetic templates into an
 * HNSW index (production parameters, subspace learnt), with an event-loop delay monitor running.
 * Baseline in the same process: the same rebuild adding up to 64 vectors between yields whatever
 * they cost (buildSliceMs effectively unlimited), as before slices were sized by time. Build times
 * vary by ±20 % from run to run here (run in the other order, the two matched): compare delays.
 *
 *   npx tsx bench/gallery-rebuild.ts [--templates 30000] [--slice-ms 20]
 *
 * Needs the real embeddings of /work/shared/datasets (see gallery-embeddings.ts).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Gallery, type GalleryRow } from '../src/gallery/gallery.ts';
import { realEmbeddings } from './gallery-embeddings.ts';
import { galleryRows, RealisticPeople } from './gallery-people.ts';
import { option, printTable, writeResults } from './report.ts';

const TEMPLATES = option('templates', 30_000);
const SLICE_MS = option('slice-ms', 20);

interface RebuildRun {
  label: string;
  buildSliceMs: number;
  seconds: number;
  delayP50Ms: number;
  delayP99Ms: number;
  delayMaxMs: number;
}

async function measure(label: string, rows: GalleryRow[], buildSliceMs: number): Promise<RebuildRun> {
  const gallery = new Gallery({ hnswAbove: 1000, buildSliceMs });
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const started = performance.now();
  await gallery.rebuild('bench', rows, { expectedCount: rows.length });
  const seconds = (performance.now() - started) / 1000;
  delay.disable();
  return { label, buildSliceMs, seconds, delayP50Ms: delay.percentile(50) / 1e6, delayP99Ms: delay.percentile(99) / 1e6, delayMaxMs: delay.max / 1e6 };
}

async function main(): Promise<void> {
  const people = new RealisticPeople(await realEmbeddings());
  const rows = galleryRows(people, TEMPLATES);
  const runs = [await measure('64 vectors between yields (before)', rows, 1e9), await measure(`slices of ≈${SLICE_MS} ms`, rows, SLICE_MS)];
  printTable(
    `Gallery.rebuild of ${TEMPLATES} templates into HNSW: event-loop delay`,
    ['build', 'seconds', 'delay p50 ms', 'p99 ms', 'max ms'],
    runs.map((r) => [r.label, r.seconds.toFixed(1), r.delayP50Ms.toFixed(1), r.delayP99Ms.toFixed(1), r.delayMaxMs.toFixed(1)]),
  );
  writeResults('gallery-rebuild', { templates: TEMPLATES, runs });
}

void main();
