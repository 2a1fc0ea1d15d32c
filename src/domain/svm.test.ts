import { describe, expect, it } from 'vitest';
import {
  allDots,
  calibrateAcceptDecision,
  chooseBySvm,
  crossValidate,
  decisionOnCosineScale,
  decisionValues,
  fitClassifier,
  predict,
  runToEnd,
  stratifiedFolds,
  trainOneVsRest,
  validateTrainingSet,
  type LinearModel,
  type TrainingSet,
} from './svm.ts';
import { seededRandom } from './random.ts';

/** A seeded PRNG with Gaussian draws. */
function rng(seed: number): { uniform(): number; gauss(): number } {
  const uniform = seededRandom(seed);
  return { uniform, gauss: () => Math.sqrt(-2 * Math.log(uniform() + 1e-12)) * Math.cos(2 * Math.PI * uniform()) };
}

function normalize(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  return v.map((x) => x / Math.sqrt(n));
}

/** Unit vectors around classCount random centres, like face embeddings of several people; spread = the noise's expected length. */
function clusters(classCount: number, perClass: number, dims: number, spread: number, seed: number, noiseSeed = seed): TrainingSet & { centres: Float32Array[] } {
  const centreRng = rng(seed);
  const centres = Array.from({ length: classCount }, () => normalize(Float32Array.from({ length: dims }, centreRng.gauss)));
  const r = noiseSeed === seed ? centreRng : rng(noiseSeed);
  const vectors = new Float32Array(classCount * perClass * dims);
  const labels = new Int32Array(classCount * perClass);
  let row = 0;
  for (let c = 0; c < classCount; c++) {
    for (let k = 0; k < perClass; k++) {
      const v = normalize(centres[c]!.map((x) => x + (spread / Math.sqrt(dims)) * r.gauss()));
      vectors.set(v, row * dims);
      labels[row++] = c;
    }
  }
  return { dims, classCount, vectors, labels, centres };
}

/** Two classes in the plane: a disc inside a ring, which no line separates. */
function discInRing(perClass: number, seed: number): TrainingSet {
  const r = rng(seed);
  const vectors = new Float32Array(perClass * 2 * 2);
  const labels = new Int32Array(perClass * 2);
  for (let i = 0; i < perClass * 2; i++) {
    const inner = i < perClass;
    const radius = inner ? 0.6 * Math.sqrt(r.uniform()) : 1.4 + 0.4 * r.uniform();
    const angle = 2 * Math.PI * r.uniform();
    vectors[i * 2] = radius * Math.cos(angle);
    vectors[i * 2 + 1] = radius * Math.sin(angle);
    labels[i] = inner ? 0 : 1;
  }
  return { dims: 2, classCount: 2, vectors, labels };
}

const row = (set: TrainingSet, i: number): Float32Array => set.vectors.subarray(i * set.dims, (i + 1) * set.dims);

function accuracy(model: Parameters<typeof predict>[0], set: TrainingSet): number {
  let correct = 0;
  for (let i = 0; i < set.labels.length; i++) if (predict(model, row(set, i)).classIndex === set.labels[i]) correct++;
  return correct / set.labels.length;
}

describe('linear one-vs-rest SVM', () => {
  it('finds the maximum-margin separator of a one-dimensional problem', () => {
    // Points −2, −1 | 1, 2 with the bias as a constant feature: the hard-margin answer is w = 1, b = 0.
    const set: TrainingSet = { dims: 1, classCount: 2, vectors: Float32Array.from([-2, -1, 1, 2]), labels: Int32Array.from([0, 0, 1, 1]) };
    const model = runToEnd(trainOneVsRest(set, { kernel: { kind: 'linear' }, C: 1000 }, { tolerance: 1e-6 })) as LinearModel;
    expect(model.weights[1]).toBeCloseTo(1, 3);
    expect(model.biases[1]).toBeCloseTo(0, 3);
    expect(model.weights[0]).toBeCloseTo(-1, 3);
    // The support vectors sit exactly on the margin.
    expect(decisionValues(model, Float32Array.from([1]))[1]).toBeCloseTo(1, 3);
    expect(decisionValues(model, Float32Array.from([-1]))[1]).toBeCloseTo(-1, 3);
  });

  it('separates clusters of unit vectors and generalises to new draws', () => {
    const train = clusters(12, 6, 32, 0.8, 1);
    const model = runToEnd(trainOneVsRest(train, { kernel: { kind: 'linear' }, C: 10 }));
    expect(accuracy(model, train)).toBe(1);
    const test = clusters(12, 20, 32, 0.8, 1, 1001); // the same people, new faces
    expect(accuracy(model, test)).toBeGreaterThan(0.95);
  });

  it('trains each class against its nearest classes only when there are many, with the same answers', () => {
    const set = clusters(40, 5, 24, 0.8, 3);
    const all = runToEnd(trainOneVsRest(set, { kernel: { kind: 'linear' }, C: 10 }, { nearestClasses: 0 }));
    const nearest = runToEnd(trainOneVsRest(set, { kernel: { kind: 'linear' }, C: 10 }, { nearestClasses: 8, randomNegatives: 32 }));
    const probes = clusters(40, 10, 24, 0.8, 3, 1003);
    let agree = 0;
    for (let i = 0; i < probes.labels.length; i++) if (predict(all, row(probes, i)).classIndex === predict(nearest, row(probes, i)).classIndex) agree++;
    expect(agree / probes.labels.length).toBeGreaterThan(0.97);
    expect(accuracy(nearest, probes)).toBeGreaterThanOrEqual(accuracy(all, probes) - 0.02);
  });

  it('yields between units of work, so a caller can give the event loop a turn', () => {
    const steps = trainOneVsRest(clusters(6, 5, 16, 0.8, 4), { kernel: { kind: 'linear' }, C: 1 });
    let yields = 0;
    for (let next = steps.next(); !next.done; next = steps.next()) yields++;
    expect(yields).toBeGreaterThan(6);
  });
});

describe('RBF one-vs-rest SVM', () => {
  it('separates a disc from a ring, which the linear kernel cannot', () => {
    const train = discInRing(60, 5);
    const test = discInRing(200, 6);
    const rbf = runToEnd(trainOneVsRest(train, { kernel: { kind: 'rbf', gamma: 2 }, C: 10 }));
    const linear = runToEnd(trainOneVsRest(train, { kernel: { kind: 'linear' }, C: 10 }));
    expect(accuracy(rbf, test)).toBeGreaterThan(0.97);
    expect(accuracy(linear, test)).toBeLessThan(0.8);
    expect(rbf.kind === 'rbf' && rbf.supportCount).toBeGreaterThan(0);
  });

  it('gives the same model from a shared dot-product matrix as from its own', () => {
    const set = discInRing(30, 12);
    const rows = Int32Array.from({ length: 60 }, (_, i) => i).filter((i) => i % 3 !== 0);
    const params = { kernel: { kind: 'rbf' as const, gamma: 2 }, C: 10 };
    const own = runToEnd(trainOneVsRest(set, params, { rows }));
    const shared = runToEnd(trainOneVsRest(set, params, { rows, fullDots: runToEnd(allDots(set)) }));
    for (let i = 0; i < 60; i += 3) expect([...decisionValues(shared, row(set, i))]).toEqual([...decisionValues(own, row(set, i))]);
  });
});

describe('model selection', () => {
  it('deals every class over the folds, deterministically', () => {
    const labels = Int32Array.from([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2]);
    const folds = stratifiedFolds(labels, 3, 3, 9);
    expect([...folds]).toEqual([...stratifiedFolds(labels, 3, 3, 9)]);
    for (let c = 0; c < 3; c++) {
      const used = new Set([...labels.keys()].filter((i) => labels[i] === c).map((i) => folds[i]));
      expect(used.size).toBe(3);
    }
  });

  it('cross-validates a setting on held-out rows', () => {
    const set = clusters(5, 6, 16, 0.8, 7);
    const cv = runToEnd(crossValidate(set, { kernel: { kind: 'linear' }, C: 1 }, stratifiedFolds(set.labels, 5, 3), 3));
    expect(cv.total).toBe(30);
    expect(cv.accuracy).toBeGreaterThan(0.9);
  });

  it('picks the RBF kernel by grid search when only it fits, and reports every grid point', () => {
    const set = discInRing(40, 8);
    const fitted = runToEnd(fitClassifier(set, { grid: { C: [1, 10], gamma: [1, 4], rbfMaxSamples: 1000 } }));
    expect(fitted.grid).toHaveLength(2 + 4);
    expect(fitted.params.kernel.kind).toBe('rbf');
    expect(fitted.best.accuracy).toBe(Math.max(...fitted.grid.map((g) => g.accuracy)));
    expect(fitted.folds).toBe(5);
    // Two classes: none can be held out for the open-set calibration.
    expect(fitted.acceptDecision).toBeNull();
  });

  it('leaves the RBF kernel out above rbfMaxSamples', () => {
    const fitted = runToEnd(fitClassifier(clusters(3, 4, 8, 0.8, 2), { grid: { C: [1], gamma: [1], rbfMaxSamples: 5 } }));
    expect(fitted.grid.map((g) => g.params.kernel.kind)).toEqual(['linear']);
  });

  it('calibrates an accept decision that faces of identities never trained on seldom reach', () => {
    const set = clusters(30, 5, 32, 0.8, 11);
    const params = { kernel: { kind: 'linear' as const }, C: 1 };
    const { acceptDecision, unknownSamples } = runToEnd(calibrateAcceptDecision(set, params, { maxUnknownAccept: 0.01 }));
    expect(unknownSamples).toBe(150);
    expect(acceptDecision).not.toBeNull();
    // Faces of 10 new identities against a model of the 30: at most a few reach the threshold...
    const model = runToEnd(trainOneVsRest(set, params));
    const strangers = clusters(40, 5, 32, 0.8, 99);
    let strangersAccepted = 0;
    for (let i = 0; i < strangers.labels.length; i++) if (predict(model, row(strangers, i)).decision >= acceptDecision!) strangersAccepted++;
    expect(strangersAccepted / strangers.labels.length).toBeLessThan(0.05);
    // ...while new faces of the trained identities mostly do.
    const known = clusters(30, 10, 32, 0.8, 11, 1011);
    let knownAccepted = 0;
    for (let i = 0; i < known.labels.length; i++) {
      const p = predict(model, row(known, i));
      if (p.classIndex === known.labels[i] && p.decision >= acceptDecision!) knownAccepted++;
    }
    expect(knownAccepted / known.labels.length).toBeGreaterThan(0.8);
  });

  it('calibrates with as few as three identities, holding each out in turn', () => {
    const set = clusters(3, 4, 16, 0.8, 21);
    const { acceptDecision, unknownSamples } = runToEnd(calibrateAcceptDecision(set, { kernel: { kind: 'linear' }, C: 1 }));
    expect(unknownSamples).toBe(12);
    expect(acceptDecision).not.toBeNull();
    expect(Number.isFinite(acceptDecision)).toBe(true);
    const two = runToEnd(calibrateAcceptDecision(clusters(2, 4, 16, 0.8, 21), { kernel: { kind: 'linear' }, C: 1 }));
    expect(two).toEqual({ acceptDecision: null, unknownSamples: 0 });
  });

  it('refuses training sets it cannot learn from', () => {
    expect(() => validateTrainingSet({ dims: 2, classCount: 2, vectors: new Float32Array(3), labels: Int32Array.from([0, 1]) })).toThrow(RangeError);
    expect(() => validateTrainingSet({ dims: 1, classCount: 1, vectors: new Float32Array(2), labels: Int32Array.from([0, 0]) })).toThrow(/two classes/);
    expect(() => validateTrainingSet({ dims: 1, classCount: 2, vectors: new Float32Array(2), labels: Int32Array.from([0, 2]) })).toThrow(/outside/);
    expect(() => runToEnd(fitClassifier({ dims: 1, classCount: 2, vectors: new Float32Array(3), labels: Int32Array.from([0, 0, 1]) }))).toThrow(/fewer than 2/);
    expect(() => runToEnd(trainOneVsRest(clusters(2, 2, 2, 0.1, 1), { kernel: { kind: 'linear' }, C: 0 }))).toThrow(/C must be positive/);
  });
});

describe('SVM with cosine fallback', () => {
  const values = Float64Array.from([0.2, 1.3, -0.4, 0.9]);
  const cand = (classIndex: number | undefined, similarity = 0.6) => ({ classIndex, similarity });

  it('names the best retrieved person by decision value, with the best other class as runner-up', () => {
    // Cosine retrieved the people of classes 3, 1 and someone not in the model.
    expect(chooseBySvm(values, [cand(3), cand(1), cand(undefined)], 0.5)).toEqual({ position: 1, classIndex: 1, decision: 1.3, runnerUp: 0.9 });
  });

  it('considers only candidates that reach the minimum cosine similarity', () => {
    expect(chooseBySvm(values, [cand(3, 0.6), cand(1, 0.3)], 0.5, 0.4)).toEqual({ position: 0, classIndex: 3, decision: 0.9, runnerUp: 1.3 });
    expect(chooseBySvm(values, [cand(3, 0.35), cand(1, 0.3)], 0.5, 0.4)).toBeNull();
  });

  it('defers to cosine when it is not the one to ask', () => {
    expect(chooseBySvm(values, [cand(undefined), cand(1)], 0.5)).toBeNull(); // cosine's best person is not in the model
    expect(chooseBySvm(values, [cand(0), cand(2)], 0.5)).toBeNull(); // not confident: 0.2 < 0.5
    expect(chooseBySvm(values, [cand(1)], null)).toBeNull(); // no calibrated threshold
    expect(chooseBySvm(values, [], 0.5)).toBeNull();
  });

  it('puts decision values on the cosine scale: the accept decision lands on the search threshold', () => {
    expect(decisionOnCosineScale(0.3, 0.3, 0.5)).toBeCloseTo(0.5, 12);
    expect(decisionOnCosineScale(0.45, 0.3, 0.5) - decisionOnCosineScale(0.35, 0.3, 0.5)).toBeCloseTo(0.1, 12);
    expect(decisionOnCosineScale(5, 0.3, 0.5)).toBe(1);
    expect(decisionOnCosineScale(-5, 0.3, 0.5)).toBe(-1);
    expect(decisionOnCosineScale(-Infinity, 0.3, 0.5)).toBe(-1);
  });
});
