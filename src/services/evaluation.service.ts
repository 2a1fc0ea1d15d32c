import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  allPairScores,
  bestThresholdAccuracy,
  crossValidatedAccuracy,
  identify,
  lfwAccuracy,
  lfwImagePath,
  openSetRates,
  openSetThreshold,
  recommendThresholds,
  rocAuc,
  selectHeldOutIdentities,
  tarAtFar,
  type CrossValidatedAccuracy,
  type LabelledVector,
  type LfwPairs,
  type OpenSetRates,
  type TarAtFar,
  type ThresholdRecommendation,
} from '../domain/metrics.ts';
import type { AnalyzeOptions, AnalyzeResult } from '../vision/analysis.ts';
import type { CachedAnalysis } from '../vision/embedding-cache.ts';
import { sha256Hex } from '../vision/embedding-cache.ts';

/**
 * Recognition evaluation: embeds the largest face of every image of a labelled folder (or of the
 * LFW pairs) through the vision pool, reusing cached embeddings, and measures verification,
 * identification and open-set search with src/domain/metrics.ts.
 */

/** The part of the vision pool evaluation uses. */
export interface EvalVisionPool {
  readonly size: number;
  analyze(bytes: Uint8Array, options: AnalyzeOptions): Promise<AnalyzeResult>;
  close(): Promise<void>;
}

/** Where results are remembered between runs (an EmbeddingCache), by sha256 of the file's bytes. */
export interface EmbeddingStore {
  get(sha256: string): CachedAnalysis | undefined;
  put(sha256: string, value: CachedAnalysis): Promise<void>;
}

export type ImageOutcome =
  | { path: string; status: 'face'; vector: Float32Array; modelId: string; cached: boolean }
  | { path: string; status: 'no_face'; cached: boolean }
  | { path: string; status: 'error'; reason: string };

export interface EmbedProgress {
  total: number;
  done: number;
  fromCache: number;
  failures: number;
}

export interface EmbedImagesOptions {
  /** Starts the pool; called only when some image is not in the cache. */
  openPool: () => Promise<EvalVisionPool>;
  store?: EmbeddingStore;
  onProgress?: (progress: EmbedProgress) => void;
}

export interface EmbedImagesResult {
  outcomes: ImageOutcome[];
  /** Images the engine analysed in this run (0 when everything came from the cache). */
  engineCalls: number;
  /** The model id of the embeddings (of the running engine when it ran); null when no face was found. */
  modelId: string | null;
}

const ANALYZE_OPTIONS: AnalyzeOptions = { embed: 'largest', liveness: false };

/** Runs fn over items with at most `concurrency` in flight, in index order of start. */
async function forEachConcurrent<T>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await fn(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, run));
}

function describeError(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  const message = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' ? `${code}: ${message}` : message;
}

/**
 * The largest face's embedding of each image, from the store when it has the file's hash, else from
 * the pool (pool.size × 2 images in flight so every worker stays busy). Results are stored as they
 * arrive, so an interrupted run keeps what it did. When the store's entries do not name the model
 * in their key and the engine turns out to produce another model id, those entries are redone.
 */
export async function embedImages(paths: readonly string[], options: EmbedImagesOptions): Promise<EmbedImagesResult> {
  const outcomes: ImageOutcome[] = new Array(paths.length);
  const progress: EmbedProgress = { total: paths.length, done: 0, fromCache: 0, failures: 0 };
  const report = (): void => options.onProgress?.({ ...progress });
  const misses: number[] = [];

  // Hashing reads every file: cheap next to the engine, and it is what makes a hit trustworthy.
  await forEachConcurrent(paths, 8, async (path, i) => {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (err) {
      outcomes[i] = { path, status: 'error', reason: `cannot read the file (${describeError(err)})` };
      progress.done++;
      progress.failures++;
      return;
    }
    const hit = options.store?.get(sha256Hex(bytes));
    if (!hit) {
      misses.push(i);
      return;
    }
    outcomes[i] = hit.face ? { path, status: 'face', vector: hit.vector, modelId: hit.modelId, cached: true } : { path, status: 'no_face', cached: true };
    progress.done++;
    progress.fromCache++;
    if (!hit.face) progress.failures++;
  });
  report();

  let pool: EvalVisionPool | undefined;
  let engineCalls = 0;
  let liveModelId: string | null = null;
  const analyzeAll = async (indices: number[]): Promise<void> => {
    if (indices.length === 0) return;
    pool ??= await options.openPool();
    const activePool = pool;
    await forEachConcurrent(indices.sort((a, b) => a - b), activePool.size * 2, async (i) => {
      const path = paths[i]!;
      let outcome: ImageOutcome;
      try {
        const bytes = await readFile(path);
        const sha256 = sha256Hex(bytes);
        engineCalls++;
        const result = await activePool.analyze(bytes, ANALYZE_OPTIONS);
        const embedding = result.faces.find((f) => f.embedding)?.embedding;
        if (embedding) {
          liveModelId ??= embedding.modelId;
          outcome = { path, status: 'face', vector: embedding.vector, modelId: embedding.modelId, cached: false };
          await options.store?.put(sha256, { face: true, modelId: embedding.modelId, vector: embedding.vector });
        } else {
          outcome = { path, status: 'no_face', cached: false };
          await options.store?.put(sha256, { face: false });
        }
      } catch (err) {
        outcome = { path, status: 'error', reason: describeError(err) };
      }
      const before = outcomes[i];
      outcomes[i] = outcome;
      if (!before) progress.done++;
      else if (before.status === 'face' && before.cached) progress.fromCache--;
      if (outcome.status !== 'face') progress.failures++;
      report();
    });
  };

  try {
    await analyzeAll(misses);
    if (liveModelId !== null) {
      const stale = outcomes.flatMap((o, i) => (o.status === 'face' && o.cached && o.modelId !== liveModelId ? [i] : []));
      await analyzeAll(stale);
    }
  } finally {
    await pool?.close();
  }
  const firstFace = outcomes.find((o) => o.status === 'face');
  return { outcomes, engineCalls, modelId: liveModelId ?? (firstFace?.status === 'face' ? firstFace.modelId : null) };
}

// ───────────────────────────── datasets ─────────────────────────────

export interface DatasetImage {
  identity: string;
  path: string;
}

const IMAGE_FILE = /\.(jpe?g|png|webp)$/i;
const byFileName = new Intl.Collator('en', { numeric: true }).compare;

/**
 * A labelled folder: one sub-folder per identity holding its images (jpg, png, webp), listed in
 * file-name order (numbers compared as numbers: 2.jpg before 10.jpg). Files at the top level and
 * hidden folders are ignored.
 */
export async function listDataset(dir: string): Promise<DatasetImage[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const identities = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort(byFileName);
  const images: DatasetImage[] = [];
  for (const identity of identities) {
    const files = (await readdir(join(dir, identity), { withFileTypes: true }))
      .filter((e) => e.isFile() && IMAGE_FILE.test(e.name))
      .map((e) => e.name)
      .sort(byFileName);
    for (const file of files) images.push({ identity, path: join(dir, identity, file) });
  }
  return images;
}

// ───────────────────────────── reports ─────────────────────────────

export interface Failure {
  path: string;
  reason: string;
}

/** The evaluation's results; `toJsonReport` turns it into the documented JSON. */
export interface EvaluationReport {
  mode: 'dataset' | 'lfw';
  modelId: string | null;
  counts: {
    identities: number;
    images: number;
    embedded: number;
    genuinePairs: number;
    impostorPairs: number;
    fromCache: number;
    engineCalls: number;
  };
  failures: Failure[];
  auc: number | null;
  /** Best-threshold accuracy over all scores, and its cross-validated estimate. */
  accuracy: { threshold: number; accuracy: number; cv: CrossValidatedAccuracy | null; balanced: boolean } | null;
  tarAtFar: Record<'0.01' | '0.001', TarAtFar | null>;
  rank1: { rate: number; correct: number; probes: number; galleryIdentities: number } | null;
  openSet: {
    /** Rates at the configured search threshold. */
    atConfig: OpenSetRates;
    /** The threshold that holds unknown accepts to 1%, with its rates. */
    atUnknown1pct: OpenSetRates;
    heldOutIdentities: string[];
  } | null;
  thresholds: ThresholdRecommendation | null;
  lfw: CrossValidatedAccuracy | null;
}

function failuresOf(outcomes: readonly ImageOutcome[]): Failure[] {
  return outcomes.flatMap((o) => (o.status === 'face' ? [] : [{ path: o.path, reason: o.status === 'no_face' ? 'no face found' : o.reason }]));
}

function verification(genuine: Float64Array, impostor: Float64Array, balanced: boolean) {
  const haveBoth = genuine.length > 0 && impostor.length > 0;
  const best = haveBoth ? bestThresholdAccuracy(genuine, impostor, { balanced }) : null;
  const folds = Math.min(10, genuine.length, impostor.length);
  const cv = folds >= 2 ? crossValidatedAccuracy(genuine, impostor, { folds, balanced }) : null;
  return {
    auc: haveBoth ? rocAuc(genuine, impostor) : null,
    best,
    accuracy: best ? { threshold: best.threshold, accuracy: best.accuracy, cv, balanced } : null,
    tarAtFar: {
      '0.01': haveBoth ? tarAtFar(genuine, impostor, 0.01) : null,
      '0.001': haveBoth ? tarAtFar(genuine, impostor, 0.001) : null,
    },
  };
}

export interface DatasetEvaluationOptions {
  /** The configured one-to-many search threshold, at which open-set rates are reported. */
  searchThreshold: number;
  /** Share of identities left out of the open-set gallery. */
  heldOutFraction?: number;
}

/**
 * Measures a labelled dataset from its embeddings: all genuine and impostor pairs (ROC AUC, balanced
 * best-threshold accuracy with 10-fold CV, TAR at FAR 1% and 0.1%); rank-1 with each identity's first
 * image with a face as its gallery template and the rest as probes; open set with a deterministic
 * fifth of identities left out of the gallery; and recommended thresholds.
 */
export function evaluateDataset(
  images: readonly DatasetImage[],
  embedded: EmbedImagesResult,
  options: DatasetEvaluationOptions,
): EvaluationReport {
  const samples: LabelledVector[] = [];
  embedded.outcomes.forEach((o, i) => {
    if (o.status === 'face') samples.push({ identity: images[i]!.identity, vector: o.vector, modelId: o.modelId });
  });
  const modelId = embedded.modelId;
  const { genuine, impostor } = modelId ? allPairScores(samples, modelId) : { genuine: new Float64Array(), impostor: new Float64Array() };
  // Impostor pairs far outnumber genuine ones: plain accuracy would favour rejecting everything.
  const v = verification(genuine, impostor, true);

  // The first sample of an identity is its first image with a face, as images are in file-name order.
  const firstOf = new Map<string, LabelledVector>();
  for (const s of samples) if (!firstOf.has(s.identity)) firstOf.set(s.identity, s);
  const gallerySet = new Set(firstOf.values());
  const probes = samples.filter((s) => !gallerySet.has(s));
  let rank1: EvaluationReport['rank1'] = null;
  if (modelId && probes.length > 0) {
    const result = identify([...firstOf.values()], probes, modelId);
    rank1 = { rate: result.rank1, correct: result.correct, probes: result.knownProbes, galleryIdentities: firstOf.size };
  }

  let openSet: EvaluationReport['openSet'] = null;
  const heldOut = selectHeldOutIdentities([...firstOf.keys()], options.heldOutFraction ?? 0.2);
  if (modelId && heldOut.size > 0) {
    const gallery = [...firstOf.values()].filter((s) => !heldOut.has(s.identity));
    const openProbes = samples.filter((s) => heldOut.has(s.identity) || !gallerySet.has(s));
    const result = identify(gallery, openProbes, modelId);
    if (result.knownProbes > 0) {
      openSet = {
        atConfig: openSetRates(result.probes, options.searchThreshold),
        atUnknown1pct: openSetThreshold(result.probes, 0.01),
        heldOutIdentities: [...heldOut].sort(byFileName),
      };
    }
  }

  const thresholds =
    v.best && v.tarAtFar['0.001']
      ? recommendThresholds({ bestAccuracy: v.best, tarAtFar0001: v.tarAtFar['0.001'], impostorCount: impostor.length, openSet: openSet?.atUnknown1pct ?? null })
      : null;
  return {
    mode: 'dataset',
    modelId,
    counts: {
      identities: new Set(images.map((i) => i.identity)).size,
      images: images.length,
      embedded: samples.length,
      genuinePairs: genuine.length,
      impostorPairs: impostor.length,
      fromCache: embedded.outcomes.filter((o) => o.status !== 'error' && o.cached).length,
      engineCalls: embedded.engineCalls,
    },
    failures: failuresOf(embedded.outcomes),
    auc: v.auc,
    accuracy: v.accuracy,
    tarAtFar: v.tarAtFar,
    rank1,
    openSet,
    thresholds,
    lfw: null,
  };
}

/** The distinct image files an LFW pairs list needs, in first-use order, as paths under imagesDir. */
export function lfwImageFiles(pairs: LfwPairs, imagesDir: string): string[] {
  const seen = new Set<string>();
  for (const pair of pairs.pairs) {
    seen.add(join(imagesDir, lfwImagePath(pair.first)));
    seen.add(join(imagesDir, lfwImagePath(pair.second)));
  }
  return [...seen];
}

/** The score given to a pair with an image whose face was not found: the lowest cosine, so the pair is rejected. */
export const MISSING_FACE_SCORE = -1;

/**
 * The LFW protocol over the embeddings of lfwImageFiles(pairs, imagesDir): 10-fold accuracy with
 * each fold's threshold chosen on the other nine, plus AUC and TAR at FAR over the pairs. A pair with
 * a missing face counts as a rejection (scored MISSING_FACE_SCORE), as an operational system would.
 */
export function evaluateLfw(pairs: LfwPairs, imagesDir: string, embedded: EmbedImagesResult): EvaluationReport {
  const files = lfwImageFiles(pairs, imagesDir);
  const byPath = new Map<string, ImageOutcome>();
  files.forEach((f, i) => byPath.set(f, embedded.outcomes[i]!));
  const modelId = embedded.modelId;
  const vectorOf = (ref: LfwPairs['pairs'][number]['first']): Float32Array | undefined => {
    const o = byPath.get(join(imagesDir, lfwImagePath(ref)));
    return o?.status === 'face' && o.modelId === modelId ? o.vector : undefined;
  };
  const scores = new Float64Array(pairs.pairs.length);
  const genuine: number[] = [];
  const impostor: number[] = [];
  pairs.pairs.forEach((pair, i) => {
    const a = vectorOf(pair.first);
    const b = vectorOf(pair.second);
    let score = MISSING_FACE_SCORE;
    if (a && b) {
      score = 0;
      for (let d = 0; d < a.length; d++) score += a[d]! * b[d]!;
    }
    scores[i] = score;
    (pair.same ? genuine : impostor).push(score);
  });
  const v = verification(Float64Array.from(genuine), Float64Array.from(impostor), false);
  const lfw = pairs.folds >= 2 ? lfwAccuracy(pairs, scores) : null;
  const thresholds =
    v.best && v.tarAtFar['0.001'] ? recommendThresholds({ bestAccuracy: v.best, tarAtFar0001: v.tarAtFar['0.001'], impostorCount: impostor.length }) : null;
  const names = new Set(pairs.pairs.flatMap((p) => [p.first.name, p.second.name]));
  return {
    mode: 'lfw',
    modelId,
    counts: {
      identities: names.size,
      images: files.length,
      embedded: embedded.outcomes.filter((o) => o.status === 'face').length,
      genuinePairs: genuine.length,
      impostorPairs: impostor.length,
      fromCache: embedded.outcomes.filter((o) => o.status !== 'error' && o.cached).length,
      engineCalls: embedded.engineCalls,
    },
    failures: failuresOf(embedded.outcomes),
    auc: v.auc,
    accuracy: v.accuracy ? { ...v.accuracy, cv: lfw } : null,
    tarAtFar: v.tarAtFar,
    rank1: null,
    openSet: null,
    thresholds,
    lfw,
  };
}

// ───────────────────────────── JSON ─────────────────────────────

/** JSON has no ±∞ or NaN: they become null. */
function finite(x: number | null | undefined): number | null {
  return x === null || x === undefined || !Number.isFinite(x) ? null : x;
}

interface TarAtFarJson {
  tar: number | null;
  threshold: number | null;
  achieved_far: number | null;
}

interface OpenSetAtJson {
  unknown_accept: number | null;
  known_accept: number | null;
  known_misidentified: number | null;
}

/** The JSON `facegate eval --json` writes. Numbers that are not finite (no data, ±∞) are null. */
export interface EvaluationJson {
  mode: 'dataset' | 'lfw';
  model_id: string | null;
  counts: {
    identities: number;
    images: number;
    embedded: number;
    failures: number;
    genuine_pairs: number;
    impostor_pairs: number;
    from_cache: number;
    engine_calls: number;
  };
  auc: number | null;
  /** Cross-validated mean ± std, and the best accuracy over all scores with its threshold. */
  accuracy: { mean: number | null; std: number | null; folds: number; best: number | null; threshold: number | null; balanced: boolean } | null;
  tar_at_far: { '0.01': TarAtFarJson | null; '0.001': TarAtFarJson | null };
  rank1: number | null;
  rank1_detail: { correct: number; probes: number; gallery_identities: number } | null;
  /** unknown_accept and known_accept at the configured search threshold; threshold = the one holding unknowns to 1%. */
  open_set:
    | (OpenSetAtJson & {
        threshold: number | null;
        config_threshold: number;
        at_threshold: OpenSetAtJson;
        unknown_probes: number;
        known_probes: number;
        held_out_identities: string[];
      })
    | null;
  thresholds: { verify: number | null; search: number | null; verify_basis: string; search_basis: string | null } | null;
  failures: Failure[];
  lfw: { mean: number | null; std: number | null; folds: { accuracy: number; threshold: number | null }[] } | null;
}

/**
 * The report as the documented JSON: auc, accuracy, tar_at_far {"0.01", "0.001"}, rank1,
 * open_set {unknown_accept, known_accept, threshold}, thresholds {verify, search}, failures, lfw,
 * plus model id, counts and details; `extra` adds keys (engine, source, timings).
 */
export function toJsonReport(report: EvaluationReport, extra: Record<string, unknown> = {}): EvaluationJson & Record<string, unknown> {
  const tar = (t: TarAtFar | null): TarAtFarJson | null => (t ? { tar: finite(t.tar), threshold: finite(t.threshold), achieved_far: finite(t.achievedFar) } : null);
  const os = report.openSet;
  return {
    mode: report.mode,
    ...extra,
    model_id: report.modelId,
    counts: {
      identities: report.counts.identities,
      images: report.counts.images,
      embedded: report.counts.embedded,
      failures: report.failures.length,
      genuine_pairs: report.counts.genuinePairs,
      impostor_pairs: report.counts.impostorPairs,
      from_cache: report.counts.fromCache,
      engine_calls: report.counts.engineCalls,
    },
    auc: finite(report.auc),
    accuracy: report.accuracy
      ? {
          mean: finite(report.accuracy.cv?.mean),
          std: finite(report.accuracy.cv?.std),
          folds: report.accuracy.cv?.folds.length ?? 0,
          best: finite(report.accuracy.accuracy),
          threshold: finite(report.accuracy.threshold),
          balanced: report.accuracy.balanced,
        }
      : null,
    tar_at_far: { '0.01': tar(report.tarAtFar['0.01']), '0.001': tar(report.tarAtFar['0.001']) },
    rank1: report.rank1 ? finite(report.rank1.rate) : null,
    rank1_detail: report.rank1
      ? { correct: report.rank1.correct, probes: report.rank1.probes, gallery_identities: report.rank1.galleryIdentities }
      : null,
    open_set: os
      ? {
          unknown_accept: finite(os.atConfig.unknownAccept),
          known_accept: finite(os.atConfig.knownAccept),
          threshold: finite(os.atUnknown1pct.threshold),
          config_threshold: os.atConfig.threshold,
          known_misidentified: finite(os.atConfig.knownMisidentified),
          at_threshold: {
            unknown_accept: finite(os.atUnknown1pct.unknownAccept),
            known_accept: finite(os.atUnknown1pct.knownAccept),
            known_misidentified: finite(os.atUnknown1pct.knownMisidentified),
          },
          unknown_probes: os.atConfig.unknowns,
          known_probes: os.atConfig.knowns,
          held_out_identities: os.heldOutIdentities,
        }
      : null,
    thresholds: report.thresholds
      ? {
          verify: finite(report.thresholds.verify),
          search: finite(report.thresholds.search),
          verify_basis: report.thresholds.verifyBasis,
          search_basis: report.thresholds.searchBasis,
        }
      : null,
    failures: report.failures,
    lfw: report.lfw
      ? { mean: finite(report.lfw.mean), std: finite(report.lfw.std), folds: report.lfw.folds.map((f) => ({ accuracy: f.accuracy, threshold: finite(f.threshold) })) }
      : null,
  };
}
