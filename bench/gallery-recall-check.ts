/*
 * Does the server's recall check (POST /api/v1/gallery/recall-check, src/gallery/recall-check.ts)
 * tell an operator what their searches get? It makes its queries from the gallery alone: stored
 * templates moved as another person's templates differ. This bench builds one HNSW gallery of
 * realistic synthetic people (bench/gallery-people.ts, production parameters) and, at several
 * search widths, sets that estimate beside the recall of the generator's own new views of stored
 * people (as bench/gallery.ts measures it), both against exact scans of the same gallery.
 *
 *   npm run bench:gallery-recall -- [--templates 100000] [--queries 1000] [--offsets 0.8,1.0]
 *
 * The index is built with the narrowest search expansion (16) and each width ef is searched as k
 * = ef, since usearch searches max(ef, k) candidates: one build serves every width.
 */
import { Gallery, type GalleryRow } from '../src/gallery/gallery.ts';
import { NearestScan, newView, VIEW_OFFSET, viewSources, type RecallQuery } from '../src/gallery/recall-check.ts';
import { seededRandom } from '../src/domain/random.ts';
import { realEmbeddings } from './gallery-embeddings.ts';
import { DIMS, galleryRows, RealisticPeople } from './gallery-people.ts';
import { option, printTable, writeResults } from './report.ts';

const TEMPLATES = option('templates', 100_000);
const QUERIES = option('queries', 1000);
const WIDTHS = [32, 64, 128, 256];
/** View offsets tried besides the server's (VIEW_OFFSET). */
const OFFSETS = [...new Set([VIEW_OFFSET, ...(process.argv.includes('--offsets') ? process.argv[process.argv.indexOf('--offsets') + 1]!.split(',').map(Number) : [])])];
const MODEL = 'bench';
const BATCH = 1000;

function recallOf(rows: GalleryRow[], queries: RecallQuery[]): { recallAt1: number; samePersonAt1: number } {
  const scan = new NearestScan(queries, DIMS);
  for (let i = 0; i < rows.length; i += BATCH) scan.add(rows.slice(i, i + BATCH));
  return scan.estimate();
}

async function main(): Promise<void> {
  const people = new RealisticPeople(await realEmbeddings());
  const rows = galleryRows(people, TEMPLATES);
  const gallery = new Gallery({ hnswAbove: 1000, hnsw: { expansionSearch: 16 } });
  const started = performance.now();
  await gallery.rebuild(MODEL, rows, { expectedCount: rows.length });
  const buildSeconds = (performance.now() - started) / 1000;
  console.error(`built ${TEMPLATES} templates into ${gallery.kind(MODEL)} in ${buildSeconds.toFixed(0)} s`);

  const random = seededRandom(TEMPLATES);
  // The server's queries: made as GalleryService.measureRecall makes them, from the gallery alone.
  const ids = rows.map((r) => r.id);
  const rowOf = new Map(rows.map((r, i) => [r.id, i]));
  const templatesOf = new Map<string, string[]>();
  for (const r of rows) templatesOf.set(r.personId, [...(templatesOf.get(r.personId) ?? []), r.id]);
  const sources: { template: Float32Array; from: Float32Array; to: Float32Array }[] = [];
  while (sources.length < QUERIES) {
    const { templateId, fromId, toId } = await viewSources(ids, (id) => rows[rowOf.get(id)!]!.personId, (p) => templatesOf.get(p) ?? [], random);
    const [template, from, to] = [templateId, fromId, toId].map((id) => rows[rowOf.get(id)!]!.embedding) as [Float32Array, Float32Array, Float32Array];
    if (newView(template, from, to)) sources.push({ template, from, to });
  }
  const checkViews = (offset: number): Float32Array[] => sources.map((s) => newView(s.template, s.from, s.to, offset)!);
  // The generator's new views of stored people: what bench/gallery.ts calls queries.
  const generatorViews = Array.from({ length: QUERIES }, () => {
    const vector = new Float32Array(DIMS);
    people.query(random, Math.floor(random() * rows.length), vector);
    return vector;
  });
  const answered = (views: Float32Array[], ef: number): RecallQuery[] => views.map((vector) => ({ vector, indexTop: gallery.search(MODEL, vector, ef)[0] }));
  const results = WIDTHS.map((ef) => {
    const actual = recallOf(rows, answered(generatorViews, ef));
    const checks = OFFSETS.map((offset) => ({ offset, ...recallOf(rows, answered(checkViews(offset), ef)) }));
    console.error(`ef ${ef}: new views ${actual.recallAt1.toFixed(3)}; recall check ${checks.map((c) => `${c.offset}: ${c.recallAt1.toFixed(3)}`).join(', ')}`);
    return { ef, newViews: actual, recallChecks: checks };
  });
  printTable(
    `Recall@1 of an HNSW gallery of ${TEMPLATES.toLocaleString('en')} templates (realistic people, production graph): the generator's new views against the server's recall check (views made from the gallery, by offset length), ${QUERIES} each`,
    ['ef', 'new views (what searches get)', ...OFFSETS.map((o) => `recall check, offset ${o}${o === VIEW_OFFSET ? ' (server)' : ''}`)],
    results.map((r) => [r.ef, r.newViews.recallAt1.toFixed(3), ...r.recallChecks.map((c) => c.recallAt1.toFixed(3))]),
  );
  console.log(`\nresults: ${writeResults('gallery-recall-check', { templates: TEMPLATES, queries: QUERIES, buildSeconds, results })}`);
}

void main();
