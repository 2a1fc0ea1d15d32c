import { AppError } from './errors.ts';
import { seededRandom as mulberry32 } from './random.ts';

/**
 * Recognition metrics: similarity of embeddings, verification (ROC, AUC, accuracy, TAR at FAR),
 * closed-set identification (rank-1), open-set search, the LFW pairs protocol, and threshold
 * recommendations. Pure functions over plain arrays; scores are similarities (higher = more alike)
 * and a pair or probe is accepted when its score is >= the threshold.
 */

/** A vector and the model that made it; vectors of different models are never compared. */
export interface TaggedVector {
  vector: Float32Array;
  modelId: string;
}

/** An embedding with the identity it belongs to (a gallery template or a probe). */
export interface LabelledVector extends TaggedVector {
  identity: string;
}

/** Two vectors from different models (or of different lengths) were about to be compared. */
export class EmbeddingMismatchError extends AppError {
  constructor(message: string) {
    super('embedding_model_mismatch', 409, message);
    this.name = 'EmbeddingMismatchError';
  }
}

// ───────────────────────────── similarity ─────────────────────────────

/** Dot product; for L2-normalised vectors this is their cosine similarity. */
export function dot(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new EmbeddingMismatchError(`cannot compare vectors of ${a.length} and ${b.length} dimensions`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

/** Returns a unit-length copy (a zero vector stays zero). */
export function l2Normalize(v: ArrayLike<number>): Float32Array {
  let sumSq = 0;
  for (let i = 0; i < v.length; i++) sumSq += v[i]! * v[i]!;
  const inv = sumSq > 0 ? 1 / Math.sqrt(sumSq) : 0;
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i]! * inv;
  return out;
}

/**
 * Cosine similarity of two L2-normalised embeddings (their dot product). Refuses embeddings of
 * different model ids or dimensions, and, when modelId is given, of any other model.
 */
export function cosineSimilarity(a: TaggedVector, b: TaggedVector, modelId?: string): number {
  if (a.modelId !== b.modelId) {
    throw new EmbeddingMismatchError(`cannot compare embeddings of model ${a.modelId} and model ${b.modelId}`);
  }
  if (modelId !== undefined && a.modelId !== modelId) {
    throw new EmbeddingMismatchError(`expected embeddings of model ${modelId}, got ${a.modelId}`);
  }
  return dot(a.vector, b.vector);
}

/** Throws unless every vector is of modelId and all have one length; returns that length. */
export function assertSameModel(vectors: readonly TaggedVector[], modelId: string): number {
  const dims = vectors[0]?.vector.length ?? 0;
  for (const v of vectors) {
    if (v.modelId !== modelId) throw new EmbeddingMismatchError(`expected embeddings of model ${modelId}, got ${v.modelId}`);
    if (v.vector.length !== dims) throw new EmbeddingMismatchError(`embeddings of ${dims} and ${v.vector.length} dimensions mixed`);
  }
  return dims;
}

/** Genuine (same identity) and impostor (different identities) scores. */
export interface PairScores {
  genuine: Float64Array;
  impostor: Float64Array;
}

/** Scores every unordered pair of samples once: O(n²·dims), packed so the inner loop is a flat dot product. */
export function allPairScores(samples: readonly LabelledVector[], modelId: string): PairScores {
  const dims = assertSameModel(samples, modelId);
  const n = samples.length;
  const packed = new Float32Array(n * dims);
  samples.forEach((s, i) => packed.set(s.vector, i * dims));
  let genuineCount = 0;
  const byIdentity = new Map<string, number>();
  for (const s of samples) byIdentity.set(s.identity, (byIdentity.get(s.identity) ?? 0) + 1);
  for (const c of byIdentity.values()) genuineCount += (c * (c - 1)) / 2;
  const genuine = new Float64Array(genuineCount);
  const impostor = new Float64Array((n * (n - 1)) / 2 - genuineCount);
  let g = 0;
  let m = 0;
  for (let i = 0; i < n; i++) {
    const oi = i * dims;
    const identity = samples[i]!.identity;
    for (let j = i + 1; j < n; j++) {
      const oj = j * dims;
      // Four partial sums: independent chains let the JIT overlap the multiply-adds.
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let d = 0;
      for (; d + 3 < dims; d += 4) {
        s0 += packed[oi + d]! * packed[oj + d]!;
        s1 += packed[oi + d + 1]! * packed[oj + d + 1]!;
        s2 += packed[oi + d + 2]! * packed[oj + d + 2]!;
        s3 += packed[oi + d + 3]! * packed[oj + d + 3]!;
      }
      for (; d < dims; d++) s0 += packed[oi + d]! * packed[oj + d]!;
      const sum = s0 + s1 + s2 + s3;
      if (samples[j]!.identity === identity) genuine[g++] = sum;
      else impostor[m++] = sum;
    }
  }
  return { genuine, impostor };
}

// ───────────────────────────── sorting helpers ─────────────────────────────

function sortedAscending(scores: ArrayLike<number>, what: string): Float64Array {
  const out = Float64Array.from(scores);
  for (let i = 0; i < out.length; i++) {
    if (Number.isNaN(out[i]!)) throw new RangeError(`${what} score ${i} is NaN`);
  }
  return out.sort();
}

/** Index of the first element >= value in an ascending array. */
function lowerBound(sorted: Float64Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first element > value in an ascending array. */
function upperBound(sorted: Float64Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** How many of an ascending array are accepted (>=) at a threshold. */
function acceptedCount(sorted: Float64Array, threshold: number): number {
  return sorted.length - lowerBound(sorted, threshold);
}

const float64 = new Float64Array(1);
const bits64 = new BigInt64Array(float64.buffer);

/** The smallest double greater than x. */
export function nextUp(x: number): number {
  if (Number.isNaN(x) || x === Infinity) return x;
  if (x === 0) return Number.MIN_VALUE;
  float64[0] = x;
  bits64[0] = x > 0 ? bits64[0]! + 1n : bits64[0]! - 1n;
  return float64[0]!;
}

function ratio(count: number, total: number): number {
  return total === 0 ? Number.NaN : count / total;
}

// ───────────────────────────── ROC and AUC ─────────────────────────────

/** One operating point: at this threshold, the share of impostors (far) and genuines (tar) accepted. */
export interface RocPoint {
  threshold: number;
  far: number;
  tar: number;
}

/**
 * The ROC curve: one point per distinct score, from (threshold +∞, 0, 0) down to the lowest score
 * (1, 1). Tied scores move both rates in one step, so the trapezoid area under this curve equals
 * the Mann–Whitney AUC (ties counted one half).
 */
export function rocCurve(genuine: ArrayLike<number>, impostor: ArrayLike<number>): RocPoint[] {
  const g = sortedAscending(genuine, 'genuine');
  const m = sortedAscending(impostor, 'impostor');
  const points: RocPoint[] = [{ threshold: Infinity, far: 0, tar: 0 }];
  let gi = g.length;
  let mi = m.length;
  // Walk both arrays from the top, one distinct value at a time.
  while (gi > 0 || mi > 0) {
    const value = Math.max(gi > 0 ? g[gi - 1]! : -Infinity, mi > 0 ? m[mi - 1]! : -Infinity);
    while (gi > 0 && g[gi - 1] === value) gi--;
    while (mi > 0 && m[mi - 1] === value) mi--;
    points.push({ threshold: value, far: ratio(m.length - mi, m.length), tar: ratio(g.length - gi, g.length) });
  }
  return points;
}

/** Trapezoid area under ROC points ordered by rising far. */
export function areaUnderCurve(points: readonly RocPoint[]): number {
  let area = 0;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1]!;
    const b = points[i]!;
    area += ((b.far - a.far) * (b.tar + a.tar)) / 2;
  }
  return area;
}

/**
 * ROC AUC as the Mann–Whitney statistic: the probability that a random genuine pair scores above a
 * random impostor pair, a tie counting one half. O(n log n).
 */
export function rocAuc(genuine: ArrayLike<number>, impostor: ArrayLike<number>): number {
  const g = sortedAscending(genuine, 'genuine');
  const m = sortedAscending(impostor, 'impostor');
  if (g.length === 0 || m.length === 0) return Number.NaN;
  let below = 0; // impostors strictly below the current genuine score
  let wins = 0;
  for (let i = 0; i < g.length; ) {
    const value = g[i]!;
    let j = i;
    while (j < g.length && g[j] === value) j++;
    while (below < m.length && m[below]! < value) below++;
    let equal = below;
    while (equal < m.length && m[equal] === value) equal++;
    wins += (j - i) * (below + (equal - below) / 2);
    i = j;
  }
  return wins / (g.length * m.length);
}

// ───────────────────────────── accuracy ─────────────────────────────

export interface AccuracyOptions {
  /**
   * Weigh both classes equally: accuracy = (TAR + true-reject rate) / 2. Use it when impostor pairs
   * outnumber genuine ones (all pairs of a dataset), where plain accuracy rewards rejecting everything.
   */
  balanced?: boolean;
}

export interface ThresholdAccuracy {
  threshold: number;
  accuracy: number;
  /** Share of genuine scores accepted. */
  tar: number;
  /** Share of impostor scores accepted. */
  far: number;
}

function accuracyOf(tp: number, nG: number, tn: number, nI: number, balanced: boolean): number {
  if (!balanced) return ratio(tp + tn, nG + nI);
  if (nG === 0) return ratio(tn, nI);
  if (nI === 0) return ratio(tp, nG);
  return (tp / nG + tn / nI) / 2;
}

/** Accuracy when scores >= threshold are called "same". */
export function accuracyAt(
  genuine: ArrayLike<number>,
  impostor: ArrayLike<number>,
  threshold: number,
  options: AccuracyOptions = {},
): ThresholdAccuracy {
  let tp = 0;
  for (let i = 0; i < genuine.length; i++) if (genuine[i]! >= threshold) tp++;
  let fp = 0;
  for (let i = 0; i < impostor.length; i++) if (impostor[i]! >= threshold) fp++;
  return {
    threshold,
    accuracy: accuracyOf(tp, genuine.length, impostor.length - fp, impostor.length, options.balanced === true),
    tar: ratio(tp, genuine.length),
    far: ratio(fp, impostor.length),
  };
}

function bestOfSorted(g: Float64Array, m: Float64Array, balanced: boolean): ThresholdAccuracy {
  if (g.length + m.length === 0) throw new RangeError('no scores to choose a threshold on');
  // Walks the candidates from the strictest down; called twice (find the best, then pick among ties)
  // so that millions of pairs need no candidate list.
  const walk = (visit: (threshold: number, tp: number, fp: number, accuracy: number) => void): void => {
    const emit = (threshold: number, tp: number, fp: number): void =>
      visit(threshold, tp, fp, accuracyOf(tp, g.length, m.length - fp, m.length, balanced));
    emit(Infinity, 0, 0);
    let gi = g.length;
    let mi = m.length;
    while (gi > 0 || mi > 0) {
      const value = Math.max(gi > 0 ? g[gi - 1]! : -Infinity, mi > 0 ? m[mi - 1]! : -Infinity);
      while (gi > 0 && g[gi - 1] === value) gi--;
      while (mi > 0 && m[mi - 1] === value) mi--;
      const next = Math.max(gi > 0 ? g[gi - 1]! : -Infinity, mi > 0 ? m[mi - 1]! : -Infinity);
      // Any threshold in (next, value] accepts the same scores; the midpoint generalises best.
      emit(next === -Infinity ? value : (value + next) / 2, g.length - gi, m.length - mi);
    }
  };
  let best = -Infinity;
  let ties = 0;
  walk((_t, _tp, _fp, accuracy) => {
    if (accuracy > best) {
      best = accuracy;
      ties = 1;
    } else if (accuracy === best) {
      ties++;
    }
  });
  const wanted = Math.floor((ties - 1) / 2);
  let seen = 0;
  let chosen: ThresholdAccuracy | undefined;
  walk((threshold, tp, fp, accuracy) => {
    if (accuracy === best && seen++ === wanted) chosen = { threshold, accuracy, tar: ratio(tp, g.length), far: ratio(fp, m.length) };
  });
  return chosen!;
}

/**
 * The threshold with the highest accuracy. Candidates are the midpoints between consecutive distinct
 * scores (plus +∞, accept nothing, and the lowest score, accept all); when several give the same
 * accuracy, the median of them (in threshold order) is taken, so the choice is deterministic and
 * central rather than at the edge of a plateau.
 */
export function bestThresholdAccuracy(
  genuine: ArrayLike<number>,
  impostor: ArrayLike<number>,
  options: AccuracyOptions = {},
): ThresholdAccuracy {
  return bestOfSorted(sortedAscending(genuine, 'genuine'), sortedAscending(impostor, 'impostor'), options.balanced === true);
}

function shuffledIndices(count: number, seed: number): Int32Array {
  const order = new Int32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  const random = mulberry32(seed);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/**
 * Deterministic fold of each of count items: a seeded shuffle dealt round-robin, so folds differ in
 * size by at most one and the same (count, folds, seed) always gives the same assignment.
 */
export function assignFolds(count: number, folds: number, seed = 0): Int32Array {
  if (!Number.isInteger(folds) || folds < 1) throw new RangeError(`folds must be a positive integer, got ${folds}`);
  const order = shuffledIndices(count, seed);
  const fold = new Int32Array(count);
  for (let k = 0; k < count; k++) fold[order[k]!] = k % folds;
  return fold;
}

export interface FoldAccuracy {
  fold: number;
  /** Chosen on the other folds. */
  threshold: number;
  /** Measured on this fold. */
  accuracy: number;
  genuine: number;
  impostor: number;
}

export interface CrossValidatedAccuracy {
  mean: number;
  /** Population standard deviation over folds (ddof 0), as the usual LFW evaluation reports it. */
  std: number;
  folds: FoldAccuracy[];
}

function meanStd(values: readonly number[]): { mean: number; std: number } {
  if (values.length === 0) return { mean: Number.NaN, std: Number.NaN };
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length;
  return { mean, std: Math.sqrt(variance) };
}

/** Scores of each fold, each sorted ascending. */
function sortedByFold(scores: ArrayLike<number>, fold: ArrayLike<number>, folds: number, what: string): Float64Array[] {
  const counts = new Int32Array(folds);
  for (let i = 0; i < fold.length; i++) {
    const k = fold[i]!;
    if (!Number.isInteger(k) || k < 0 || k >= folds) throw new RangeError(`${what} score ${i} has fold ${k}, outside 0..${folds - 1}`);
    counts[k]!++;
  }
  const out = Array.from(counts, (n) => new Float64Array(n));
  const filled = new Int32Array(folds);
  for (let i = 0; i < scores.length; i++) {
    const k = fold[i]!;
    const value = scores[i]!;
    if (Number.isNaN(value)) throw new RangeError(`${what} score ${i} is NaN`);
    out[k]![filled[k]!++] = value;
  }
  for (const a of out) a.sort();
  return out;
}

/** all minus part, as multisets of ascending arrays (part is contained in all). */
function sortedDifference(all: Float64Array, part: Float64Array): Float64Array {
  const out = new Float64Array(all.length - part.length);
  let j = 0;
  let o = 0;
  for (let i = 0; i < all.length; i++) {
    if (j < part.length && all[i] === part[j]) j++;
    else out[o++] = all[i]!;
  }
  return out;
}

/**
 * k-fold accuracy with given folds: for each fold the best-accuracy threshold is chosen on the
 * other folds and applied to it. Folds with no score at all are skipped. Sorts once, so it stays
 * fast on millions of pairs.
 */
export function kFoldAccuracy(
  genuine: ArrayLike<number>,
  impostor: ArrayLike<number>,
  genuineFold: ArrayLike<number>,
  impostorFold: ArrayLike<number>,
  folds: number,
  options: AccuracyOptions = {},
): CrossValidatedAccuracy {
  if (genuineFold.length !== genuine.length || impostorFold.length !== impostor.length) {
    throw new RangeError('every score needs a fold');
  }
  const balanced = options.balanced === true;
  const gByFold = sortedByFold(genuine, genuineFold, folds, 'genuine');
  const mByFold = sortedByFold(impostor, impostorFold, folds, 'impostor');
  const gAll = sortedAscending(genuine, 'genuine');
  const mAll = sortedAscending(impostor, 'impostor');
  const results: FoldAccuracy[] = [];
  for (let k = 0; k < folds; k++) {
    const testG = gByFold[k]!;
    const testM = mByFold[k]!;
    if (testG.length + testM.length === 0) continue;
    const { threshold } = bestOfSorted(sortedDifference(gAll, testG), sortedDifference(mAll, testM), balanced);
    const tp = acceptedCount(testG, threshold);
    const tn = testM.length - acceptedCount(testM, threshold);
    results.push({ fold: k, threshold, accuracy: accuracyOf(tp, testG.length, tn, testM.length, balanced), genuine: testG.length, impostor: testM.length });
  }
  return { ...meanStd(results.map((r) => r.accuracy)), folds: results };
}

/** k-fold cross-validated accuracy with deterministic, class-stratified folds (see assignFolds). */
export function crossValidatedAccuracy(
  genuine: ArrayLike<number>,
  impostor: ArrayLike<number>,
  options: AccuracyOptions & { folds?: number; seed?: number } = {},
): CrossValidatedAccuracy {
  const folds = options.folds ?? 10;
  const seed = options.seed ?? 0;
  return kFoldAccuracy(genuine, impostor, assignFolds(genuine.length, folds, seed), assignFolds(impostor.length, folds, seed + 1), folds, options);
}

// ───────────────────────────── TAR at FAR ─────────────────────────────

export interface TarAtFar {
  /** The false accept rate asked for. */
  far: number;
  threshold: number;
  tar: number;
  /** The false accept rate the threshold gives on these scores (<= far). */
  achievedFar: number;
}

/**
 * The smallest observed score t at which at most floor(rate · negatives) of the negatives are >= t.
 * Acceptance is by value, so tied negatives are accepted or rejected together: when a tie would
 * exceed the allowance the threshold moves above the whole tie (the achieved rate may then be
 * below the target). When no observed score qualifies, the threshold is just above the highest
 * negative (nothing at or below it is accepted).
 */
function thresholdAtRate(negatives: Float64Array, others: Float64Array, rate: number): number {
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`a rate must be within 0..1, got ${rate}`);
  if (negatives.length === 0) throw new RangeError('no negative scores to hold a false accept rate on');
  const allowed = Math.floor(rate * negatives.length + 1e-9);
  if (allowed >= negatives.length) {
    return Math.min(negatives[0]!, others.length > 0 ? others[0]! : Infinity);
  }
  // The (allowed+1)-th highest negative must be rejected; everything above it may be accepted.
  const mustReject = negatives[negatives.length - 1 - allowed]!;
  const nextNegative = upperBound(negatives, mustReject);
  const nextOther = upperBound(others, mustReject);
  const candidate = Math.min(
    nextNegative < negatives.length ? negatives[nextNegative]! : Infinity,
    nextOther < others.length ? others[nextOther]! : Infinity,
  );
  return candidate === Infinity ? nextUp(mustReject) : candidate;
}

/**
 * True accept rate at a false accept rate, and the threshold achieving it: the smallest observed
 * score whose impostor accept rate is <= far (see thresholdAtRate for ties).
 */
export function tarAtFar(genuine: ArrayLike<number>, impostor: ArrayLike<number>, far: number): TarAtFar {
  const g = sortedAscending(genuine, 'genuine');
  const m = sortedAscending(impostor, 'impostor');
  const threshold = thresholdAtRate(m, g, far);
  return { far, threshold, tar: ratio(acceptedCount(g, threshold), g.length), achievedFar: ratio(acceptedCount(m, threshold), m.length) };
}

// ───────────────────────────── identification ─────────────────────────────

export interface ProbeResult {
  identity: string;
  /** The top-scoring gallery identity (the first in gallery order on a tie); null for an empty gallery. */
  bestIdentity: string | null;
  bestScore: number;
  inGallery: boolean;
  /** Its own identity scored strictly above every other gallery identity. */
  correct: boolean;
}

export interface IdentificationResult {
  /** correct / probes whose identity is in the gallery. */
  rank1: number;
  correct: number;
  knownProbes: number;
  probes: ProbeResult[];
}

/**
 * Closed-set identification: each probe is compared with every gallery template; an identity's score
 * is its best template's. A probe is correct when its own identity scores strictly highest: a tie
 * with another identity is not a correct identification. Probes of identities absent from the gallery
 * are reported (for open-set measures) but not counted in rank-1.
 */
export function identify(gallery: readonly LabelledVector[], probes: readonly LabelledVector[], modelId: string): IdentificationResult {
  assertSameModel([...gallery, ...probes], modelId);
  const galleryIdentities = new Set(gallery.map((t) => t.identity));
  const results: ProbeResult[] = probes.map((probe) => {
    const byIdentity = new Map<string, number>();
    for (const template of gallery) {
      const score = dot(probe.vector, template.vector);
      const prev = byIdentity.get(template.identity);
      if (prev === undefined || score > prev) byIdentity.set(template.identity, score);
    }
    let bestIdentity: string | null = null;
    let bestScore = -Infinity;
    let tiedWithOther = false;
    for (const [identity, score] of byIdentity) {
      if (score > bestScore) {
        bestIdentity = identity;
        bestScore = score;
        tiedWithOther = false;
      } else if (score === bestScore) {
        tiedWithOther = true;
      }
    }
    const inGallery = galleryIdentities.has(probe.identity);
    return { identity: probe.identity, bestIdentity, bestScore, inGallery, correct: inGallery && bestIdentity === probe.identity && !tiedWithOther };
  });
  const known = results.filter((r) => r.inGallery);
  const correct = known.filter((r) => r.correct).length;
  return { rank1: ratio(correct, known.length), correct, knownProbes: known.length, probes: results };
}

// ───────────────────────────── open set ─────────────────────────────

/** What open-set measures need of a probe's search against the gallery. */
export interface OpenSetProbe {
  bestScore: number;
  /** The probe's identity has a template in the gallery. */
  inGallery: boolean;
  /** The top-1 gallery identity is the probe's own. */
  correct: boolean;
}

export interface OpenSetRates {
  threshold: number;
  /** Share of probes not in the gallery whose best match reaches the threshold (wrongly named). */
  unknownAccept: number;
  /** Share of probes in the gallery named correctly: top-1 right and reaching the threshold. */
  knownAccept: number;
  /** Share of probes in the gallery named as someone else: top-1 wrong and reaching the threshold. */
  knownMisidentified: number;
  unknowns: number;
  knowns: number;
}

/** Open-set rates when a search names its top-1 only if its score is >= threshold. */
export function openSetRates(probes: readonly OpenSetProbe[], threshold: number): OpenSetRates {
  let unknowns = 0;
  let unknownAccepted = 0;
  let knowns = 0;
  let knownCorrect = 0;
  let knownWrong = 0;
  for (const p of probes) {
    const accepted = p.bestScore >= threshold;
    if (!p.inGallery) {
      unknowns++;
      if (accepted) unknownAccepted++;
    } else {
      knowns++;
      if (accepted && p.correct) knownCorrect++;
      if (accepted && !p.correct) knownWrong++;
    }
  }
  return {
    threshold,
    unknownAccept: ratio(unknownAccepted, unknowns),
    knownAccept: ratio(knownCorrect, knowns),
    knownMisidentified: ratio(knownWrong, knowns),
    unknowns,
    knowns,
  };
}

/**
 * The smallest observed best-score threshold that holds wrongly accepted unknowns to
 * <= maxUnknownAccept (ties as in tarAtFar), with the rates it gives. Needs at least one unknown probe.
 */
export function openSetThreshold(probes: readonly OpenSetProbe[], maxUnknownAccept = 0.01): OpenSetRates {
  const unknown = sortedAscending(
    probes.filter((p) => !p.inGallery).map((p) => p.bestScore),
    'unknown probe',
  );
  const known = sortedAscending(
    probes.filter((p) => p.inGallery).map((p) => p.bestScore),
    'known probe',
  );
  return openSetRates(probes, thresholdAtRate(unknown, known, maxUnknownAccept));
}

/**
 * Picks a deterministic share of identities to leave out of the gallery (open-set unknowns): the
 * sorted names are shuffled with a fixed seed, so the choice does not depend on listing order.
 * At least one identity is held out when there are two or more.
 */
export function selectHeldOutIdentities(identities: readonly string[], fraction = 0.2, seed = 0): Set<string> {
  const sorted = [...new Set(identities)].sort();
  if (sorted.length < 2) return new Set();
  const count = Math.min(sorted.length - 1, Math.max(1, Math.round(sorted.length * fraction)));
  const order = shuffledIndices(sorted.length, seed);
  return new Set(Array.from(order.subarray(0, count), (i) => sorted[i]!));
}

// ───────────────────────────── LFW protocol ─────────────────────────────

export interface LfwImageRef {
  name: string;
  /** The image number, 1-based as in the file name (Name_0001.jpg). */
  index: number;
}

export interface LfwPair {
  first: LfwImageRef;
  second: LfwImageRef;
  same: boolean;
  /** 0-based fold. */
  fold: number;
}

export interface LfwPairs {
  folds: number;
  pairsPerFold: number;
  pairs: LfwPair[];
}

export class LfwPairsFormatError extends Error {
  override name = 'LfwPairsFormatError';
}

/**
 * Parses LFW's pairs.txt: a header "folds pairsPerFold" (or a single count, as in pairsDevTest.txt,
 * meaning one fold), then per fold pairsPerFold matched lines "Name n1 n2" followed by pairsPerFold
 * mismatched lines "Name1 n1 Name2 n2". Blank lines are ignored.
 */
export function parseLfwPairs(text: string): LfwPairs {
  const lines = text
    .split(/\r?\n/)
    .map((line, i) => ({ number: i + 1, tokens: line.trim().split(/\s+/).filter(Boolean) }))
    .filter((l) => l.tokens.length > 0);
  const header = lines.shift();
  if (!header) throw new LfwPairsFormatError('the pairs file is empty');
  const counts = header.tokens.map(Number);
  if (counts.length < 1 || counts.length > 2 || counts.some((c) => !Number.isInteger(c) || c < 1)) {
    throw new LfwPairsFormatError(`line ${header.number}: expected "folds pairsPerFold", got "${header.tokens.join(' ')}"`);
  }
  const [folds, pairsPerFold] = counts.length === 2 ? [counts[0]!, counts[1]!] : [1, counts[0]!];
  if (lines.length !== folds * pairsPerFold * 2) {
    throw new LfwPairsFormatError(`expected ${folds * pairsPerFold * 2} pair lines (${folds} folds × ${pairsPerFold} matched + ${pairsPerFold} mismatched), found ${lines.length}`);
  }
  const index = (token: string, lineNumber: number): number => {
    const n = Number(token);
    if (!Number.isInteger(n) || n < 1) throw new LfwPairsFormatError(`line ${lineNumber}: "${token}" is not an image number`);
    return n;
  };
  const pairs = lines.map((line, i): LfwPair => {
    const fold = Math.floor(i / (2 * pairsPerFold));
    const same = i % (2 * pairsPerFold) < pairsPerFold;
    const t = line.tokens;
    if (same) {
      if (t.length !== 3) throw new LfwPairsFormatError(`line ${line.number}: a matched pair needs "Name n1 n2", got "${t.join(' ')}"`);
      return { first: { name: t[0]!, index: index(t[1]!, line.number) }, second: { name: t[0]!, index: index(t[2]!, line.number) }, same, fold };
    }
    if (t.length !== 4) throw new LfwPairsFormatError(`line ${line.number}: a mismatched pair needs "Name1 n1 Name2 n2", got "${t.join(' ')}"`);
    return { first: { name: t[0]!, index: index(t[1]!, line.number) }, second: { name: t[2]!, index: index(t[3]!, line.number) }, same, fold };
  });
  return { folds, pairsPerFold, pairs };
}

/** The image's path relative to the LFW images folder: Name/Name_0001.jpg. */
export function lfwImagePath(ref: LfwImageRef): string {
  return `${ref.name}/${ref.name}_${String(ref.index).padStart(4, '0')}.jpg`;
}

/**
 * The LFW protocol's accuracy: for each fold, the best-accuracy threshold on the other folds is
 * applied to it; mean ± std over folds. scores[i] belongs to pairs.pairs[i].
 */
export function lfwAccuracy(pairs: LfwPairs, scores: ArrayLike<number>): CrossValidatedAccuracy {
  if (scores.length !== pairs.pairs.length) throw new RangeError(`${pairs.pairs.length} pairs but ${scores.length} scores`);
  const genuine: number[] = [];
  const genuineFold: number[] = [];
  const impostor: number[] = [];
  const impostorFold: number[] = [];
  pairs.pairs.forEach((pair, i) => {
    if (pair.same) {
      genuine.push(scores[i]!);
      genuineFold.push(pair.fold);
    } else {
      impostor.push(scores[i]!);
      impostorFold.push(pair.fold);
    }
  });
  return kFoldAccuracy(genuine, impostor, genuineFold, impostorFold, pairs.folds);
}

// ───────────────────────────── recommendations ─────────────────────────────

/** Fewest impostor scores for which a 0.1% false accept rate is defined by at least one impostor. */
export const MIN_IMPOSTORS_FOR_FAR_0001 = 1000;

export interface ThresholdRecommendation {
  /** One-to-one verification threshold. */
  verify: number;
  verifyBasis: 'far_0.001' | 'best_accuracy';
  /** One-to-many search threshold; null without an open-set measurement. */
  search: number | null;
  searchBasis: 'open_set_unknown_1pct' | 'verify' | null;
}

/**
 * Thresholds to put in config.
 *
 * Verification: the higher of the best-accuracy threshold and the threshold of TAR at FAR 0.1%,
 * when there are enough impostor scores to define the latter (else the best-accuracy one). Best
 * accuracy weighs a false accept and a false reject alike, but at a door or an attendance kiosk a
 * false accept (someone checked in as someone else) costs more than a retry, and real impostors
 * far outnumber genuine attempts; FAR 0.1% bounds the costly error, and for a good model costs few
 * genuine accepts (TAR@0.1% ≈ 0.98 for fr_feature).
 *
 * Search: the open-set threshold that holds wrongly named unknowns to 1%, and never below the
 * verification threshold: a one-to-many search offers every gallery identity a chance to match,
 * so it must be at least as strict as a one-to-one check.
 */
export function recommendThresholds(input: {
  bestAccuracy: Pick<ThresholdAccuracy, 'threshold'>;
  tarAtFar0001: Pick<TarAtFar, 'threshold'>;
  impostorCount: number;
  openSet?: Pick<OpenSetRates, 'threshold'> | null;
}): ThresholdRecommendation {
  const useFar = input.impostorCount >= MIN_IMPOSTORS_FOR_FAR_0001 && input.tarAtFar0001.threshold > input.bestAccuracy.threshold;
  const verify = useFar ? input.tarAtFar0001.threshold : input.bestAccuracy.threshold;
  if (!input.openSet) return { verify, verifyBasis: useFar ? 'far_0.001' : 'best_accuracy', search: null, searchBasis: null };
  const openSetHigher = input.openSet.threshold >= verify;
  return {
    verify,
    verifyBasis: useFar ? 'far_0.001' : 'best_accuracy',
    search: openSetHigher ? input.openSet.threshold : verify,
    searchBasis: openSetHigher ? 'open_set_unknown_1pct' : 'verify',
  };
}
