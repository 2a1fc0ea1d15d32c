import { seededRandom as mulberry32 } from './random.ts';
/*
 * A small one-vs-rest support vector machine for face embeddings, with a grid search over C (and
 * gamma for the RBF kernel) by stratified cross-validation, and a decision threshold calibrated on
 * identities held out of training (the open-set question: how high does an SVM score a face it was
 * never trained on?).
 *
 * Each binary problem (one person against everyone else) is solved in the dual by coordinate
 * descent (Hsieh et al. 2008, the LIBLINEAR L1-loss solver), with the bias folded in as a constant
 * feature. The linear solver keeps the primal weights, so one step costs O(dims); the RBF solver
 * keeps the dual gradient over a precomputed kernel matrix, so one step costs O(n) and the matrix
 * costs n² floats (hence the rbfMaxSamples limit). Class weights are balanced, since one person's
 * handful of templates faces everybody else's.
 *
 * Training is written as generators that yield between small units of work, so a caller on the
 * event loop can give other work a turn (runToEnd drives them synchronously). Pure: no I/O.
 */

export interface TrainingSet {
  dims: number;
  /** n × dims, row-major; face embeddings are L2-normalised, but nothing here depends on it. */
  vectors: Float32Array;
  /** Class index of each row, 0 … classCount − 1. */
  labels: Int32Array;
  classCount: number;
}

export type SvmKernel = { kind: 'linear' } | { kind: 'rbf'; gamma: number };

export interface SvmParams {
  kernel: SvmKernel;
  /** Penalty of a margin violation; larger = fit the training templates harder. */
  C: number;
}

export interface SolverOptions {
  /** Stop when the projected gradient's spread falls below this (LIBLINEAR's default 0.1). */
  tolerance?: number;
  maxEpochs?: number;
  seed?: number;
  /**
   * Linear kernel with many classes: each person is trained against the templates of its this-many
   * nearest people (by mean embedding) plus randomNegatives others, not against everybody, which
   * bounds the cost; faces far from a person never become its support vectors anyway. 0 = always all.
   */
  nearestClasses?: number;
  randomNegatives?: number;
}

export interface LinearModel {
  kind: 'linear';
  dims: number;
  classCount: number;
  /** classCount × dims. */
  weights: Float32Array;
  biases: Float32Array;
}

export interface RbfModel {
  kind: 'rbf';
  dims: number;
  classCount: number;
  gamma: number;
  supportVectors: Float32Array;
  supportCount: number;
  /** classCount × supportCount: α·y of each support vector in each class's decision function. */
  coefficients: Float32Array;
  biases: Float32Array;
}

export type SvmModel = LinearModel | RbfModel;

/** A training generator: yields between units of work, returns its result. */
export type Steps<T> = Generator<void, T, void>;

/** Drives a training generator to its end synchronously. */
export function runToEnd<T>(steps: Steps<T>): T {
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

function shuffle(items: Int32Array, count: number, random: () => number): void {
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
}

function dotAt(a: ArrayLike<number>, aOffset: number, b: ArrayLike<number>, bOffset: number, dims: number): number {
  let s = 0;
  for (let k = 0; k < dims; k++) s += a[aOffset + k]! * b[bOffset + k]!;
  return s;
}

/** Checks a training set's shape; every class must have at least minPerClass rows. */
export function validateTrainingSet(set: TrainingSet, minPerClass = 1): void {
  const n = set.labels.length;
  if (set.dims < 1 || set.vectors.length !== n * set.dims) throw new RangeError(`vectors hold ${set.vectors.length} values, not ${n} × ${set.dims}`);
  if (set.classCount < 2) throw new RangeError('an SVM needs at least two classes');
  const counts = classCounts(set);
  counts.forEach((c, i) => {
    if (c < minPerClass) throw new RangeError(`class ${i} has ${c} samples, fewer than ${minPerClass}`);
  });
  for (let i = 0; i < set.vectors.length; i++) if (!Number.isFinite(set.vectors[i]!)) throw new RangeError('vectors must be finite');
}

export function classCounts(set: Pick<TrainingSet, 'labels' | 'classCount'>): Int32Array {
  const counts = new Int32Array(set.classCount);
  for (const label of set.labels) {
    if (!Number.isInteger(label) || label < 0 || label >= set.classCount) throw new RangeError(`label ${label} is outside 0 … ${set.classCount - 1}`);
    counts[label]!++;
  }
  return counts;
}

// ───────────────────────────── binary solvers ─────────────────────────────

interface BinaryProblem {
  /** Row indices into the set. */
  rows: Int32Array;
  /** ±1 per entry of rows. */
  y: Int8Array;
}

/** Balanced per-sample penalties: each side of the problem carries half the total weight. */
function penalties(y: Int8Array, C: number): [number, number] {
  let positives = 0;
  for (const v of y) if (v > 0) positives++;
  const negatives = y.length - positives;
  return [(C * y.length) / (2 * Math.max(1, positives)), (C * y.length) / (2 * Math.max(1, negatives))];
}

/** Dual coordinate descent with shrinking on the primal weights (dims + 1, the last is the bias). */
function* solveLinear(set: TrainingSet, problem: BinaryProblem, C: number, options: SolverOptions, random: () => number): Steps<Float64Array> {
  const { dims, vectors } = set;
  const { rows, y } = problem;
  const n = rows.length;
  const [cPos, cNeg] = penalties(y, C);
  const tolerance = options.tolerance ?? 0.1;
  const maxEpochs = options.maxEpochs ?? 300;
  const w = new Float64Array(dims + 1);
  const alpha = new Float64Array(n);
  const qii = new Float64Array(n);
  for (let i = 0; i < n; i++) qii[i] = dotAt(vectors, rows[i]! * dims, vectors, rows[i]! * dims, dims) + 1;
  const index = Int32Array.from({ length: n }, (_, i) => i);
  let active = n;
  let pgMaxOld = Infinity;
  let pgMinOld = -Infinity;
  for (let epoch = 0; epoch < maxEpochs; epoch++) {
    shuffle(index, active, random);
    let pgMax = -Infinity;
    let pgMin = Infinity;
    for (let s = 0; s < active; s++) {
      const i = index[s]!;
      const yi = y[i]!;
      const ci = yi > 0 ? cPos : cNeg;
      const offset = rows[i]! * dims;
      const g = yi * (dotAt(w, 0, vectors, offset, dims) + w[dims]!) - 1;
      let pg = 0;
      if (alpha[i] === 0) {
        if (g > pgMaxOld) {
          active--;
          index[s] = index[active]!;
          index[active] = i;
          s--;
          continue;
        }
        if (g < 0) pg = g;
      } else if (alpha[i] === ci) {
        if (g < pgMinOld) {
          active--;
          index[s] = index[active]!;
          index[active] = i;
          s--;
          continue;
        }
        if (g > 0) pg = g;
      } else {
        pg = g;
      }
      if (pg > pgMax) pgMax = pg;
      if (pg < pgMin) pgMin = pg;
      if (Math.abs(pg) > 1e-12) {
        const old = alpha[i]!;
        const next = Math.min(Math.max(old - g / qii[i]!, 0), ci);
        alpha[i] = next;
        const step = (next - old) * yi;
        for (let k = 0; k < dims; k++) w[k]! += step * vectors[offset + k]!;
        w[dims]! += step;
      }
    }
    yield;
    if (pgMax - pgMin <= tolerance) {
      if (active === n) break;
      active = n;
      pgMaxOld = Infinity;
      pgMinOld = -Infinity;
      continue;
    }
    pgMaxOld = pgMax <= 0 ? Infinity : pgMax;
    pgMinOld = pgMin >= 0 ? -Infinity : pgMin;
  }
  return w;
}

/** Dual coordinate descent over a precomputed kernel matrix (kernel + 1 for the bias); returns α·y. */
function* solveKernel(gram: Float32Array, n: number, y: Int8Array, C: number, options: SolverOptions, random: () => number): Steps<Float64Array> {
  const [cPos, cNeg] = penalties(y, C);
  const tolerance = options.tolerance ?? 0.1;
  const maxEpochs = options.maxEpochs ?? 300;
  const alpha = new Float64Array(n);
  // G_i = y_i Σ_j α_j y_j K'_ij − 1, kept up to date after every step.
  const grad = new Float64Array(n).fill(-1);
  const index = Int32Array.from({ length: n }, (_, i) => i);
  for (let epoch = 0; epoch < maxEpochs; epoch++) {
    shuffle(index, n, random);
    let pgMax = -Infinity;
    let pgMin = Infinity;
    for (let s = 0; s < n; s++) {
      const i = index[s]!;
      const yi = y[i]!;
      const ci = yi > 0 ? cPos : cNeg;
      const g = grad[i]!;
      const pg = alpha[i] === 0 ? Math.min(g, 0) : alpha[i] === ci ? Math.max(g, 0) : g;
      if (pg > pgMax) pgMax = pg;
      if (pg < pgMin) pgMin = pg;
      if (Math.abs(pg) <= 1e-12) continue;
      const old = alpha[i]!;
      const next = Math.min(Math.max(old - g / gram[i * n + i]!, 0), ci);
      alpha[i] = next;
      const step = (next - old) * yi;
      if (step === 0) continue;
      const row = i * n;
      for (let j = 0; j < n; j++) grad[j]! += step * y[j]! * gram[row + j]!;
    }
    yield;
    if (pgMax - pgMin <= tolerance) break;
  }
  for (let i = 0; i < n; i++) alpha[i]! *= y[i]!;
  return alpha;
}

// ───────────────────────────── one-vs-rest ─────────────────────────────

/** Mean vector of each class (not normalised). */
function classMeans(set: TrainingSet): Float64Array {
  const { dims, vectors, labels, classCount } = set;
  const means = new Float64Array(classCount * dims);
  const counts = new Int32Array(classCount);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    counts[c]!++;
    for (let k = 0; k < dims; k++) means[c * dims + k]! += vectors[i * dims + k]!;
  }
  for (let c = 0; c < classCount; c++) for (let k = 0; k < dims; k++) means[c * dims + k]! /= Math.max(1, counts[c]!);
  return means;
}

/** For each class, the rows it is trained against (null = every other row). */
function* negativePools(set: TrainingSet, options: SolverOptions, random: () => number): Steps<(Int32Array | null)[]> {
  const nearest = options.nearestClasses ?? 50;
  const { classCount, dims } = set;
  if (nearest <= 0 || classCount - 1 <= nearest) return new Array<Int32Array | null>(classCount).fill(null);
  const randomCount = options.randomNegatives ?? 256;
  const means = classMeans(set);
  const rowsOf: number[][] = Array.from({ length: classCount }, () => []);
  set.labels.forEach((c, i) => rowsOf[c]!.push(i));
  const pools: (Int32Array | null)[] = [];
  const sims = new Float64Array(classCount);
  const order = Int32Array.from({ length: classCount }, (_, i) => i);
  for (let c = 0; c < classCount; c++) {
    for (let o = 0; o < classCount; o++) sims[o] = o === c ? -Infinity : dotAt(means, c * dims, means, o * dims, dims);
    order.sort((a, b) => sims[b]! - sims[a]!);
    const chosen = new Set<number>();
    for (let r = 0; r < nearest; r++) for (const row of rowsOf[order[r]!]!) chosen.add(row);
    const n = set.labels.length;
    for (let tries = 0; tries < randomCount * 2 && chosen.size < randomCount + nearest * 8; tries++) {
      const row = Math.floor(random() * n);
      if (set.labels[row] !== c) chosen.add(row);
    }
    pools.push(Int32Array.from(chosen));
    if (c % 16 === 15) yield;
  }
  return pools;
}

/** A kernel matrix of rows × rows (cosines first, so one matrix serves every gamma). */
function* dotMatrix(set: TrainingSet, rows: Int32Array): Steps<Float32Array> {
  const n = rows.length;
  const { dims, vectors } = set;
  const out = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    const oi = rows[i]! * dims;
    for (let j = i; j < n; j++) {
      const v = dotAt(vectors, oi, vectors, rows[j]! * dims, dims);
      out[i * n + j] = v;
      out[j * n + i] = v;
    }
    if (i % 32 === 31) yield;
  }
  return out;
}

/** exp(−γ‖a − b‖²) + 1 from a matrix of dot products (the +1 is the bias feature). */
function* rbfFromDots(dots: Float32Array, n: number, gamma: number, out: Float32Array): Steps<Float32Array> {
  for (let i = 0; i < n; i++) {
    const ii = dots[i * n + i]!;
    for (let j = 0; j < n; j++) {
      const d2 = Math.max(0, ii + dots[j * n + j]! - 2 * dots[i * n + j]!);
      out[i * n + j] = Math.exp(-gamma * d2) + 1;
    }
    if (i % 64 === 63) yield;
  }
  return out;
}

export interface TrainOptions extends SolverOptions {
  /** Rows of the set to train on (default: all). */
  rows?: Int32Array;
  /** A precomputed dot-product matrix over `rows` (RBF), to share between grid points. */
  dots?: Float32Array;
  /** A dot-product matrix over every row of the set: the rows' part is taken from it (RBF, cross-validation). */
  fullDots?: Float32Array;
}

/** The part of an n × n matrix at the given rows and columns. */
function submatrix(full: Float32Array, n: number, rows: Int32Array): Float32Array {
  const m = rows.length;
  const out = new Float32Array(m * m);
  for (let i = 0; i < m; i++) {
    const base = rows[i]! * n;
    for (let j = 0; j < m; j++) out[i * m + j] = full[base + rows[j]!]!;
  }
  return out;
}

/** The dot products of every pair of rows of the set, computed once for all RBF trainings on it. */
export function* allDots(set: TrainingSet): Steps<Float32Array> {
  return yield* dotMatrix(set, Int32Array.from({ length: set.labels.length }, (_, i) => i));
}

/** Trains a one-vs-rest SVM on the set (or on options.rows of it). */
export function* trainOneVsRest(set: TrainingSet, params: SvmParams, options: TrainOptions = {}): Steps<SvmModel> {
  if (!(params.C > 0) || !Number.isFinite(params.C)) throw new RangeError(`C must be positive, got ${params.C}`);
  const rows = options.rows ?? Int32Array.from({ length: set.labels.length }, (_, i) => i);
  const subset: TrainingSet = options.rows ? subsetOf(set, rows) : set;
  const random = mulberry32(options.seed ?? 1);
  const { dims, classCount } = subset;
  const n = subset.labels.length;

  if (params.kernel.kind === 'linear') {
    const pools = yield* negativePools(subset, options, random);
    const weights = new Float32Array(classCount * dims);
    const biases = new Float32Array(classCount);
    for (let c = 0; c < classCount; c++) {
      const pool = pools[c];
      let problemRows: Int32Array;
      if (pool) {
        const positives: number[] = [];
        subset.labels.forEach((label, i) => label === c && positives.push(i));
        problemRows = Int32Array.from([...positives, ...pool]);
      } else {
        problemRows = Int32Array.from({ length: n }, (_, i) => i);
      }
      const y = Int8Array.from(problemRows, (i) => (subset.labels[i] === c ? 1 : -1));
      const w = yield* solveLinear(subset, { rows: problemRows, y }, params.C, options, random);
      for (let k = 0; k < dims; k++) weights[c * dims + k] = w[k]!;
      biases[c] = w[dims]!;
    }
    return { kind: 'linear', dims, classCount, weights, biases };
  }

  const gamma = params.kernel.gamma;
  if (!(gamma > 0) || !Number.isFinite(gamma)) throw new RangeError(`gamma must be positive, got ${gamma}`);
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const fullN = set.labels.length;
  if (options.fullDots && options.fullDots.length !== fullN * fullN) throw new RangeError('the dot-product matrix does not match the set');
  const dots = options.dots ?? (options.fullDots ? submatrix(options.fullDots, fullN, rows) : yield* dotMatrix(subset, all));
  if (dots.length !== n * n) throw new RangeError('the dot-product matrix does not match the rows');
  const gram = yield* rbfFromDots(dots, n, gamma, new Float32Array(n * n));
  const coefficientsFull = new Float32Array(classCount * n);
  for (let c = 0; c < classCount; c++) {
    const y = Int8Array.from(subset.labels, (label) => (label === c ? 1 : -1));
    const alphaY = yield* solveKernel(gram, n, y, params.C, options, random);
    for (let i = 0; i < n; i++) coefficientsFull[c * n + i] = alphaY[i]!;
  }
  // Keep only rows that are a support vector of some class.
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < classCount; c++) {
      if (coefficientsFull[c * n + i] !== 0) {
        keep.push(i);
        break;
      }
    }
  }
  const supportCount = keep.length;
  const supportVectors = new Float32Array(supportCount * dims);
  const coefficients = new Float32Array(classCount * supportCount);
  const biases = new Float32Array(classCount);
  keep.forEach((row, s) => {
    supportVectors.set(subset.vectors.subarray(row * dims, (row + 1) * dims), s * dims);
    for (let c = 0; c < classCount; c++) {
      const a = coefficientsFull[c * n + row]!;
      coefficients[c * supportCount + s] = a;
      biases[c]! += a;
    }
  });
  return { kind: 'rbf', dims, classCount, gamma, supportVectors, supportCount, coefficients, biases };
}

function subsetOf(set: TrainingSet, rows: Int32Array): TrainingSet {
  const vectors = new Float32Array(rows.length * set.dims);
  rows.forEach((row, i) => vectors.set(set.vectors.subarray(row * set.dims, (row + 1) * set.dims), i * set.dims));
  return { dims: set.dims, classCount: set.classCount, vectors, labels: Int32Array.from(rows, (r) => set.labels[r]!) };
}

/** The decision value of every class for one vector (higher = more that class); writes into out when given. */
export function decisionValues(model: SvmModel, x: Float32Array, out: Float64Array = new Float64Array(model.classCount)): Float64Array {
  if (x.length !== model.dims) throw new RangeError(`vector has ${x.length} dimensions, the model ${model.dims}`);
  const { dims, classCount } = model;
  if (model.kind === 'linear') {
    for (let c = 0; c < classCount; c++) out[c] = dotAt(model.weights, c * dims, x, 0, dims) + model.biases[c]!;
    return out;
  }
  const m = model.supportCount;
  const xx = dotAt(x, 0, x, 0, dims);
  const k = new Float64Array(m);
  for (let s = 0; s < m; s++) {
    const o = s * dims;
    const d2 = Math.max(0, xx + dotAt(model.supportVectors, o, model.supportVectors, o, dims) - 2 * dotAt(model.supportVectors, o, x, 0, dims));
    k[s] = Math.exp(-model.gamma * d2);
  }
  for (let c = 0; c < classCount; c++) out[c] = dotAt(model.coefficients, c * m, k, 0, m) + model.biases[c]!;
  return out;
}

export interface Prediction {
  classIndex: number;
  decision: number;
  /** Best decision value minus the runner-up's. */
  margin: number;
}

/** The best class of a vector, among all classes or only `among` (class indices). */
export function predict(model: SvmModel, x: Float32Array, among?: readonly number[]): Prediction {
  const values = decisionValues(model, x);
  let best = -1;
  let bestValue = -Infinity;
  let second = -Infinity;
  const consider = (c: number): void => {
    const v = values[c]!;
    if (v > bestValue) {
      second = bestValue;
      bestValue = v;
      best = c;
    } else if (v > second) second = v;
  };
  if (among) for (const c of among) consider(c);
  else for (let c = 0; c < model.classCount; c++) consider(c);
  return { classIndex: best, decision: bestValue, margin: bestValue - second };
}

// ───────────────────────────── model selection ─────────────────────────────

/** Stratified folds: each class's rows shuffled (seeded) and dealt round-robin, so every fold holds some of every class with ≥ folds rows. */
export function stratifiedFolds(labels: Int32Array, classCount: number, folds: number, seed = 0): Int32Array {
  const random = mulberry32(seed);
  const fold = new Int32Array(labels.length);
  const byClass: number[][] = Array.from({ length: classCount }, () => []);
  labels.forEach((c, i) => byClass[c]!.push(i));
  let offset = 0;
  for (const rows of byClass) {
    const order = Int32Array.from(rows);
    shuffle(order, order.length, random);
    // Offsetting the deal by class spreads small classes over all folds rather than the first ones.
    order.forEach((row, k) => (fold[row] = (k + offset) % folds));
    offset += rows.length;
  }
  return fold;
}

export interface CrossValidation {
  params: SvmParams;
  folds: number;
  /** Share of held-out rows whose best class was their own. */
  accuracy: number;
  correct: number;
  total: number;
}

/** k-fold cross-validated rank-1 accuracy of one parameter setting. */
export function* crossValidate(set: TrainingSet, params: SvmParams, fold: Int32Array, folds: number, options: Omit<TrainOptions, 'rows' | 'dots'> = {}): Steps<CrossValidation> {
  let correct = 0;
  let total = 0;
  for (let f = 0; f < folds; f++) {
    const train: number[] = [];
    const test: number[] = [];
    fold.forEach((k, i) => (k === f ? test : train).push(i));
    if (test.length === 0) continue;
    const model = yield* trainOneVsRest(set, params, { ...options, rows: Int32Array.from(train) });
    for (const i of test) {
      const p = predict(model, set.vectors.subarray(i * set.dims, (i + 1) * set.dims));
      if (p.classIndex === set.labels[i]) correct++;
      if (++total % 32 === 0) yield;
    }
    yield;
  }
  return { params, folds, accuracy: total === 0 ? 0 : correct / total, correct, total };
}

export interface ClassifierGrid {
  C: readonly number[];
  /** Gammas tried with the RBF kernel; empty = linear only. */
  gamma: readonly number[];
  /** The RBF kernel is tried only when the set has at most this many rows (its matrix is n² floats). */
  rbfMaxSamples: number;
}

export const DEFAULT_GRID: ClassifierGrid = { C: [0.1, 1, 10, 100], gamma: [0.5, 1, 2, 4], rbfMaxSamples: 3000 };

export interface FitOptions extends SolverOptions {
  grid?: ClassifierGrid;
  /** At most this many folds (fewer when the smallest class has fewer rows); at least 2. */
  maxFolds?: number;
  /** Share of held-out identities' decisions allowed at or above acceptDecision. */
  maxUnknownAccept?: number;
  /** Called after each grid point with what is done so far. */
  onProgress?: (done: number, total: number) => void;
}

export interface FittedClassifier {
  model: SvmModel;
  params: SvmParams;
  folds: number;
  /** Every grid point's cross-validated accuracy, in the order tried. */
  grid: CrossValidation[];
  best: CrossValidation;
  /**
   * The decision value at or above which the SVM names a face: chosen so that at most
   * maxUnknownAccept of the faces of identities left out of training reach it. Null when there were
   * too few classes to hold any out (then callers should not let the SVM name anyone on its own).
   */
  acceptDecision: number | null;
  /** How many held-out-identity faces the threshold was calibrated on. */
  unknownSamples: number;
}

/**
 * Picks SVM parameters by cross-validated accuracy over the grid (ties go to the linear kernel,
 * then to the smaller C: the simpler model), trains the final model on every row, and calibrates
 * the accept threshold by training without a share of the identities and scoring their faces.
 */
export function* fitClassifier(set: TrainingSet, options: FitOptions = {}): Steps<FittedClassifier> {
  const counts = classCounts(set);
  validateTrainingSet(set, 2);
  const grid = options.grid ?? DEFAULT_GRID;
  const smallest = Math.min(...counts);
  const folds = Math.max(2, Math.min(options.maxFolds ?? 5, smallest));
  const fold = stratifiedFolds(set.labels, set.classCount, folds, options.seed ?? 0);
  const candidates: SvmParams[] = [];
  for (const C of grid.C) candidates.push({ kernel: { kind: 'linear' }, C });
  if (set.labels.length <= grid.rbfMaxSamples) for (const gamma of grid.gamma) for (const C of grid.C) candidates.push({ kernel: { kind: 'rbf', gamma }, C });
  if (candidates.length === 0) throw new RangeError('the grid is empty');

  const solver: TrainOptions = { ...options };
  if (candidates.some((c) => c.kernel.kind === 'rbf')) solver.fullDots = yield* allDots(set);
  const results: CrossValidation[] = [];
  let best: CrossValidation | undefined;
  for (const params of candidates) {
    const cv = yield* crossValidate(set, params, fold, folds, solver);
    results.push(cv);
    if (!best || cv.accuracy > best.accuracy + 1e-12) best = cv;
    options.onProgress?.(results.length, candidates.length + 2);
  }
  const model = yield* trainOneVsRest(set, best!.params, solver);
  options.onProgress?.(candidates.length + 1, candidates.length + 2);
  const calibration = yield* calibrateAcceptDecision(set, best!.params, solver);
  options.onProgress?.(candidates.length + 2, candidates.length + 2);
  return { model, params: best!.params, folds, grid: results, best: best!, ...calibration };
}

/**
 * Open-set calibration: identities are split into groups; for each group the SVM is trained on the
 * others and the group's faces are scored, as unknown faces would be. The accept threshold is the
 * lowest decision value that at most maxUnknownAccept of those faces reach.
 */
export function* calibrateAcceptDecision(
  set: TrainingSet,
  params: SvmParams,
  options: FitOptions & Pick<TrainOptions, 'fullDots'> = {},
): Steps<{ acceptDecision: number | null; unknownSamples: number }> {
  const classCount = set.classCount;
  // At most five groups (a fifth of the identities each), at least one identity each; holding one
  // group out must leave two classes to train on, hence three identities at least.
  if (classCount < 3) return { acceptDecision: null, unknownSamples: 0 };
  const groups = Math.min(5, classCount);
  const random = mulberry32((options.seed ?? 0) + 7);
  const order = Int32Array.from({ length: classCount }, (_, i) => i);
  shuffle(order, classCount, random);
  const groupOf = new Int32Array(classCount);
  order.forEach((c, k) => (groupOf[c] = k % groups));
  const unknownScores: number[] = [];
  for (let g = 0; g < groups; g++) {
    const keptClasses: number[] = [];
    for (let c = 0; c < classCount; c++) if (groupOf[c] !== g) keptClasses.push(c);
    const relabel = new Int32Array(classCount).fill(-1);
    keptClasses.forEach((c, i) => (relabel[c] = i));
    const trainRows: number[] = [];
    const testRows: number[] = [];
    set.labels.forEach((c, i) => (relabel[c]! >= 0 ? trainRows : testRows).push(i));
    const rows = Int32Array.from(trainRows);
    const vectors = new Float32Array(rows.length * set.dims);
    rows.forEach((row, i) => vectors.set(set.vectors.subarray(row * set.dims, (row + 1) * set.dims), i * set.dims));
    const reduced: TrainingSet = { dims: set.dims, classCount: keptClasses.length, vectors, labels: Int32Array.from(rows, (r) => relabel[set.labels[r]!]!) };
    const { fullDots, ...solver } = options;
    const model = yield* trainOneVsRest(reduced, params, fullDots && params.kernel.kind === 'rbf' ? { ...solver, dots: submatrix(fullDots, set.labels.length, rows) } : solver);
    for (const i of testRows) {
      unknownScores.push(predict(model, set.vectors.subarray(i * set.dims, (i + 1) * set.dims)).decision);
      if (unknownScores.length % 32 === 0) yield;
    }
    yield;
  }
  unknownScores.sort((a, b) => a - b);
  const maxAccept = options.maxUnknownAccept ?? 0.01;
  // The lowest threshold with at most maxAccept of unknown scores at or above it.
  const allowed = Math.floor(maxAccept * unknownScores.length);
  const cut = unknownScores.length - allowed; // scores[cut…] may be accepted
  const above = unknownScores[cut - 1]!;
  const acceptDecision = nextUp(above);
  return { acceptDecision, unknownSamples: unknownScores.length };
}

/** The smallest double above x (so "≥ threshold" excludes x itself). */
function nextUp(x: number): number {
  if (Number.isNaN(x) || x === Infinity) return x;
  if (x === 0) return Number.MIN_VALUE;
  const buffer = new DataView(new ArrayBuffer(8));
  buffer.setFloat64(0, x);
  const bits = buffer.getBigInt64(0);
  buffer.setBigInt64(0, x > 0 ? bits + 1n : bits - 1n);
  return buffer.getFloat64(0);
}

// ───────────────────────────── SVM with cosine fallback ─────────────────────────────

export interface SvmChoice {
  /** Position of the chosen person in the candidate list. */
  position: number;
  classIndex: number;
  decision: number;
  /** The best decision value of any other class (the runner-up for the margin). */
  runnerUp: number;
}

/** A person the cosine search retrieved, as chooseBySvm sees it. */
export interface SvmCandidate {
  /** The person's class in the model; undefined when the person is not in it. */
  classIndex: number | undefined;
  /** The person's best cosine similarity to the probe. */
  similarity: number;
}

/**
 * The rule by which the SVM names a face, or null to leave the face to the cosine search. The SVM
 * chooses only among the people the cosine search retrieved (best first), and only among those at
 * least minSimilarity alike (the verification threshold: the SVM may name someone the search
 * threshold would not, never someone who does not even verify), so it cannot name someone
 * deleted since training nor a stranger far from everyone. It defers to cosine when the cosine
 * search's best person is not in the model (too few templates to train on, or enrolled since
 * training), when no accept threshold could be calibrated, and when its decision is below that
 * threshold (not confident).
 */
export function chooseBySvm(values: Float64Array, candidates: readonly SvmCandidate[], acceptDecision: number | null, minSimilarity = -1): SvmChoice | null {
  if (acceptDecision === null || candidates.length === 0 || candidates[0]!.classIndex === undefined) return null;
  let position = -1;
  let best = -Infinity;
  candidates.forEach((candidate, i) => {
    const c = candidate.classIndex;
    if (c !== undefined && candidate.similarity >= minSimilarity && values[c]! > best) {
      best = values[c]!;
      position = i;
    }
  });
  if (position < 0 || best < acceptDecision) return null;
  const classIndex = candidates[position]!.classIndex!;
  let runnerUp = -Infinity;
  for (let c = 0; c < values.length; c++) if (c !== classIndex && values[c]! > runnerUp) runnerUp = values[c]!;
  return { position, classIndex, decision: best, runnerUp };
}

/**
 * An SVM decision value on the cosine scale of the identity policy: the calibrated accept decision
 * lands on the search threshold, differences are kept (so the policy's margin applies to decision
 * values), and the result is clamped to a cosine's −1 … 1.
 */
export function decisionOnCosineScale(decision: number, acceptDecision: number, searchThreshold: number): number {
  if (decision === -Infinity) return -1;
  return Math.min(1, Math.max(-1, searchThreshold + decision - acceptDecision));
}
