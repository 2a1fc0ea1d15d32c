import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IdSetChecksum, sameIdSet, type IdSetFingerprint } from '../domain/id-checksum.ts';
import type { TemplateMatch } from '../domain/identity.ts';
import { replaceDirAtomically, writeFileSynced } from './atomic-dir.ts';
import { ExactIndex, type ExactIndexOptions } from './exact-index.ts';
import { HnswIndex, type HnswIndexOptions, type HnswParams } from './hnsw-index.ts';
import { learnSubspace } from './subspace.ts';
import { DimensionMismatchError, IndexLoadError, type VectorIndex, type VectorIndexKind } from './vector-index.ts';

/*
 * The in-memory face gallery: one vector index per embedding model id (vectors of different
 * models are never compared), plus which person each template belongs to, plus a fingerprint of
 * the template set (count + id-hash XOR, the same one the store computes) to tell whether the
 * gallery is in step with the store.
 *
 * Small galleries use the exact index; when a model's template count passes `hnswAbove`, its index
 * is rebuilt as HNSW in the background (in chunks, yielding to the event loop) while the exact
 * index keeps answering, and mutations made meanwhile are replayed onto the new index before it
 * takes over. The HNSW index does not keep float vectors, so going back to exact (after mass
 * deletions) happens at the next rebuild from the store: `wantsRebuild(modelId)` says when.
 *
 * Every mutation is synchronous, so the caller can apply it in the same unit of work as the
 * store's transaction (after the commit) without an await in between.
 */

/** A stored template as the gallery needs it (the store's FaceTemplate fits). */
export interface GalleryTemplate {
  id: string;
  personId: string;
  modelId: string;
  embedding: Float32Array;
}

/** A row streamed from the store to rebuild one model's gallery (the store's GalleryVector fits). */
export interface GalleryRow {
  id: string;
  personId: string;
  embedding: Float32Array;
}

/** A template near the probe: the gallery's answer, and the input of decideIdentity / checkDuplicate. */
export interface GalleryMatch extends TemplateMatch {
  templateId: string;
}

export interface PersonMatches {
  personId: string;
  /** This person's retrieved templates, most similar first. */
  templates: { templateId: string; similarity: number }[];
}

export interface PeopleSearchResult {
  /** Every retrieved template, most similar first. */
  matches: GalleryMatch[];
  /** The same, grouped per person; people ordered by their best template. */
  people: PersonMatches[];
  /** The k-th similarity when the search came back full (see IdentityEvidence.candidateFloor). */
  candidateFloor?: number;
}

export interface GalleryOptions {
  /** A model's index becomes HNSW when its template count passes this. */
  hnswAbove?: number;
  /** Below this count an HNSW index asks to be rebuilt as exact (default hnswAbove / 2: hysteresis). */
  exactBelow?: number;
  hnsw?: HnswIndexOptions;
  exact?: ExactIndexOptions;
  /**
   * Most vectors added between yields to the event loop in rebuilds and background switches
   * (default 64); fewer when they take longer than buildSliceMs.
   */
  buildChunkSize?: number;
  /**
   * Event-loop time a rebuild or background switch spends adding vectors before it yields
   * (default 20 ms). An HNSW insert with the default parameters costs ≈1–3 ms once the graph
   * holds tens of thousands of templates, so a fixed 64 stalled the server for up to ≈200 ms at
   * a time: camera results and API calls waited behind it for the minutes a build lasts.
   * `npm run bench:gallery-rebuild` (30k templates): event-loop delay p99 246–292 ms before,
   * 42–70 ms with 20-ms slices, build time the same.
   */
  buildSliceMs?: number;
  /**
   * Learn a low-rank subspace from the templates when an HNSW index is built and store vectors as
   * coordinates in it (default true; see subspace.ts). Vectors that are not low-rank get none.
   */
  subspace?: boolean;
}

/** Templates sampled to learn an HNSW index's subspace (evenly spread over the gallery, or the first ones streamed). */
export const SUBSPACE_SAMPLE = 10_000;
/** An HNSW index asks for a rebuild (a new subspace) once this share of its vectors was added outside its subspace. */
const OUTSIDE_SUBSPACE_REBUILD_SHARE = 0.01;

/**
 * 50k templates (≈10k people): up to there the exact index answers in ≈1–2 ms on one thread
 * (≈3–4.5 ms at 100k) with no recall loss, in ≈2.7 KiB a template; past it HNSW answers in
 * ≈1–3 ms at recall@1 0.96–0.99 (ef 128–256 at 100k) in ≈0.85 KiB a template (float16 over the
 * learnt subspace). Measured with bench/gallery.ts.
 */
export const DEFAULT_HNSW_ABOVE = 50_000;

type PendingOp =
  | { op: 'add'; id: string; personId: string; vector: Float32Array }
  | { op: 'remove'; id: string }
  /** Logged for a rebuild only: the stream may hold templates of the person that the live gallery lacks. */
  | { op: 'removePerson'; personId: string };

interface ModelState {
  dims: number;
  index: VectorIndex;
  personOf: Map<string, string>;
  checksum: IdSetChecksum;
  /** Mutations made while a background build runs; replayed onto the new index before the swap. */
  pending: PendingOp[] | null;
  /** Bumped when a build starts or the state is replaced; a build that finds it changed gives up. */
  generation: number;
  upgrade: Promise<void> | null;
  /** The last background upgrade failed: stay exact (still correct) until the next rebuild. */
  upgradeError?: Error;
}

const META_FILE = 'gallery.json';
const META_FORMAT = 'facegate-gallery-model';

interface ModelMeta {
  format: typeof META_FORMAT;
  version: 1;
  modelId: string;
  dims: number;
  kind: VectorIndexKind;
  fingerprint: IdSetFingerprint;
  /** [templateId, personId] pairs. */
  templates: [string, string][];
}

/** The folder name of one model's saved gallery: readable, and unique by a hash of the id. */
function modelDirName(modelId: string): string {
  const readable = modelId.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 48);
  const hash = createHash('sha256').update(modelId).digest('hex').slice(0, 12);
  return `${readable}-${hash}`;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Sizes the slices of a long build so that each keeps the event loop about budgetMs. */
export class BuildSlices {
  #size: number;

  constructor(
    readonly budgetMs: number,
    readonly maxSize: number,
  ) {
    this.#size = Math.min(8, maxSize);
  }

  /** Vectors to add in the next slice. */
  get size(): number {
    return this.#size;
  }

  /** Records that the last slice added `count` vectors in `ms`; the next one is sized from that rate. */
  took(count: number, ms: number): void {
    if (count <= 0) return;
    const perVectorMs = Math.max(ms / count, 1e-4);
    this.#size = Math.max(1, Math.min(this.maxSize, Math.floor(this.budgetMs / perVectorMs)));
  }
}

/** index.addMany in budgeted slices with a yield between them; stops early (false) once `wanted` says no. */
async function addInSlices(index: VectorIndex, ids: readonly string[], vectors: Float32Array, slices: BuildSlices, wanted: () => boolean = () => true): Promise<boolean> {
  const dims = index.dims;
  for (let start = 0; start < ids.length; ) {
    if (!wanted()) return false;
    const end = Math.min(ids.length, start + slices.size);
    const began = performance.now();
    index.addMany(ids.slice(start, end), vectors.subarray(start * dims, end * dims));
    slices.took(end - start, performance.now() - began);
    start = end;
    if (start < ids.length) await yieldToEventLoop();
  }
  return true;
}

export class Gallery {
  readonly hnswAbove: number;
  readonly exactBelow: number;
  readonly #hnswOptions: HnswIndexOptions;
  readonly #exactOptions: ExactIndexOptions;
  readonly #chunkSize: number;
  readonly #sliceMs: number;
  readonly #learnSubspace: boolean;
  readonly #models = new Map<string, ModelState>();
  /** Rebuilds in flight per model: the newest one's number and the mutations made since it started. */
  readonly #rebuilds = new Map<string, { ticket: number; log: PendingOp[] }>();
  #rebuildTickets = 0;

  constructor(options: GalleryOptions = {}) {
    this.hnswAbove = options.hnswAbove ?? DEFAULT_HNSW_ABOVE;
    this.exactBelow = options.exactBelow ?? Math.floor(this.hnswAbove / 2);
    if (!(this.exactBelow <= this.hnswAbove)) throw new RangeError('exactBelow must not exceed hnswAbove');
    this.#hnswOptions = options.hnsw ?? {};
    this.#exactOptions = options.exact ?? {};
    this.#chunkSize = options.buildChunkSize ?? 64;
    this.#sliceMs = options.buildSliceMs ?? 20;
    this.#learnSubspace = options.subspace ?? true;
  }

  /** Model ids the gallery holds templates of (or held: an emptied model stays until rebuilt). */
  models(): string[] {
    return [...this.#models.keys()];
  }

  size(modelId: string): number {
    return this.#models.get(modelId)?.personOf.size ?? 0;
  }

  kind(modelId: string): VectorIndexKind | undefined {
    return this.#models.get(modelId)?.index.kind;
  }

  has(templateId: string, modelId?: string): boolean {
    return this.#modelOfTemplate(templateId, modelId) !== undefined;
  }

  /** Ids of the model's templates. */
  templateIds(modelId: string): IterableIterator<string> {
    return (this.#models.get(modelId)?.personOf ?? new Map<string, string>()).keys();
  }

  personOf(templateId: string, modelId?: string): string | undefined {
    const modelIdFound = this.#modelOfTemplate(templateId, modelId);
    return modelIdFound === undefined ? undefined : this.#models.get(modelIdFound)!.personOf.get(templateId);
  }

  /** Count and id-hash XOR of the model's templates, comparable with the store's checksum. */
  checksum(modelId: string): IdSetFingerprint {
    return this.#models.get(modelId)?.checksum.fingerprint() ?? { count: 0, idHashXor: '0000000000000000' };
  }

  /** True when the gallery holds exactly the template set the store describes (count and checksum). */
  isInStep(modelId: string, store: IdSetFingerprint): boolean {
    return sameIdSet(this.checksum(modelId), store);
  }

  /**
   * True when the model's index no longer suits its templates and only a rebuild can change it:
   * an HNSW index of a gallery shrunk below exactBelow, or one whose subspace misses more than 1 %
   * of the vectors added since it was learnt.
   */
  wantsRebuild(modelId: string): boolean {
    const state = this.#models.get(modelId);
    if (state === undefined || !(state.index instanceof HnswIndex) || state.upgrade !== null) return false;
    const subspace = state.index.subspaceStatus();
    return state.personOf.size < this.exactBelow || (subspace !== null && subspace.outside > Math.max(100, OUTSIDE_SUBSPACE_REBUILD_SHARE * state.personOf.size));
  }

  /** The subspace the model's HNSW index stores coordinates in (rank, vectors added outside it); null for none. */
  subspaceStatus(modelId: string): { rank: number; outside: number } | null {
    const index = this.#models.get(modelId)?.index;
    return index instanceof HnswIndex ? index.subspaceStatus() : null;
  }

  /** The parameters of the model's HNSW index; null when it has none (exact search). */
  hnswParams(modelId: string): HnswParams | null {
    const index = this.#models.get(modelId)?.index;
    return index instanceof HnswIndex ? index.params : null;
  }

  /** Why the last background switch to HNSW failed, if it did (the model then stays exact). */
  upgradeError(modelId: string): Error | undefined {
    return this.#models.get(modelId)?.upgradeError;
  }

  /** Bytes of memory held by the model's index (estimate; see VectorIndex.memoryBytes). */
  memoryBytes(modelId: string): number {
    return this.#models.get(modelId)?.index.memoryBytes() ?? 0;
  }

  /**
   * Adds a template; a template id already held is replaced (so replaying a change is harmless).
   * Throws DimensionMismatchError when the vector's length differs from the model's other templates.
   */
  add(template: GalleryTemplate): void {
    const state = this.#stateFor(template.modelId, template.embedding.length);
    const other = this.#modelOfTemplate(template.id);
    if (other !== undefined && other !== template.modelId) this.remove(template.id, other);
    this.#apply(template.modelId, state, { op: 'add', id: template.id, personId: template.personId, vector: template.embedding });
    if (state.index.kind === 'exact' && state.personOf.size > this.hnswAbove && state.upgrade === null && !state.upgradeError) {
      this.#startUpgrade(template.modelId, state);
    }
  }

  /** Removes a template (from the given model, or whichever holds it); false when none held it. */
  remove(templateId: string, modelId?: string): boolean {
    const found = this.#modelOfTemplate(templateId, modelId);
    const op: PendingOp = { op: 'remove', id: templateId };
    if (found !== undefined) this.#apply(found, this.#models.get(found)!, op);
    // A rebuild's stream may hold the template even when the live gallery does not.
    this.#logForRebuilds(op, modelId, found);
    return found !== undefined;
  }

  /** Removes every template of a person (in one model, or all); returns how many. */
  removePerson(personId: string, modelId?: string): number {
    let removed = 0;
    for (const [id, state] of this.#models) {
      if (modelId !== undefined && id !== modelId) continue;
      const templateIds: string[] = [];
      for (const [templateId, owner] of state.personOf) if (owner === personId) templateIds.push(templateId);
      for (const templateId of templateIds) this.#apply(id, state, { op: 'remove', id: templateId });
      removed += templateIds.length;
    }
    this.#logForRebuilds({ op: 'removePerson', personId }, modelId);
    return removed;
  }

  /** The k templates of this model nearest to the query, with their people, most similar first. */
  search(modelId: string, query: Float32Array, k: number): GalleryMatch[] {
    const state = this.#models.get(modelId);
    if (!state || state.personOf.size === 0) return [];
    if (query.length !== state.dims) throw new DimensionMismatchError(state.dims, query.length);
    const matches: GalleryMatch[] = [];
    for (const { id, similarity } of state.index.search(query, k)) {
      const personId = state.personOf.get(id);
      if (personId !== undefined) matches.push({ templateId: id, personId, similarity });
    }
    return matches;
  }

  /** search(), grouped per person, with the retrieval floor that the identity margin needs. */
  searchPeople(modelId: string, query: Float32Array, k: number): PeopleSearchResult {
    const matches = this.search(modelId, query, k);
    const byPerson = new Map<string, PersonMatches>();
    for (const m of matches) {
      let group = byPerson.get(m.personId);
      if (!group) byPerson.set(m.personId, (group = { personId: m.personId, templates: [] }));
      group.templates.push({ templateId: m.templateId, similarity: m.similarity });
    }
    const result: PeopleSearchResult = { matches, people: [...byPerson.values()] };
    if (matches.length >= k && k > 0) result.candidateFloor = matches[matches.length - 1]!.similarity;
    return result;
  }

  /**
   * Replaces a model's gallery with the rows streamed from the store (batches or single rows).
   * The old index keeps answering until the new one is complete; mutations made meanwhile are
   * replayed onto the new one. `expectedCount` (the store's count) picks the index kind up front.
   */
  async rebuild(
    modelId: string,
    rows: AsyncIterable<GalleryRow | readonly GalleryRow[]> | Iterable<GalleryRow | readonly GalleryRow[]>,
    options: { expectedCount?: number } = {},
  ): Promise<void> {
    const ticket = ++this.#rebuildTickets;
    this.#rebuilds.set(modelId, { ticket, log: [] });
    const existing = this.#models.get(modelId);
    if (existing) existing.generation++; // an upgrade of the old index is moot now
    const isCurrent = (): boolean => this.#rebuilds.get(modelId)?.ticket === ticket;

    const useHnsw = (options.expectedCount ?? 0) > this.hnswAbove;
    let index: VectorIndex | undefined;
    let dims: number | undefined;
    const personOf = new Map<string, string>();
    let ids: string[] = [];
    let vectors: Float32Array | undefined;
    let filled = 0;
    // An HNSW index waits for its first SUBSPACE_SAMPLE rows, to learn its subspace from them.
    const firstBatch = useHnsw && this.#learnSubspace ? SUBSPACE_SAMPLE : this.#chunkSize;
    let batchSize = firstBatch;
    const slices = new BuildSlices(this.#sliceMs, this.#chunkSize);
    const flush = async (): Promise<void> => {
      if (filled > 0 && dims !== undefined) {
        const d = dims;
        index ??= await this.#newHnsw(d, vectors!.subarray(0, filled * d));
        await addInSlices(index, ids, vectors!.subarray(0, filled * d), slices);
      }
      ids = [];
      filled = 0;
      batchSize = this.#chunkSize;
      await yieldToEventLoop();
    };
    const take = async (row: GalleryRow): Promise<void> => {
      if (dims === undefined) {
        dims = row.embedding.length;
        if (existing && existing.dims !== dims) throw new DimensionMismatchError(existing.dims, dims);
        if (!useHnsw) {
          const exact = new ExactIndex(dims, this.#exactOptions);
          if (options.expectedCount) exact.reserve(options.expectedCount);
          index = exact;
        }
        vectors = new Float32Array(Math.max(firstBatch, this.#chunkSize) * dims);
      }
      if (row.embedding.length !== dims) throw new DimensionMismatchError(dims, row.embedding.length);
      personOf.set(row.id, row.personId);
      vectors!.set(row.embedding, filled * dims);
      ids.push(row.id);
      filled++;
      if (filled === batchSize) await flush();
    };
    try {
      for await (const item of rows as AsyncIterable<GalleryRow | readonly GalleryRow[]>) {
        if (!isCurrent()) return; // a newer rebuild of this model took over
        if (Array.isArray(item)) for (const row of item as readonly GalleryRow[]) await take(row);
        else await take(item as GalleryRow);
      }
      await flush();
    } catch (error) {
      if (isCurrent()) this.#rebuilds.delete(modelId);
      throw error;
    }
    if (!isCurrent()) return;
    const log = this.#rebuilds.get(modelId)!.log;
    this.#rebuilds.delete(modelId);
    const current = this.#models.get(modelId);
    const modelDims = index?.dims ?? current?.dims;
    if (modelDims === undefined) return; // nothing streamed, nothing held, nothing added meanwhile
    const state: ModelState = {
      dims: modelDims,
      index: index ?? new ExactIndex(modelDims, this.#exactOptions),
      personOf,
      checksum: IdSetChecksum.of(personOf.keys()),
      pending: null,
      generation: (current?.generation ?? 0) + 1,
      upgrade: null,
    };
    // Mutations made while streaming: replaying them is right whether or not the stream saw them
    // (adds replace, removes of absent ids do nothing).
    for (const op of log) this.#applyTo(state, op);
    if (current) current.generation++;
    this.#models.set(modelId, state);
    if (state.index.kind === 'exact' && state.personOf.size > this.hnswAbove) this.#startUpgrade(modelId, state);
  }

  /** Resolves when no background index build is running. */
  async whenIdle(): Promise<void> {
    for (;;) {
      const running = [...this.#models.values()].map((s) => s.upgrade).filter((u): u is Promise<void> => u !== null);
      if (running.length === 0) return;
      await Promise.all(running);
    }
  }

  /** Writes every model's gallery under dir (one folder per model, each replaced atomically). */
  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    for (const [modelId, state] of this.#models) {
      const meta: ModelMeta = {
        format: META_FORMAT,
        version: 1,
        modelId,
        dims: state.dims,
        kind: state.index.kind,
        fingerprint: state.checksum.fingerprint(),
        templates: [...state.personOf],
      };
      await replaceDirAtomically(join(dir, modelDirName(modelId)), async (tmp) => {
        await state.index.save(join(tmp, 'index'));
        await writeFileSynced(join(tmp, META_FILE), JSON.stringify(meta));
      });
    }
  }

  /**
   * Reads a gallery save() wrote. A model whose files are missing or do not check is left out and
   * named in `failed`: the caller rebuilds it from the store (as it does when isInStep is false).
   */
  static async load(dir: string, options: GalleryOptions = {}): Promise<{ gallery: Gallery; failed: { dir: string; error: string }[] }> {
    const gallery = new Gallery(options);
    const failed: { dir: string; error: string }[] = [];
    let entries: string[];
    try {
      entries = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory() && !/\.(tmp|old)-/.test(e.name)).map((e) => e.name);
    } catch {
      return { gallery, failed };
    }
    for (const name of entries) {
      const modelDir = join(dir, name);
      try {
        const meta = JSON.parse(await readFile(join(modelDir, META_FILE), 'utf8')) as ModelMeta;
        if (meta.format !== META_FORMAT || meta.version !== 1) throw new IndexLoadError(`${modelDir} is not a version-1 gallery`);
        const index =
          meta.kind === 'hnsw'
            ? await HnswIndex.load(join(modelDir, 'index'), { buildThreads: options.hnsw?.buildThreads, expansionSearch: options.hnsw?.expansionSearch })
            : await ExactIndex.load(join(modelDir, 'index'), options.exact);
        const personOf = new Map(meta.templates);
        const checksum = IdSetChecksum.of(personOf.keys());
        if (index.size !== personOf.size || index.dims !== meta.dims || !sameIdSet(checksum.fingerprint(), meta.fingerprint)) {
          throw new IndexLoadError(`${modelDir}: index and template map disagree`);
        }
        for (const id of personOf.keys()) if (!index.has(id)) throw new IndexLoadError(`${modelDir}: template ${id} missing from the index`);
        gallery.#models.set(meta.modelId, { dims: meta.dims, index, personOf, checksum, pending: null, generation: 0, upgrade: null });
      } catch (error) {
        failed.push({ dir: modelDir, error: (error as Error).message });
      }
    }
    return { gallery, failed };
  }

  #stateFor(modelId: string, dims: number): ModelState {
    let state = this.#models.get(modelId);
    if (!state) {
      state = {
        dims,
        index: new ExactIndex(dims, this.#exactOptions),
        personOf: new Map(),
        checksum: new IdSetChecksum(),
        pending: null,
        generation: 0,
        upgrade: null,
      };
      this.#models.set(modelId, state);
    } else if (state.dims !== dims) {
      throw new DimensionMismatchError(state.dims, dims);
    }
    return state;
  }

  #modelOfTemplate(templateId: string, modelId?: string): string | undefined {
    if (modelId !== undefined) return this.#models.get(modelId)?.personOf.has(templateId) ? modelId : undefined;
    for (const [id, state] of this.#models) if (state.personOf.has(templateId)) return id;
    return undefined;
  }

  #apply(modelId: string, state: ModelState, op: PendingOp): void {
    this.#applyTo(state, op);
    const rebuild = this.#rebuilds.get(modelId);
    if (!state.pending && !rebuild) return;
    // The vector is copied: the caller may reuse its buffer before the replay.
    const logged = op.op === 'add' ? { ...op, vector: op.vector.slice() } : op;
    state.pending?.push(logged);
    rebuild?.log.push(logged);
  }

  /** Logs op for the rebuilds in flight (of modelId, or all), except the one of `already` (logged by #apply). */
  #logForRebuilds(op: PendingOp, modelId: string | undefined, already?: string): void {
    for (const [id, rebuild] of this.#rebuilds) if ((modelId === undefined || id === modelId) && id !== already) rebuild.log.push(op);
  }

  #applyTo(state: ModelState, op: PendingOp): void {
    if (op.op === 'removePerson') {
      const templateIds: string[] = [];
      for (const [templateId, owner] of state.personOf) if (owner === op.personId) templateIds.push(templateId);
      for (const templateId of templateIds) this.#applyTo(state, { op: 'remove', id: templateId });
    } else if (op.op === 'add') {
      state.index.add(op.id, op.vector);
      if (!state.personOf.has(op.id)) state.checksum.add(op.id);
      state.personOf.set(op.id, op.personId);
    } else if (state.personOf.has(op.id)) {
      state.index.remove(op.id);
      state.personOf.delete(op.id);
      state.checksum.remove(op.id);
    }
  }

  /** An empty HNSW index, over a subspace learnt from the sample when subspaces are on and the sample is low-rank. */
  async #newHnsw(dims: number, sample: Float32Array): Promise<HnswIndex> {
    const subspace = this.#learnSubspace && sample.length > 0 ? await learnSubspace(sample, dims, { pause: yieldToEventLoop }) : null;
    return new HnswIndex(dims, { ...this.#hnswOptions, subspace });
  }

  /** Builds an HNSW copy of an exact index in chunks, then swaps it in. */
  #startUpgrade(modelId: string, state: ModelState): void {
    const exact = state.index as ExactIndex;
    const generation = ++state.generation;
    state.pending = [];
    const run = async (): Promise<void> => {
      const snapshot = [...exact.ids()];
      const sampleSize = this.#learnSubspace ? Math.min(snapshot.length, SUBSPACE_SAMPLE) : 0;
      const sample = new Float32Array(sampleSize * state.dims);
      for (let j = 0; j < sampleSize; j++) {
        const vector = exact.vectorOf(snapshot[Math.floor((j * snapshot.length) / sampleSize)]!);
        if (vector) sample.set(vector, j * state.dims);
      }
      const current = (): boolean => state.generation === generation && this.#models.get(modelId) === state;
      const hnsw = await this.#newHnsw(state.dims, sample);
      if (!current()) return;
      const slices = new BuildSlices(this.#sliceMs, this.#chunkSize);
      const chunk = new Float32Array(this.#chunkSize * state.dims);
      for (let start = 0; start < snapshot.length; start += this.#chunkSize) {
        await yieldToEventLoop();
        // Ids removed since the snapshot are skipped; the replay below settles everything else.
        const ids: string[] = [];
        for (const id of snapshot.slice(start, start + this.#chunkSize)) {
          const vector = exact.vectorOf(id);
          if (!vector) continue;
          chunk.set(vector, ids.length * state.dims);
          ids.push(id);
        }
        if (!(await addInSlices(hnsw, ids, chunk.subarray(0, ids.length * state.dims), slices, current))) return;
      }
      if (!current()) return;
      for (const op of state.pending ?? []) {
        if (op.op === 'add') hnsw.add(op.id, op.vector);
        else if (op.op === 'remove') hnsw.remove(op.id);
      }
      state.index = hnsw;
      state.pending = null;
    };
    state.upgrade = run()
      .catch((error: unknown) => {
        // The exact index is still complete and correct; only speed is lost.
        state.upgradeError = error instanceof Error ? error : new Error(String(error));
      })
      .finally(() => {
        if (state.generation === generation) state.pending = null;
        state.upgrade = null;
      });
  }
}
