/*
 * Gallery benchmark: search latency and recall of the HNSW index against exact search, exact
 * search latency, enrollment throughput and memory, at 10k, 100k and 1M templates.
 *
 *   npm run bench:gallery -- [--sizes 10000,100000,1000000] [--queries 1000] [--isotropic | --crowded] [--whole-vectors] [--spectrum]
 *       [--quantization i8] [--connectivity 32] [--expansion-add 384] [--expansion-search 128,64,256]
 *       [--build-threads 1] [--embed-only] [--no-cache]
 *
 * Vectors: real fr_feature embeddings of /work/shared/datasets (faces/ and pose/ photos; computed
 * once with the ONNX engine and cached in .cache/gallery-bench-embeddings.bin), plus synthetic
 * people made from them (gallery-people.ts): by default people made inside the subspace real
 * embeddings span (--spectrum prints that measurement), each with 2–6 templates that vary like
 * real photos of one person; --isotropic is the earlier generator (random parts in all 512
 * dimensions), --crowded the one before it (every person has another at ≈0.72 cosine). Queries
 * are new views of the person of a random stored template. The HNSW index stores coordinates in
 * a subspace learnt from 10,000 of the gallery's templates, as the server does (--whole-vectors:
 * whole vectors; data that is not low-rank gets none either way). Recall@1 is
 * HNSW's top-1 against the exact index's top-1 (a different template with the same exact
 * similarity counts as a hit); "same person@1" also counts another template of the person exact's
 * top-1 belongs to (what identification needs). Built graphs are cached under .cache/ by size and
 * parameters (--no-cache builds afresh). The first --expansion-search value is built; the others reuse the
 * saved graph (usearch fixes the search expansion at construction).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { projectPath } from '../src/config/paths.ts';
import { ExactIndex } from '../src/gallery/exact-index.ts';
import { DEFAULT_HNSW_PARAMS, HnswIndex, type HnswQuantization } from '../src/gallery/hnsw-index.ts';
import { learnSubspace, type Subspace } from '../src/gallery/subspace.ts';
import { median, printTable, quantile, writeResults } from './report.ts';
import { seededRandom } from '../src/domain/random.ts';
import { decideIdentity, type IdentityDecision, type IdentityPolicy } from '../src/domain/identity.ts';
import { realEmbeddings } from './gallery-embeddings.ts';
import { CrowdedPeople, DIMS, principalComponents, RealisticPeople, type PeopleGenerator, type PeopleMode, type RealEmbeddings } from './gallery-people.ts';

// ---------------------------------------------------------------------------------------------
// Synthetic gallery from the real embeddings: see gallery-people.ts

/** A UUID-shaped id (36 characters, like the store's), so id memory is realistic. */
const templateId = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const templateNumber = (id: string): number => Number.parseInt(id.slice(-12), 16);

/** Bumped when the data generator or the index format changes, so cached graphs are not reused wrongly. */
const CACHE_VERSION = 4;

/** How many of the 512 dimensions real embeddings use: the covariance spectrum of the real photos. */
function printSpectrum(real: RealEmbeddings): void {
  const values = principalComponents(real).values.map((v) => Math.max(0, v));
  const total = values.reduce((a, b) => a + b, 0);
  const participation = total ** 2 / values.reduce((a, b) => a + b * b, 0);
  const share = (k: number): string => ((100 * values.slice(0, k).reduce((a, b) => a + b, 0)) / total).toFixed(4);
  printTable(
    `Covariance spectrum of ${real.count} real ${real.modelId} embeddings (${DIMS} dimensions; participation ratio ${participation.toFixed(1)})`,
    ['principal directions', '% of variance', 'eigenvalue / largest'],
    [10, 30, 50, 100, 120, 150, 200, 300].map((k) => [String(k), share(k), (values[k - 1]! / values[0]!).toExponential(2)]),
  );
  writeResults('gallery-spectrum', { modelId: real.modelId, photos: real.count, dims: DIMS, participationRatio: participation, eigenvalues: values });
}

function makePeople(real: RealEmbeddings, mode: PeopleMode): PeopleGenerator {
  return mode === 'crowded' ? new CrowdedPeople(real) : new RealisticPeople(real, { isotropic: mode === 'isotropic' });
}

// ---------------------------------------------------------------------------------------------
// Measuring

const gc: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

async function rssBytes(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20)); // let native finalizers run
  }
  return process.memoryUsage().rss;
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function normalizedCopy(v: Float32Array): Float32Array {
  const out = v.slice();
  const inv = 1 / Math.sqrt(dot(out, out));
  for (let i = 0; i < out.length; i++) out[i]! *= inv;
  return out;
}

interface LatencyStats {
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

function latency(samples: number[]): LatencyStats {
  return { p50Ms: median(samples), p99Ms: quantile(samples, 0.99), meanMs: samples.reduce((a, b) => a + b, 0) / samples.length };
}

interface GroundTruth {
  queries: Float32Array[];
  top10: string[][];
  top1Similarity: number[];
  /** The identity decision on exact search's top DECISION_K (what the server would answer). */
  decisions: IdentityDecision[];
}

/** The server's search size (identity.searchK) and identity policy with fr_feature's calibrated threshold. */
const DECISION_K = 20;
const DECISION_POLICY: IdentityPolicy = { searchThreshold: 0.5, minMargin: 0.05, scoring: { strategy: 'best' } };

function decide(people: PeopleGenerator, matches: readonly { id: string; similarity: number }[], k: number): IdentityDecision {
  const templateMatches = matches.map((m) => ({ personId: String(people.personOf(templateNumber(m.id))), similarity: m.similarity }));
  const full = matches.length >= k;
  return decideIdentity({ faceFound: true, matches: templateMatches, ...(full ? { candidateFloor: matches[matches.length - 1]!.similarity } : {}) }, DECISION_POLICY);
}

const sameDecision = (a: IdentityDecision, b: IdentityDecision): boolean =>
  a.decision === b.decision && (a.decision === 'match' ? b.decision === 'match' && a.personId === b.personId : b.decision === 'unknown' && a.reason === b.reason);

interface ExactResult {
  size: number;
  buildSeconds: number;
  addPerSecond: number;
  memoryBytesPerTemplate: number;
  rssBytesPerTemplate: number;
  top1: LatencyStats;
  top10: LatencyStats;
  fallbackScans: number;
  queries: number;
}

interface HnswResult {
  size: number;
  quantization: HnswQuantization;
  connectivity: number;
  expansionAdd: number;
  expansionSearch: number;
  buildSeconds?: number;
  /** The graph was loaded from .cache/ (built by an earlier run with the same key; buildSeconds is that run's). */
  buildFromCache?: boolean;
  /** Rank of the subspace the index stores coordinates in (none with --whole-vectors, or data that is not low-rank), and templates added outside it. */
  subspaceRank?: number;
  outsideSubspace?: number;
  /** Stored templates (of a random sample) that a search by their own vector does not return first. */
  selfSearchMisses?: number;
  selfSearchSample?: number;
  buildThreads?: number;
  /** Batch insert (addMany, --build-threads threads). */
  batchAddPerSecond?: number;
  /** One template at a time (enrollment), on the calling thread. */
  singleAddPerSecond?: number;
  removePerSecond?: number;
  memoryBytesPerTemplate: number;
  rssBytesPerTemplate?: number;
  saveSeconds?: number;
  loadSeconds?: number;
  top1: LatencyStats;
  top10: LatencyStats;
  /** HNSW's top-1 is exact's top-1, or ties its similarity (float tolerance). */
  recallAt1: number;
  /** As recallAt1, or HNSW's top-1 is another template of the same person as exact's top-1. */
  identityRecallAt1: number;
  /** The identity decision (threshold 0.5, margin 0.05, top 20) on HNSW's results equals the one on exact's. */
  decisionAgreement: number;
  /** Queries exact search names a person for, and of those, how many HNSW names differently or not at all. */
  exactMatches: number;
  matchesChanged: number;
  recallAt10: number;
}

function parseList(args: string[], flag: string, fallback: string): string[] {
  const i = args.indexOf(flag);
  return (i >= 0 && args[i + 1] ? args[i + 1]! : fallback).split(',').map((s) => s.trim()).filter(Boolean);
}

const CHUNK = 10_000;

async function measureSize(real: RealEmbeddings, size: number, options: BenchOptions): Promise<SizeResult> {
  console.error(`\n== ${size} templates`);
  const people = makePeople(real, options.people);
  // Ids are made afresh for each index (not shared), so RSS includes their strings as in a server.
  const idRange = (start: number, count: number): string[] => Array.from({ length: count }, (_, j) => templateId(start + j));

  // Exact index: the reference, and a contender below the switch size.
  let rss0 = await rssBytes();
  const exact = new ExactIndex(DIMS);
  exact.reserve(size);
  let addSeconds = 0;
  const derived = new Float32Array(DIMS);
  for (let i = 0; i < size; i++) {
    people.next(i, derived);
    const t0 = performance.now();
    exact.add(templateId(i), derived);
    addSeconds += (performance.now() - t0) / 1000;
  }
  const exactRss = ((await rssBytes()) - rss0) / size;
  console.error(`exact built in ${addSeconds.toFixed(1)} s`);

  // Queries: new views of the people of random stored templates.
  const random = seededRandom(size);
  const truth: GroundTruth = { queries: [], top10: [], top1Similarity: [], decisions: [] };
  const queryToTarget: number[] = [];
  const truthPeople: number[] = [];
  for (let q = 0; q < options.queries; q++) {
    const targetNumber = Math.floor(random() * size);
    const target = exact.vectorOf(templateId(targetNumber))!;
    const query = new Float32Array(DIMS);
    people.query(random, targetNumber, query);
    truthPeople.push(people.personOf(targetNumber));
    truth.queries.push(query);
    queryToTarget.push(dot(query, target));
  }
  const exactTop1: number[] = [];
  for (const query of truth.queries.slice(0, Math.min(300, options.queries))) {
    const t0 = performance.now();
    exact.search(query, 1);
    exactTop1.push(performance.now() - t0);
  }
  const exactTop10: number[] = [];
  const top1Gap: number[] = [];
  for (const query of truth.queries) {
    const t0 = performance.now();
    const top = exact.search(query, 10);
    exactTop10.push(performance.now() - t0);
    truth.top10.push(top.map((m) => m.id));
    truth.top1Similarity.push(top[0]!.similarity);
    if (top.length > 1) top1Gap.push(top[0]!.similarity - top[1]!.similarity);
  }
  for (const query of truth.queries) truth.decisions.push(decide(people, exact.search(query, DECISION_K), DECISION_K));
  // What the data looks like: how close each synthetic template's nearest other person is (above
  // the search threshold, the duplicate check would have refused to enrol it).
  const nearestOther: number[] = [];
  const queryBestOwn: number[] = [];
  if (size > real.count) {
    const samples = Math.min(1000, size - real.count);
    for (let t = 0; t < samples; t++) {
      const n = real.count + Math.floor(random() * (size - real.count));
      const person = people.personOf(n);
      const other = exact.search(exact.vectorOf(templateId(n))!, 20).find((m) => people.personOf(templateNumber(m.id)) !== person);
      if (other) nearestOther.push(other.similarity);
    }
  }
  truth.queries.forEach((query, q) => {
    const own = truthPeople[q]!;
    const best = exact.search(query, 20).find((m) => people.personOf(templateNumber(m.id)) === own);
    queryBestOwn.push(best ? best.similarity : 0);
  });
  const data: DataStats = {
    people: options.people,
    synthetic: { templates: Math.max(0, size - real.count), people: people.people(size) - new Set(real.identities.subarray(0, Math.min(real.count, size))).size },
    nearestOtherAboveThreshold: nearestOther.filter((s) => s >= DECISION_POLICY.searchThreshold).length / Math.max(1, nearestOther.length),
    queryToBestOwnSimilarity: { p10: quantile(queryBestOwn, 0.1), p50: median(queryBestOwn), p90: quantile(queryBestOwn, 0.9) },
    realTemplates: Math.min(real.count, size),
    nearestOtherSimilarity: { p10: quantile(nearestOther, 0.1), p50: median(nearestOther), p90: quantile(nearestOther, 0.9) },
    queryToTargetSimilarity: { p10: quantile(queryToTarget, 0.1), p50: median(queryToTarget), p90: quantile(queryToTarget, 0.9) },
    queryTop1Gap: { p10: quantile(top1Gap, 0.1), p50: median(top1Gap) },
    exactDecisions: truth.decisions.reduce<Record<string, number>>((counts, d) => {
      const key = d.decision === 'match' ? 'match' : d.reason;
      counts[key] = (counts[key] ?? 0) + 1;
      return counts;
    }, {}),
  };
  console.error(`data: ${JSON.stringify(data)}`);
  const exactResult: ExactResult = {
    size,
    buildSeconds: addSeconds,
    addPerSecond: size / addSeconds,
    memoryBytesPerTemplate: exact.memoryBytes() / size,
    rssBytesPerTemplate: exactRss,
    top1: latency(exactTop1),
    top10: latency(exactTop10),
    fallbackScans: exact.fallbackScans,
    queries: options.queries,
  };
  console.error(`exact top-10 p50 ${exactResult.top10.p50Ms.toFixed(2)} ms, fallbacks ${exact.fallbackScans}`);

  const hnswResults: HnswResult[] = [];
  // Templates enrolled one at a time after the build continue the generated gallery.
  let nextExtra = size;
  for (const quantization of options.quantizations) {
    for (const connectivity of options.connectivities) {
      const [firstEf, ...otherEfs] = options.expansionSearch;
      rss0 = await rssBytes();
      // Held in an object so it can be dropped (and its native memory freed) before the next one.
      const holder: { hnsw?: HnswIndex } = {};
      // A 1M build takes tens of minutes on one thread: built graphs are kept under .cache/, keyed
      // by everything that shapes them (the data is seeded, so the same key means the same graph).
      const cacheKey = `${size}-${options.people}-${quantization}-M${connectivity}-efc${options.expansionAdd}-t${options.buildThreads}${options.subspaceIndex ? '-sub' : ''}-v${CACHE_VERSION}`;
      const cacheDir = projectPath(`.cache/gallery-bench-index/${cacheKey}`);
      let buildSeconds = 0;
      let fromCache = false;
      if (!options.noCache && existsSync(join(cacheDir, 'build.json'))) {
        holder.hnsw = await HnswIndex.load(join(cacheDir, 'index'), { expansionSearch: firstEf, buildThreads: options.buildThreads });
        buildSeconds = (JSON.parse(readFileSync(join(cacheDir, 'build.json'), 'utf8')) as { buildSeconds: number }).buildSeconds;
        fromCache = true;
        console.error(`hnsw ${quantization} M=${connectivity}: loaded the graph built earlier from ${cacheDir}`);
      } else {
        let subspace: Subspace | null = null;
        if (options.subspaceIndex) {
          // As the server does at a rebuild: learnt from a sample of the gallery's own templates.
          const sampleSize = Math.min(size, SUBSPACE_SAMPLE);
          const sample = new Float32Array(sampleSize * DIMS);
          for (let j = 0; j < sampleSize; j++) sample.set(exact.vectorOf(templateId(Math.floor((j * size) / sampleSize)))!, j * DIMS);
          const t0 = performance.now();
          subspace = await learnSubspace(sample, DIMS);
          console.error(`subspace: rank ${subspace?.rank ?? '— (none found)'}, learnt from ${sampleSize} templates in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        }
        holder.hnsw = new HnswIndex(DIMS, { quantization, connectivity, expansionAdd: options.expansionAdd, expansionSearch: firstEf, buildThreads: options.buildThreads, subspace });
        for (let start = 0; start < size; start += CHUNK) {
          const count = Math.min(CHUNK, size - start);
          const chunk = new Float32Array(count * DIMS);
          const chunkIds = idRange(start, count);
          for (let j = 0; j < count; j++) chunk.set(exact.vectorOf(chunkIds[j]!)!, j * DIMS);
          const t0 = performance.now();
          holder.hnsw.addMany(chunkIds, chunk);
          buildSeconds += (performance.now() - t0) / 1000;
          if (size >= 200_000 && (start / CHUNK) % 10 === 9) console.error(`  hnsw ${quantization} M=${connectivity}: ${start + count} added, ${buildSeconds.toFixed(0)} s`);
        }
        if (!options.noCache) {
          await holder.hnsw.save(join(cacheDir, 'index'));
          writeFileSync(join(cacheDir, 'build.json'), JSON.stringify({ buildSeconds, when: new Date().toISOString() }));
        }
      }
      // Only the first HNSW index of a run is measured: the allocator may keep memory an earlier
      // index freed, which would hide the next one's growth.
      const rssPerTemplate = hnswResults.length === 0 && !fromCache ? ((await rssBytes()) - rss0) / size : undefined;
      const memoryBytesPerTemplate = holder.hnsw!.memoryBytes() / size;
      console.error(`hnsw ${quantization} M=${connectivity} built in ${buildSeconds.toFixed(1)} s`);

      // Enrollment one at a time, then removal.
      const extra = new Float32Array(500 * DIMS);
      for (let j = 0; j < 500; j++) {
        people.next(nextExtra++, derived);
        extra.set(derived, j * DIMS);
      }
      let t0 = performance.now();
      for (let j = 0; j < 500; j++) holder.hnsw!.add(`extra-${j}`, extra.subarray(j * DIMS, (j + 1) * DIMS));
      const singleAddPerSecond = 500 / ((performance.now() - t0) / 1000);
      t0 = performance.now();
      for (let j = 0; j < 500; j++) holder.hnsw!.remove(`extra-${j}`);
      const removePerSecond = 500 / ((performance.now() - t0) / 1000);

      const measureSearch = (index: HnswIndex): Pick<HnswResult, 'top1' | 'top10' | 'recallAt1' | 'identityRecallAt1' | 'recallAt10' | 'decisionAgreement' | 'exactMatches' | 'matchesChanged'> => {
        const top1: number[] = [];
        const top10: number[] = [];
        let hits1 = 0;
        let identityHits1 = 0;
        let hits10 = 0;
        // Separate passes, so neither k profits from the other's warm caches.
        truth.queries.forEach((query, q) => {
          const t = performance.now();
          const first = index.search(query, 1)[0];
          top1.push(performance.now() - t);
          // A different id with the same exact similarity (a duplicate photo) is still the right answer.
          if (first && (first.id === truth.top10[q]![0] || dot(exact.vectorOf(first.id)!, normalizedCopy(query)) >= truth.top1Similarity[q]! - 1e-6)) {
            hits1++;
            identityHits1++;
          } else if (first && people.personOf(templateNumber(first.id)) === people.personOf(templateNumber(truth.top10[q]![0]!))) identityHits1++;
        });
        truth.queries.forEach((query, q) => {
          const t = performance.now();
          const ten = index.search(query, 10);
          top10.push(performance.now() - t);
          const expected = new Set(truth.top10[q]);
          hits10 += ten.filter((m) => expected.has(m.id)).length / expected.size;
        });
        let agreements = 0;
        let exactMatches = 0;
        let matchesChanged = 0;
        truth.queries.forEach((query, q) => {
          const expected = truth.decisions[q]!;
          const got = decide(people, index.search(query, DECISION_K), DECISION_K);
          if (sameDecision(expected, got)) agreements++;
          if (expected.decision === 'match') {
            exactMatches++;
            if (!sameDecision(expected, got)) matchesChanged++;
          }
        });
        const n = truth.queries.length;
        return {
          top1: latency(top1),
          top10: latency(top10),
          recallAt1: hits1 / n,
          identityRecallAt1: identityHits1 / n,
          recallAt10: hits10 / n,
          decisionAgreement: agreements / n,
          exactMatches,
          matchesChanged,
        };
      };

      // Reachability: a stored template searched by its own vector must come back first (an
      // orphaned node, which usearch #735 makes with concurrent adds, never does).
      const selfSample = Math.min(size, 2000);
      let selfMisses = 0;
      const selfRandom = seededRandom(size ^ 0x5bd1e995);
      for (let j = 0; j < selfSample; j++) {
        const id = templateId(Math.floor(selfRandom() * size));
        const top = holder.hnsw.search(exact.vectorOf(id)!, 1)[0];
        if (!top || (top.id !== id && top.similarity < 1 - 1e-6)) selfMisses++;
      }
      console.error(`  self-search misses: ${selfMisses}/${selfSample}`);
      const subspaceStatus = holder.hnsw!.subspaceStatus();

      const built: HnswResult = {
        size,
        quantization,
        connectivity,
        expansionAdd: options.expansionAdd,
        expansionSearch: firstEf!,
        buildSeconds,
        buildFromCache: fromCache,
        selfSearchMisses: selfMisses,
        selfSearchSample: selfSample,
        buildThreads: options.buildThreads,
        ...(subspaceStatus ? { subspaceRank: subspaceStatus.rank, outsideSubspace: subspaceStatus.outside } : {}),
        batchAddPerSecond: size / buildSeconds,
        singleAddPerSecond,
        removePerSecond,
        memoryBytesPerTemplate,
        rssBytesPerTemplate: rssPerTemplate,
        ...measureSearch(holder.hnsw!),
      };
      hnswResults.push(built);
      console.error(`  ef=${firstEf}: top-1 p50 ${built.top1.p50Ms.toFixed(3)} ms, recall@1 ${built.recallAt1.toFixed(4)} (same person ${built.identityRecallAt1.toFixed(4)}, decisions ${built.decisionAgreement.toFixed(4)})`);

      if (otherEfs.length > 0) {
        // usearch fixes the search expansion at construction: save once, load with each ef.
        const dir = join(tmpdir(), `facegate-bench-hnsw-${process.pid}`);
        t0 = performance.now();
        await holder.hnsw!.save(dir);
        built.saveSeconds = (performance.now() - t0) / 1000;
        holder.hnsw = undefined;
        for (const ef of otherEfs) {
          t0 = performance.now();
          const loaded = await HnswIndex.load(dir, { expansionSearch: ef });
          const loadSeconds = (performance.now() - t0) / 1000;
          const result: HnswResult = {
            size,
            quantization,
            connectivity,
            expansionAdd: options.expansionAdd,
            expansionSearch: ef,
            memoryBytesPerTemplate,
            loadSeconds,
            ...(built.subspaceRank ? { subspaceRank: built.subspaceRank } : {}),
            ...measureSearch(loaded),
          };
          hnswResults.push(result);
          console.error(`  ef=${ef}: top-1 p50 ${result.top1.p50Ms.toFixed(3)} ms, recall@1 ${result.recallAt1.toFixed(4)} (same person ${result.identityRecallAt1.toFixed(4)}, decisions ${result.decisionAgreement.toFixed(4)})`);
        }
        await rm(dir, { recursive: true, force: true });
      }
      holder.hnsw = undefined;
    }
  }
  return { size, data, exact: exactResult, hnsw: hnswResults };
}

interface DataStats {
  people: PeopleMode;
  realTemplates: number;
  synthetic: { templates: number; people: number };
  /** Cosine of a synthetic template to the nearest template of another person in the gallery. */
  nearestOtherSimilarity: { p10: number; p50: number; p90: number };
  /** Share of those at or above the search threshold (people the duplicate check would refuse). */
  nearestOtherAboveThreshold: number;
  /** Cosine of a query to the best template of its own person. */
  queryToBestOwnSimilarity: { p10: number; p50: number; p90: number };
  /** Cosine of a query to the stored template it was made from. */
  queryToTargetSimilarity: { p10: number; p50: number; p90: number };
  /** Exact top-1 minus top-2 similarity of the queries. */
  queryTop1Gap: { p10: number; p50: number };
  /** What the identity decision on exact search's results says for the queries (match, ambiguous, …). */
  exactDecisions: Record<string, number>;
}

interface SizeResult {
  size: number;
  data: DataStats;
  exact: ExactResult;
  hnsw: HnswResult[];
}

interface BenchOptions {
  buildThreads: number;
  people: PeopleMode;
  sizes: number[];
  queries: number;
  quantizations: HnswQuantization[];
  connectivities: number[];
  expansionAdd: number;
  expansionSearch: number[];
  /** Build every graph afresh and keep none (--no-cache). */
  noCache: boolean;
  /** HNSW over coordinates in a subspace learnt from a sample of the gallery, as the server builds it (off: --whole-vectors). */
  subspaceIndex: boolean;
}

/** Templates sampled to learn the index's subspace (the server samples as many). */
const SUBSPACE_SAMPLE = 10_000;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const real = await realEmbeddings();
  console.error(`real embeddings: ${real.count} (${real.modelId})`);
  if (args.includes('--embed-only')) return;
  if (args.includes('--spectrum')) {
    printSpectrum(real);
    return;
  }
  const options: BenchOptions = {
    sizes: parseList(args, '--sizes', '10000,100000,1000000').map(Number),
    queries: Number(parseList(args, '--queries', '1000')[0]),
    quantizations: parseList(args, '--quantization', DEFAULT_HNSW_PARAMS.quantization) as HnswQuantization[],
    connectivities: parseList(args, '--connectivity', String(DEFAULT_HNSW_PARAMS.connectivity)).map(Number),
    expansionAdd: Number(parseList(args, '--expansion-add', String(DEFAULT_HNSW_PARAMS.expansionAdd))[0]),
    expansionSearch: parseList(args, '--expansion-search', `${DEFAULT_HNSW_PARAMS.expansionSearch},64,256`).map(Number),
    people: args.includes('--crowded') ? 'crowded' : args.includes('--isotropic') ? 'isotropic' : 'realistic',
    buildThreads: Number(parseList(args, '--build-threads', '1')[0]),
    noCache: args.includes('--no-cache'),
    subspaceIndex: !args.includes('--whole-vectors'),
  };
  const started = performance.now();
  const results: SizeResult[] = [];
  for (const size of options.sizes) results.push(await measureSize(real, size, options));

  const ms = (n: number): string => (n < 1 ? n.toFixed(3) : n.toFixed(2));
  const f3 = (n: number): string => (Number.isFinite(n) ? n.toFixed(3) : '—');
  printTable(
    `Data (${options.people} people; real photos: nearest other person p50 0.369, p90 0.484): cosine similarities`,
    ['templates', 'real', 'synthetic people', 'nearest other person p10', 'p50', 'p90', '≥ 0.50 (refused)', 'query→best own p50', 'query→target p50', 'query top-1 gap p10', 'gap p50'],
    results.map(({ size, data: d }) => [
      String(size),
      String(d.realTemplates),
      String(d.synthetic.people),
      f3(d.nearestOtherSimilarity.p10),
      f3(d.nearestOtherSimilarity.p50),
      f3(d.nearestOtherSimilarity.p90),
      f3(d.nearestOtherAboveThreshold),
      f3(d.queryToBestOwnSimilarity.p50),
      f3(d.queryToTargetSimilarity.p50),
      f3(d.queryTop1Gap.p10),
      f3(d.queryTop1Gap.p50),
    ]),
  );
  printTable(
    'Exact index (int8 scan + float32 re-score, 1 thread)',
    ['templates', 'add/s', 'top-1 p50 ms', 'top-1 p99 ms', 'top-10 p50 ms', 'top-10 p99 ms', 'full-scan fallbacks', 'est. B/template', 'RSS B/template'],
    results.map(({ exact: e }) => [
      String(e.size),
      Math.round(e.addPerSecond),
      ms(e.top1.p50Ms),
      ms(e.top1.p99Ms),
      ms(e.top10.p50Ms),
      ms(e.top10.p99Ms),
      `${e.fallbackScans}/${e.queries}`,
      Math.round(e.memoryBytesPerTemplate),
      Math.round(e.rssBytesPerTemplate),
    ]),
  );
  printTable(
    `HNSW index (usearch; search on 1 thread, build on ${options.buildThreads})`,
    ['templates', 'quant', 'stored dims', 'M', 'ef', 'recall@1', 'same person@1', 'decision agreement', 'matches changed', 'recall@10', 'top-1 p50 ms', 'top-1 p99 ms', 'top-10 p50 ms', 'top-10 p99 ms', 'batch add/s', 'single add/s', 'est. B/template', 'RSS B/template'],
    results.flatMap(({ hnsw }) =>
      hnsw.map((h) => [
        String(h.size),
        h.quantization,
        String(h.subspaceRank ?? DIMS),
        String(h.connectivity),
        String(h.expansionSearch),
        h.recallAt1.toFixed(4),
        h.identityRecallAt1.toFixed(4),
        h.decisionAgreement.toFixed(4),
        `${h.matchesChanged}/${h.exactMatches}`,
        h.recallAt10.toFixed(4),
        ms(h.top1.p50Ms),
        ms(h.top1.p99Ms),
        ms(h.top10.p50Ms),
        ms(h.top10.p99Ms),
        h.batchAddPerSecond ? Math.round(h.batchAddPerSecond) : '',
        h.singleAddPerSecond ? Math.round(h.singleAddPerSecond) : '',
        Math.round(h.memoryBytesPerTemplate),
        h.rssBytesPerTemplate ? Math.round(h.rssBytesPerTemplate) : '',
      ]),
    ),
  );
  const file = writeResults('gallery', {
    when: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, loadAverage: loadavg(), node: process.version, totalMemoryBytes: totalmem() },
    embeddings: { modelId: real.modelId, real: real.count, dims: DIMS },
    options,
    seconds: (performance.now() - started) / 1000,
    results,
  });
  console.log(`\nwrote ${file}`);
}

await main();
