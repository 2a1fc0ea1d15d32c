import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError } from '../domain/errors.ts';
import {
  chooseBySvm,
  decisionOnCosineScale,
  decisionValues,
  fitClassifier,
  type ClassifierGrid,
  type CrossValidation,
  type Steps,
  type SvmModel,
  type SvmParams,
  type TrainingSet,
} from '../domain/svm.ts';
import type { GalleryChecksum, TemplatesRepository } from '../store/index.ts';
import type { Embedding } from '../vision/face-engine.ts';
import type { GalleryService } from './gallery.service.ts';
import type { IdentityCandidates, IdentityScorer } from './recognition.service.ts';

/*
 * The optional SVM identity classifier (identity.classifier = "svm"): one-vs-rest over the people
 * with enough templates of the configured embedding model, parameters grid-searched by
 * cross-validation, the accept threshold calibrated on identities held out of training
 * (src/domain/svm.ts). It is trained on demand (POST /api/v1/system/train-model), in slices that
 * give the event loop a turn every few milliseconds, saved under <dataDir>/classifier and loaded
 * at start. At recognition it re-ranks the people the cosine search retrieved and falls back to
 * the cosine decision whenever it is not the one to ask (see chooseBySvm).
 */

/** A person needs this many templates to be a class of the SVM; others are left to cosine. */
export const MIN_TEMPLATES_FOR_SVM = 3;

export interface ClassifierServiceOptions {
  /** The embedding model trained on (the gallery's). */
  modelId: string;
  /** Folder the trained model is saved in (<dataDir>/classifier). */
  dir: string;
  minTemplatesPerPerson?: number;
  grid?: ClassifierGrid;
  /** Longest stretch of training between turns of the event loop, in ms (default 20). */
  sliceMs?: number;
  log?: (message: string) => void;
}

export interface GridPointReport {
  kernel: 'linear' | 'rbf';
  C: number;
  gamma: number | null;
  /** Cross-validated rank-1 accuracy. */
  accuracy: number;
}

export interface TrainingReport {
  modelId: string;
  trainedAt: number;
  durationMs: number;
  /** People (classes) the SVM was trained on. */
  people: number;
  templates: number;
  /** People left to the cosine search: fewer than minTemplatesPerPerson templates. */
  peopleLeftToCosine: number;
  minTemplatesPerPerson: number;
  folds: number;
  chosen: GridPointReport;
  grid: GridPointReport[];
  /** Decision value at which the SVM names a face; null = too few people to calibrate, the SVM always defers to cosine. */
  acceptDecision: number | null;
  /** Faces of held-out identities the threshold was calibrated on. */
  unknownSamples: number;
  /** The template set trained on (count and checksum), to tell whether the store has changed since. */
  templateSet: { count: number; idHashXor: string };
}

export interface ClassifierStatus {
  trained: boolean;
  /** The templates of the model changed since training (people added or faces removed): retrain. */
  stale: boolean | null;
  report: TrainingReport | null;
}

interface TrainedClassifier {
  report: TrainingReport;
  personIds: string[];
  classOf: Map<string, number>;
  model: SvmModel;
}

const SAVE_FORMAT = 'facegate-svm';

interface SavedClassifier {
  format: typeof SAVE_FORMAT;
  version: 1;
  report: TrainingReport;
  personIds: string[];
  model: Record<string, unknown>;
}

function encodeFloats(values: Float32Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
}

function decodeFloats(text: unknown, length: number): Float32Array {
  if (typeof text !== 'string') throw new Error('missing array');
  const bytes = Buffer.from(text, 'base64');
  if (bytes.byteLength !== length * 4) throw new Error(`array of ${bytes.byteLength / 4} values, expected ${length}`);
  const out = new Float32Array(length);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

function serialize(trained: TrainedClassifier): SavedClassifier {
  const { model } = trained;
  const arrays =
    model.kind === 'linear'
      ? { weights: encodeFloats(model.weights), biases: encodeFloats(model.biases) }
      : { supportVectors: encodeFloats(model.supportVectors), coefficients: encodeFloats(model.coefficients), biases: encodeFloats(model.biases) };
  const { kind, dims, classCount } = model;
  const shape = model.kind === 'rbf' ? { kind, dims, classCount, gamma: model.gamma, supportCount: model.supportCount } : { kind, dims, classCount };
  return { format: SAVE_FORMAT, version: 1, report: trained.report, personIds: trained.personIds, model: { ...shape, ...arrays } };
}

function deserialize(saved: SavedClassifier): TrainedClassifier {
  if (saved.format !== SAVE_FORMAT || saved.version !== 1) throw new Error('not a version-1 Facegate SVM');
  const m = saved.model;
  const dims = Number(m.dims);
  const classCount = Number(m.classCount);
  if (!(dims > 0) || classCount !== saved.personIds.length) throw new Error('the model and its people disagree');
  let model: SvmModel;
  if (m.kind === 'linear') {
    model = { kind: 'linear', dims, classCount, weights: decodeFloats(m.weights, classCount * dims), biases: decodeFloats(m.biases, classCount) };
  } else if (m.kind === 'rbf') {
    const supportCount = Number(m.supportCount);
    model = {
      kind: 'rbf',
      dims,
      classCount,
      gamma: Number(m.gamma),
      supportCount,
      supportVectors: decodeFloats(m.supportVectors, supportCount * dims),
      coefficients: decodeFloats(m.coefficients, classCount * supportCount),
      biases: decodeFloats(m.biases, classCount),
    };
  } else {
    throw new Error(`unknown kernel ${String(m.kind)}`);
  }
  return { report: saved.report, personIds: saved.personIds, classOf: new Map(saved.personIds.map((id, i) => [id, i])), model };
}

function gridPoint(params: SvmParams, accuracy: number): GridPointReport {
  return { kernel: params.kernel.kind, C: params.C, gamma: params.kernel.kind === 'rbf' ? params.kernel.gamma : null, accuracy: Number(accuracy.toFixed(4)) };
}

/** Drives training steps, giving the event loop a turn whenever a slice has run sliceMs. */
async function runSliced<T>(steps: Steps<T>, sliceMs: number): Promise<T> {
  let sliceStart = performance.now();
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
    if (performance.now() - sliceStart >= sliceMs) {
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
}

export class ClassifierService {
  readonly modelId: string;
  readonly #templates: Pick<TemplatesRepository, 'streamAll' | 'checksum'>;
  readonly #options: ClassifierServiceOptions;
  readonly #file: string;
  #current: TrainedClassifier | null = null;
  #training: Promise<TrainingReport> | null = null;

  constructor(templates: Pick<TemplatesRepository, 'streamAll' | 'checksum'>, options: ClassifierServiceOptions) {
    this.#templates = templates;
    this.#options = options;
    this.modelId = options.modelId;
    const readable = options.modelId.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 48);
    this.#file = join(options.dir, `${readable}-${createHash('sha256').update(options.modelId).digest('hex').slice(0, 12)}.json`);
  }

  get minTemplatesPerPerson(): number {
    return this.#options.minTemplatesPerPerson ?? MIN_TEMPLATES_FOR_SVM;
  }

  /** Loads the saved model when there is one; a missing or damaged file leaves the service untrained. */
  async load(): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch {
      return false;
    }
    try {
      const trained = deserialize(JSON.parse(text) as SavedClassifier);
      if (trained.report.modelId !== this.modelId) throw new Error(`trained for ${trained.report.modelId}`);
      this.#current = trained;
      return true;
    } catch (err) {
      this.#options.log?.(`classifier: the saved model ${this.#file} is not usable (${(err as Error).message}); train it again`);
      return false;
    }
  }

  async status(): Promise<ClassifierStatus> {
    const current = this.#current;
    if (!current) return { trained: false, stale: null, report: null };
    const now = await this.#templates.checksum(this.modelId);
    const stale = now.count !== current.report.templateSet.count || now.idHashXor !== current.report.templateSet.idHashXor;
    return { trained: true, stale, report: current.report };
  }

  /**
   * Trains on the templates in the store now, saves the model and puts it in force. Calls made while
   * a training runs share it. 409 not_enough_people when fewer than two people have enough templates.
   */
  train(): Promise<TrainingReport> {
    this.#training ??= this.#train().finally(() => (this.#training = null));
    return this.#training;
  }

  async #train(): Promise<TrainingReport> {
    const startedAt = Date.now();
    const before: GalleryChecksum = await this.#templates.checksum(this.modelId);
    const byPerson = new Map<string, Float32Array[]>();
    let dims = 0;
    for await (const batch of this.#templates.streamAll(this.modelId)) {
      for (const row of batch) {
        dims ||= row.embedding.length;
        if (row.embedding.length !== dims) continue;
        let list = byPerson.get(row.personId);
        if (!list) byPerson.set(row.personId, (list = []));
        list.push(row.embedding);
      }
    }
    const min = this.minTemplatesPerPerson;
    const personIds = [...byPerson.keys()].filter((id) => byPerson.get(id)!.length >= min).sort();
    if (personIds.length < 2) {
      throw new AppError(
        'not_enough_people',
        409,
        `the SVM needs at least two people with ${min} or more faces each; ${personIds.length} ha${personIds.length === 1 ? 's' : 've'} that many`,
        { peopleWithEnoughFaces: personIds.length, minTemplatesPerPerson: min },
      );
    }
    const count = personIds.reduce((n, id) => n + byPerson.get(id)!.length, 0);
    const set: TrainingSet = { dims, classCount: personIds.length, vectors: new Float32Array(count * dims), labels: new Int32Array(count) };
    let row = 0;
    personIds.forEach((id, c) => {
      for (const v of byPerson.get(id)!) {
        set.vectors.set(v, row * dims);
        set.labels[row++] = c;
      }
    });
    const fitted = await runSliced(fitClassifier(set, this.#options.grid ? { grid: this.#options.grid } : {}), this.#options.sliceMs ?? 20);
    const report: TrainingReport = {
      modelId: this.modelId,
      trainedAt: Date.now(),
      durationMs: Date.now() - startedAt,
      people: personIds.length,
      templates: count,
      peopleLeftToCosine: byPerson.size - personIds.length,
      minTemplatesPerPerson: min,
      folds: fitted.folds,
      chosen: gridPoint(fitted.params, fitted.best.accuracy),
      grid: fitted.grid.map((g: CrossValidation) => gridPoint(g.params, g.accuracy)),
      acceptDecision: fitted.acceptDecision === null ? null : Number(fitted.acceptDecision.toFixed(6)),
      unknownSamples: fitted.unknownSamples,
      templateSet: { count: before.count, idHashXor: before.idHashXor },
    };
    const trained: TrainedClassifier = { report, personIds, classOf: new Map(personIds.map((id, i) => [id, i])), model: fitted.model };
    await this.#save(trained);
    this.#current = trained;
    this.#options.log?.(
      `classifier: trained on ${report.people} people / ${report.templates} faces in ${report.durationMs} ms: ` +
        `${report.chosen.kernel} C=${report.chosen.C}${report.chosen.gamma === null ? '' : ` gamma=${report.chosen.gamma}`}, CV accuracy ${report.chosen.accuracy}`,
    );
    return report;
  }

  async #save(trained: TrainedClassifier): Promise<void> {
    await mkdir(this.#options.dir, { recursive: true });
    const tmp = `${this.#file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(serialize(trained)));
    await rename(tmp, this.#file);
  }

  /**
   * The identity scorer for recognition: the cosine search's candidates (those that reach the
   * verification threshold), re-ranked by the SVM when chooseBySvm says it is the one to ask, its decision put on the cosine scale so the
   * configured policy (threshold, margin) applies unchanged; otherwise the cosine candidates as is.
   */
  scorer(gallery: Pick<GalleryService, 'search'>, searchK: number, searchThreshold: number, verifyThreshold: number): IdentityScorer {
    return {
      name: 'svm',
      candidates: (probe: Embedding): IdentityCandidates => {
        const cosine = gallery.search(probe, searchK);
        const fallback: IdentityCandidates = cosine.candidateFloor === undefined ? { matches: cosine.matches } : { matches: cosine.matches, candidateFloor: cosine.candidateFloor };
        const current = this.#current;
        if (!current || probe.modelId !== this.modelId || probe.vector.length !== current.model.dims) return fallback;
        const values = decisionValues(current.model, probe.vector);
        const choice = chooseBySvm(
          values,
          cosine.people.map((p) => ({ classIndex: current.classOf.get(p.personId), similarity: p.templates[0]!.similarity })),
          current.report.acceptDecision,
          verifyThreshold,
        );
        if (!choice) return fallback;
        const accept = current.report.acceptDecision!;
        return {
          matches: [{ personId: cosine.people[choice.position]!.personId, similarity: decisionOnCosineScale(choice.decision, accept, searchThreshold) }],
          candidateFloor: decisionOnCosineScale(choice.runnerUp, accept, searchThreshold),
        };
      },
    };
  }
}
