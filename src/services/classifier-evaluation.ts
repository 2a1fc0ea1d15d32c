import { openSetRates, openSetThreshold, type OpenSetProbe, type OpenSetRates } from '../domain/metrics.ts';
import {
  chooseBySvm,
  decisionOnCosineScale,
  decisionValues,
  fitClassifier,
  predict,
  type ClassifierGrid,
  type FittedClassifier,
  type Steps,
  type TrainingSet,
} from '../domain/svm.ts';

/*
 * Does the SVM beat the cosine search? Both are measured on the same split of a labelled set of
 * embeddings: each identity's first images (file order) are its gallery, the rest are probes.
 * Closed set: rank-1 of cosine (best template), of the SVM alone and of the SVM with cosine
 * fallback (the rule recognition uses, chooseBySvm). Open set: identities are held out of the
 * gallery in turn (5 groups), the SVM is retrained without them, and their images probe as
 * unknowns; the rates compare unknowns accepted at the same share of knowns accepted.
 */

export interface LabelledEmbedding {
  identity: string;
  vector: Float32Array;
}

export interface ClassifierComparisonOptions {
  /** Share of each identity's images (the first ones) that form its gallery; default 0.5 (rounded up). */
  galleryFraction?: number;
  /** Cosine search threshold in force: open-set rates are also reported there. */
  searchThreshold: number;
  /** Cosine verification threshold in force: the SVM names only people at least this alike (see chooseBySvm). */
  verifyThreshold: number;
  minTemplatesPerPerson?: number;
  /** Identity groups held out in turn for the open set (default 5). */
  openSetGroups?: number;
  grid?: ClassifierGrid;
}

export type Method = 'cosine' | 'svm' | 'svmWithFallback';
export const METHODS: readonly Method[] = ['cosine', 'svm', 'svmWithFallback'];

export interface MethodResult {
  /** Rank-1 over probes of identities in the gallery (the SVM alone is wrong for identities it was not trained on). */
  rank1: number;
  /** Rank-1 over probes of identities the SVM was trained on only. */
  rank1SvmIdentities: number;
  /** Open-set rates at the configured search threshold (on the cosine scale). */
  atSearchThreshold: OpenSetRates | null;
  /** The threshold holding unknowns accepted to ≤ 1%, with its rates. */
  atUnknown1pct: OpenSetRates | null;
  /** Unknowns accepted when as many knowns are accepted as cosine accepts at the search threshold. */
  atCosineKnownAccept: OpenSetRates | null;
}

export interface ClassifierComparison {
  identities: number;
  galleryImages: number;
  probeImages: number;
  svmIdentities: number;
  knownProbes: number;
  unknownProbes: number;
  /** The SVM trained on the whole gallery (closed set). */
  fitted: Pick<FittedClassifier, 'params' | 'folds' | 'best' | 'acceptDecision'>;
  /** Share of known probes the SVM (rather than cosine) decided under the fallback rule. */
  svmDecidedShare: number;
  methods: Record<Method, MethodResult>;
  trainingMs: number;
}

interface Split {
  gallery: LabelledEmbedding[];
  probes: LabelledEmbedding[];
}

function splitByIdentity(samples: readonly LabelledEmbedding[], fraction: number): Split {
  const byIdentity = new Map<string, LabelledEmbedding[]>();
  for (const s of samples) {
    let list = byIdentity.get(s.identity);
    if (!list) byIdentity.set(s.identity, (list = []));
    list.push(s);
  }
  const split: Split = { gallery: [], probes: [] };
  for (const list of byIdentity.values()) {
    const n = Math.max(1, Math.ceil(list.length * fraction));
    split.gallery.push(...list.slice(0, n));
    split.probes.push(...list.slice(n));
  }
  return split;
}

interface Scored {
  identity: string;
  known: boolean;
  svmIdentity: boolean;
  best: Record<Method, { identity: string | null; score: number }>;
  svmDecided: boolean;
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Trains on a gallery and scores probes with the three methods (scores on the cosine scale). */
function* scoreProbes(gallery: readonly LabelledEmbedding[], probes: readonly LabelledEmbedding[], options: ClassifierComparisonOptions): Steps<{ scored: Scored[]; fitted: FittedClassifier }> {
  const min = options.minTemplatesPerPerson ?? 3;
  const counts = new Map<string, number>();
  for (const g of gallery) counts.set(g.identity, (counts.get(g.identity) ?? 0) + 1);
  const svmIdentities = [...counts].filter(([, n]) => n >= min).map(([id]) => id).sort();
  if (svmIdentities.length < 2) throw new RangeError(`the SVM needs two identities with ${min} or more gallery images; there are ${svmIdentities.length}`);
  const classOf = new Map(svmIdentities.map((id, i) => [id, i]));
  const trainRows = gallery.filter((g) => classOf.has(g.identity));
  const dims = trainRows[0]!.vector.length;
  const set: TrainingSet = { dims, classCount: svmIdentities.length, vectors: new Float32Array(trainRows.length * dims), labels: new Int32Array(trainRows.length) };
  trainRows.forEach((g, i) => {
    set.vectors.set(g.vector, i * dims);
    set.labels[i] = classOf.get(g.identity)!;
  });
  const fitted = yield* fitClassifier(set, options.grid ? { grid: options.grid } : {});
  const scored: Scored[] = [];
  for (const probe of probes) {
    const byIdentity = new Map<string, number>();
    for (const g of gallery) {
      const s = dot(probe.vector, g.vector);
      if (s > (byIdentity.get(g.identity) ?? -Infinity)) byIdentity.set(g.identity, s);
    }
    const people = [...byIdentity].sort((a, b) => b[1] - a[1]);
    const cosine = { identity: people[0]?.[0] ?? null, score: people[0]?.[1] ?? -1 };
    const values = decisionValues(fitted.model, probe.vector);
    const alone = predict(fitted.model, probe.vector);
    const accept = fitted.acceptDecision;
    // Without a calibrated threshold the SVM alone is scored around 0, its natural boundary.
    const svm = { identity: svmIdentities[alone.classIndex]!, score: decisionOnCosineScale(alone.decision, accept ?? 0, options.searchThreshold) };
    // The recognition rule: the cosine search retrieves candidates (all people here), the SVM re-ranks them.
    const choice = chooseBySvm(values, people.map(([id, similarity]) => ({ classIndex: classOf.get(id), similarity })), accept, options.verifyThreshold);
    const withFallback = choice ? { identity: people[choice.position]![0], score: decisionOnCosineScale(choice.decision, accept!, options.searchThreshold) } : cosine;
    scored.push({
      identity: probe.identity,
      known: counts.has(probe.identity),
      svmIdentity: classOf.has(probe.identity),
      best: { cosine, svm, svmWithFallback: withFallback },
      svmDecided: choice !== null,
    });
    if (scored.length % 64 === 0) yield;
  }
  return { scored, fitted };
}

const share = (count: number, total: number): number => (total === 0 ? Number.NaN : count / total);

function toOpenSet(scored: readonly Scored[], method: Method): OpenSetProbe[] {
  return scored.map((s) => ({ bestScore: s.best[method].score, inGallery: s.known, correct: s.known && s.best[method].identity === s.identity }));
}

/** The open-set rates at the highest threshold that still accepts at least knownAccept of the knowns. */
export function ratesAtKnownAccept(probes: readonly OpenSetProbe[], knownAccept: number): OpenSetRates | null {
  const knowns = probes.filter((p) => p.inGallery).length;
  const correct = probes.filter((p) => p.inGallery && p.correct).map((p) => p.bestScore).sort((a, b) => b - a);
  const needed = Math.ceil(knownAccept * knowns - 1e-9);
  if (needed > correct.length || knowns === 0) return null;
  return openSetRates(probes, needed === 0 ? Infinity : correct[needed - 1]!);
}

/** Compares cosine, SVM and SVM-with-fallback on the same splits (see the file comment). */
export function* compareClassifiers(samples: readonly LabelledEmbedding[], options: ClassifierComparisonOptions): Steps<ClassifierComparison> {
  const startedAt = Date.now();
  const { gallery, probes } = splitByIdentity(samples, options.galleryFraction ?? 0.5);
  const closed = yield* scoreProbes(gallery, probes, options);
  const known = closed.scored.filter((s) => s.known);
  const svmKnown = known.filter((s) => s.svmIdentity);
  const rank1 = (list: readonly Scored[], m: Method): number => share(list.filter((s) => s.best[m].identity === s.identity).length, list.length);

  // Open set: every identity is held out once (in one of `groups` groups); its gallery images probe too.
  const identities = [...new Set(samples.map((s) => s.identity))].sort();
  const groups = Math.min(options.openSetGroups ?? 5, identities.length);
  const openSet: Scored[] = [];
  for (let g = 0; g < groups && identities.length >= 3; g++) {
    const heldOut = new Set(identities.filter((_, i) => i % groups === g));
    const keptGallery = gallery.filter((s) => !heldOut.has(s.identity));
    const openProbes = [...probes, ...gallery.filter((s) => heldOut.has(s.identity))];
    try {
      const { scored } = yield* scoreProbes(keptGallery, openProbes, options);
      openSet.push(...scored);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
    }
  }

  const methods = {} as Record<Method, MethodResult>;
  const cosineProbes = toOpenSet(openSet, 'cosine');
  const haveOpenSet = openSet.some((s) => !s.known) && openSet.some((s) => s.known);
  const cosineAtThreshold = haveOpenSet ? openSetRates(cosineProbes, options.searchThreshold) : null;
  for (const m of METHODS) {
    const open = toOpenSet(openSet, m);
    methods[m] = {
      rank1: rank1(known, m),
      rank1SvmIdentities: rank1(svmKnown, m),
      atSearchThreshold: haveOpenSet ? openSetRates(open, options.searchThreshold) : null,
      atUnknown1pct: haveOpenSet ? openSetThreshold(open, 0.01) : null,
      atCosineKnownAccept: cosineAtThreshold ? ratesAtKnownAccept(open, cosineAtThreshold.knownAccept) : null,
    };
  }
  return {
    identities: identities.length,
    galleryImages: gallery.length,
    probeImages: probes.length,
    svmIdentities: closed.fitted.model.classCount,
    knownProbes: known.length,
    unknownProbes: openSet.filter((s) => !s.known).length,
    fitted: { params: closed.fitted.params, folds: closed.fitted.folds, best: closed.fitted.best, acceptDecision: closed.fitted.acceptDecision },
    svmDecidedShare: share(known.filter((s) => s.svmDecided).length, known.length),
    methods,
    trainingMs: Date.now() - startedAt,
  };
}

const pct = (x: number | null | undefined): string => (x === null || x === undefined || Number.isNaN(x) ? '—' : `${(x * 100).toFixed(2)}%`);

/** The comparison as a table (one column per method). */
export function formatClassifierComparison(c: ClassifierComparison, searchThreshold: number): string {
  const kernel = c.fitted.params.kernel;
  const lines = [
    `Classifier comparison: gallery = first half of each identity's images (${c.galleryImages}), probes = the rest (${c.probeImages});`,
    `  ${c.identities} identities, SVM trained on the ${c.svmIdentities} with ≥ 3 gallery images; open set: ${c.unknownProbes} unknown probes, identities held out in 5 groups.`,
    `  SVM chosen by ${c.fitted.folds}-fold CV: ${kernel.kind}${kernel.kind === 'rbf' ? ` gamma=${kernel.gamma}` : ''} C=${c.fitted.params.C} (CV accuracy ${pct(c.fitted.best.accuracy)}), ` +
      `accept decision ${c.fitted.acceptDecision === null ? '— (too few identities to calibrate)' : c.fitted.acceptDecision.toFixed(3)}; ` +
      `the SVM decided ${pct(c.svmDecidedShare)} of known probes under the fallback rule; ${(c.trainingMs / 1000).toFixed(1)} s.`,
  ];
  const header = ['', 'cosine', 'svm only', 'svm + cosine fallback'];
  const rows: string[][] = [header];
  const cell = (f: (r: MethodResult) => string): string[] => METHODS.map((m) => f(c.methods[m]));
  const rates = (r: OpenSetRates | null): string => (r ? `unknown ${pct(r.unknownAccept)} / known ${pct(r.knownAccept)}` : '—');
  rows.push(['rank-1 (all known probes)', ...cell((r) => pct(r.rank1))]);
  rows.push(['rank-1 (SVM-trained identities)', ...cell((r) => pct(r.rank1SvmIdentities))]);
  rows.push([`open set at search ${searchThreshold}`, ...cell((r) => rates(r.atSearchThreshold))]);
  rows.push(['open set, unknowns ≤ 1%', ...cell((r) => rates(r.atUnknown1pct))]);
  const target = c.methods.cosine.atSearchThreshold?.knownAccept;
  rows.push([`unknowns at known ${pct(target)} (cosine's)`, ...cell((r) => (r.atCosineKnownAccept ? pct(r.atCosineKnownAccept.unknownAccept) : 'not reached'))]);
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) lines.push(`  ${r.map((v, i) => v.padEnd(widths[i]!)).join('  ')}`.trimEnd());
  return `${lines.join('\n')}\n`;
}

/** The comparison over `facegate eval`'s embedded dataset: images with a face, in listing (file-name) order. */
export function* compareOnDataset(
  images: readonly { identity: string }[],
  outcomes: readonly ({ status: 'face'; vector: Float32Array } | { status: string })[],
  options: ClassifierComparisonOptions,
): Steps<ClassifierComparison> {
  const samples: LabelledEmbedding[] = [];
  outcomes.forEach((o, i) => {
    if (o.status === 'face' && 'vector' in o) samples.push({ identity: images[i]!.identity, vector: o.vector });
  });
  return yield* compareClassifiers(samples, options);
}
