import { rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { AppError } from '../domain/errors.ts';
import type { IdSetFingerprint } from '../domain/id-checksum.ts';
import { Gallery, type GalleryMatch, type GalleryOptions, type PeopleSearchResult } from '../gallery/gallery.ts';
import type { VectorIndexKind } from '../gallery/vector-index.ts';
import { NearestScan, newView, viewSources, type RecallEstimate, type RecallQuery } from '../gallery/recall-check.ts';
import type { FaceTemplate, GalleryChecksum, Repositories, Store } from '../store/index.ts';

/*
 * The face gallery of the configured embedding model, kept in step with the store.
 *
 * Writes that touch templates go through commit(): the store transaction runs first, and the index
 * changes it made are applied only once it has committed, under one lock, so a failed transaction
 * leaves the index untouched and the index never shows a template the store does not hold.
 * Templates of other model ids stay in the store but are never loaded or searched.
 *
 * At start the saved index is loaded and compared with the store by count and id-hash checksum
 * (not by a guess such as a timestamp); when it is missing or differs it is rebuilt from the
 * store. While running, the gallery change log is tailed, so writes made by another process on
 * the same database (a CLI import) reach the index too.
 */

export interface GalleryServiceOptions {
  /** The embedding model whose templates are indexed and searched. */
  modelId: string;
  /** Where saved indexes live (<dataDir>/gallery); each model gets a folder of its own. */
  dir: string;
  /** Save (when changed) and catch up with other writers this often, in milliseconds; 0 = never. */
  saveEveryMs: number;
  hnswAboveTemplates: number;
  /** Learn a subspace for an HNSW index and store coordinates in it (gallery.hnswSubspace; default true). */
  hnswSubspace?: boolean;
  /** Candidates an HNSW search keeps (gallery.hnswExpansionSearch; default DEFAULT_HNSW_PARAMS'). */
  hnswExpansionSearch?: number;
  /**
   * false = the index is never written to disk (and a saved one is deleted at start): with
   * embeddings encrypted at rest, clear copies must not sit in index files; it is rebuilt from the
   * store at every start instead. Default true.
   */
  persist?: boolean;
  log?: (message: string) => void;
}

export interface InStepCheck {
  at: number;
  inStep: boolean;
  store: GalleryChecksum;
  gallery: IdSetFingerprint;
}

export interface GalleryStatus {
  modelId: string;
  /** Templates indexed. */
  size: number;
  kind: VectorIndexKind | 'empty';
  /** How the index was obtained at start: loaded from disk, rebuilt from the store, or empty on both. */
  startedFrom: 'saved' | 'rebuilt' | 'empty' | null;
  /** Why it was rebuilt, when it was. */
  rebuildReason: string | null;
  lastCheck: InStepCheck | null;
  lastSavedAt: number | null;
  /** Changes not yet saved to disk. */
  unsaved: boolean;
  /** Templates of other embedding models: kept in the store, never searched. */
  otherModels: { modelId: string; count: number }[];
  /** The HNSW index's subspace: its rank and the templates added outside it since it was learnt (null: whole vectors). */
  subspace: { rank: number; outside: number } | null;
  /** Candidates the HNSW index's search keeps (ef); null for the exact index. */
  hnswExpansionSearch: number | null;
}

export interface RecallCheck extends RecallEstimate {
  modelId: string;
  kind: VectorIndexKind | 'empty';
  hnswExpansionSearch: number | null;
  /** Templates in the gallery when the check began. */
  size: number;
  elapsedMs: number;
}

type IndexChange = { op: 'add'; template: FaceTemplate } | { op: 'remove'; templateId: string } | { op: 'removePerson'; personId: string };

/** Runs async critical sections one at a time, in call order. */
class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn, fn);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/** The folder of one model's saved gallery: readable, and unique by a hash of the id. */
function modelFolder(modelId: string): string {
  const readable = modelId.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 48);
  return `${readable}-${createHash('sha256').update(modelId).digest('hex').slice(0, 12)}`;
}

/** A view of target whose named methods are replaced (the rest stay bound to target, private fields intact). */
function intercept<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get(t, prop) {
      if (Object.hasOwn(overrides, prop)) return (overrides as Record<string | symbol, unknown>)[prop];
      const value: unknown = Reflect.get(t, prop, t);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(t) : value;
    },
  });
}

const CHANGE_PAGE = 1000;

export class GalleryService {
  readonly modelId: string;
  readonly #store: Store;
  readonly #options: GalleryServiceOptions;
  readonly #dir: string;
  readonly #lock = new Mutex();
  #gallery: Gallery;
  /** The change log position the index reflects (every change up to it is applied). */
  #seenSeq = 0;
  #unsaved = false;
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #closed = false;
  #startedFrom: GalleryStatus['startedFrom'] = null;
  #rebuildReason: string | null = null;
  #lastCheck: InStepCheck | null = null;
  #lastSavedAt: number | null = null;
  #measuringRecall = false;

  constructor(store: Store, options: GalleryServiceOptions) {
    this.#store = store;
    this.#options = options;
    this.modelId = options.modelId;
    this.#dir = join(options.dir, modelFolder(options.modelId));
    this.#gallery = new Gallery(this.#galleryOptions());
  }

  /** Loads the saved index, rebuilds it when missing or out of step with the store, and starts the save timer. */
  async start(): Promise<void> {
    if (this.#options.persist === false) await rm(this.#options.dir, { recursive: true, force: true });
    const { gallery, failed } = await Gallery.load(this.#dir, this.#galleryOptions());
    for (const f of failed) this.#log(`gallery: the saved index ${f.dir} is not usable (${f.error})`);
    // The folder is this model's own; anything else in it is not ours to search.
    const usable = gallery.models().every((m) => m === this.modelId);
    if (usable) this.#gallery = gallery;
    const held = usable && gallery.models().includes(this.modelId);
    await this.#lock.run(async () => {
      const check = await this.#check();
      if (check.inStep) {
        this.#seenSeq = check.store.latestSeq;
        this.#startedFrom = held ? 'saved' : 'empty';
        return;
      }
      const reason = held
        ? `the saved index holds ${check.gallery.count} templates (checksum ${check.gallery.idHashXor}), the store ${check.store.count} (checksum ${check.store.idHashXor})`
        : failed.length > 0
          ? 'the saved index could not be read'
          : 'no saved index';
      await this.#rebuild(reason);
      this.#startedFrom = 'rebuilt';
    });
    if (this.#unsaved) await this.save();
    if (this.#options.saveEveryMs > 0) {
      this.#timer = setInterval(() => {
        this.#ticking ??= this.#tick().finally(() => (this.#ticking = undefined));
      }, this.#options.saveEveryMs);
      this.#timer.unref();
    }
  }

  /** Templates indexed for the configured model. */
  get size(): number {
    return this.#gallery.size(this.modelId);
  }

  /** The k templates nearest to the probe, grouped per person (see Gallery.searchPeople). */
  search(probe: { vector: Float32Array; modelId: string }, k: number): PeopleSearchResult {
    if (probe.modelId !== this.modelId) {
      throw new AppError('model_mismatch', 500, `an embedding of model ${probe.modelId} cannot be searched in the gallery of ${this.modelId}`);
    }
    return this.#gallery.searchPeople(this.modelId, probe.vector, k);
  }

  /**
   * The templates at or above minSimilarity that do not belong to ownPersonId, most similar first:
   * the search widens until it has passed every template of ownPersonId that could hide another
   * person's (the input of checkDuplicate).
   */
  searchOthers(probe: { vector: Float32Array; modelId: string }, minSimilarity: number, ownPersonId: string | undefined, k: number): GalleryMatch[] {
    for (let width = k; ; width *= 4) {
      const { matches, candidateFloor } = this.search(probe, width);
      const others = matches.filter((m) => m.personId !== ownPersonId && m.similarity >= minSimilarity);
      const exhausted = candidateFloor === undefined || candidateFloor < minSimilarity || width >= this.size;
      if (others.length > 0 || exhausted) return others;
    }
  }

  /**
   * A unit of work: fn's writes through `tx` commit together, and the index changes they imply
   * (tx.templates.add / tx.templates.delete / tx.people.delete) are applied after the commit, or
   * not at all when fn or the commit throws. Units run one at a time, so a search made inside fn
   * (a duplicate check) sees every earlier unit's changes and none of a later one's. fn must not
   * call commit() itself.
   */
  commit<T>(fn: (tx: Repositories) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new AppError('shutting_down', 503, 'the server is shutting down'));
    return this.#lock.run(async () => {
      const changes: IndexChange[] = [];
      const result = await this.#store.transaction((tx) => fn(this.#recording(tx, changes)));
      for (const change of changes) this.#apply(change);
      return result;
    });
  }

  /**
   * Compares the index with the store (count and id-hash checksum of this model's templates) and
   * rebuilds it when they differ. Returns the comparison made before any rebuild.
   */
  verify(): Promise<InStepCheck> {
    return this.#lock.run(async () => {
      await this.#catchUp();
      let check = await this.#check();
      // Another node (or process) committed between the catch-up and the checksum's snapshot: that
      // is not drift. Catch up to the snapshot's log head and compare again before rebuilding.
      for (let tries = 0; tries < 3 && !check.inStep && check.store.latestSeq > this.#seenSeq; tries++) {
        await this.#catchUp();
        check = await this.#check();
      }
      if (!check.inStep) {
        await this.#rebuild(`out of step: the index held ${check.gallery.count} templates, the store ${check.store.count}`);
      }
      return check;
    });
  }

  /** Applies what other processes wrote to the store since the last look; returns how many changes were read. */
  syncWithStore(): Promise<number> {
    return this.#lock.run(() => this.#catchUp());
  }

  async status(): Promise<GalleryStatus> {
    const counts = await this.#store.templates.countByModel();
    return {
      modelId: this.modelId,
      size: this.size,
      kind: this.#gallery.kind(this.modelId) ?? 'empty',
      startedFrom: this.#startedFrom,
      rebuildReason: this.#rebuildReason,
      lastCheck: this.#lastCheck,
      lastSavedAt: this.#lastSavedAt,
      unsaved: this.#unsaved,
      otherModels: counts.filter((c) => c.modelId !== this.modelId),
      subspace: this.#gallery.subspaceStatus(this.modelId),
      hnswExpansionSearch: this.#gallery.hnswParams(this.modelId)?.expansionSearch ?? null,
    };
  }

  /**
   * Estimates the index's recall@1 on this very gallery (src/gallery/recall-check.ts): `samples`
   * new views of stored templates, each searched in the index and by an exact scan of the store.
   * Runs beside writes (not under the lock), so a template written during the scan may count on
   * one side only: an estimate, as its sample size already makes it. One at a time.
   */
  async measureRecall(samples: number): Promise<RecallCheck> {
    if (this.#closed) throw new AppError('shutting_down', 503, 'the server is shutting down');
    if (this.#measuringRecall) throw new AppError('busy', 409, 'a recall measurement is already running; try again when it has finished');
    this.#measuringRecall = true;
    try {
      const started = performance.now();
      const ids = [...this.#gallery.templateIds(this.modelId)];
      const queries: RecallQuery[] = [];
      for (let attempt = 0; ids.length >= 2 && queries.length < samples && attempt < 2 * samples; attempt++) {
        const view = await this.#newView(ids);
        if (!view) continue; // a template deleted meanwhile
        const top = this.#gallery.search(this.modelId, view, 1)[0];
        queries.push({ vector: view, indexTop: top && { templateId: top.templateId, personId: top.personId } });
      }
      const scan = new NearestScan(queries, queries[0]?.vector.length ?? 0);
      if (queries.length > 0) for await (const batch of this.#store.templates.streamAll(this.modelId)) scan.add(batch);
      return {
        modelId: this.modelId,
        kind: this.#gallery.kind(this.modelId) ?? 'empty',
        hnswExpansionSearch: this.#gallery.hnswParams(this.modelId)?.expansionSearch ?? null,
        size: ids.length,
        ...scan.estimate(),
        elapsedMs: Math.round(performance.now() - started),
      };
    } finally {
      this.#measuringRecall = false;
    }
  }

  /** A new view of a random template (recall-check.ts); null when one of its templates was deleted meanwhile. */
  async #newView(ids: readonly string[]): Promise<Float32Array | null> {
    // The other person's templates come with their vectors: kept, so `from` and `to` are not read twice.
    const listed = new Map<string, Float32Array>();
    const { templateId, fromId, toId } = await viewSources(
      ids,
      (id) => this.#gallery.personOf(id, this.modelId),
      async (personId) => {
        const templates = await this.#store.templates.listByPerson(personId, { modelId: this.modelId });
        for (const t of templates) listed.set(t.id, t.embedding);
        return templates.map((t) => t.id);
      },
      Math.random,
    );
    const vectorOf = async (id: string): Promise<Float32Array | undefined> => listed.get(id) ?? (await this.#store.templates.get(id))?.embedding;
    const [template, from, to] = await Promise.all([vectorOf(templateId), vectorOf(fromId), vectorOf(toId)]);
    return template && from && to ? newView(template, from, to) : null;
  }

  /** Writes the index under its model folder when it changed since the last save. */
  save(): Promise<void> {
    return this.#lock.run(async () => {
      if (!this.#unsaved) return;
      this.#unsaved = false;
      if (this.#options.persist === false) return;
      try {
        await this.#gallery.save(this.#dir);
        this.#lastSavedAt = Date.now();
      } catch (err) {
        this.#unsaved = true;
        throw err;
      }
    });
  }

  /**
   * After an erasure: rewrites the saved index files now (the next timed save may be a minute
   * away, and the old files hold the erased vectors) and lets the store purge deleted pages.
   */
  async flushErasure(): Promise<void> {
    await this.save();
    await this.#store.scrub();
  }

  /** Stops the timer and saves; the store stays open (its owner closes it). */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    await this.#ticking;
    await this.save().catch((err: unknown) => this.#log(`gallery: could not save the index at close: ${(err as Error).message}`));
    this.#closed = true;
  }

  #log(message: string): void {
    this.#options.log?.(message);
  }

  #galleryOptions(): GalleryOptions {
    const { hnswAboveTemplates, hnswSubspace = true, hnswExpansionSearch } = this.#options;
    return { hnswAbove: hnswAboveTemplates, subspace: hnswSubspace, hnsw: { expansionSearch: hnswExpansionSearch } };
  }

  async #tick(): Promise<void> {
    try {
      await this.syncWithStore();
      if (this.#gallery.wantsRebuild(this.modelId)) {
        const why =
          this.size < this.#gallery.exactBelow
            ? `the gallery shrank to ${this.size} templates, below ${this.#gallery.exactBelow}: back to exact search`
            : `${this.#gallery.subspaceStatus(this.modelId)?.outside ?? 0} templates were added outside the HNSW index's subspace`;
        await this.#lock.run(() => this.#rebuild(why));
      }
      await this.save();
    } catch (err) {
      this.#log(`gallery: periodic sync or save failed: ${(err as Error).message}`);
    }
  }

  #recording(tx: Repositories, changes: IndexChange[]): Repositories {
    const { templates, people } = tx;
    return {
      ...tx,
      templates: intercept(templates, {
        add: async (input) => {
          const template = await templates.add(input);
          changes.push({ op: 'add', template });
          return template;
        },
        delete: async (id) => {
          const ref = await templates.delete(id);
          if (ref) changes.push({ op: 'remove', templateId: ref.id });
          return ref;
        },
      }),
      people: intercept(people, {
        delete: async (id) => {
          const removed = await people.delete(id);
          if (removed) changes.push({ op: 'removePerson', personId: id }, ...removed.map((templateId) => ({ op: 'remove' as const, templateId })));
          return removed;
        },
      }),
    };
  }

  #apply(change: IndexChange): void {
    if (change.op === 'add') {
      // Never mix models: other models' templates stay in the store only.
      if (change.template.modelId !== this.modelId) return;
      this.#gallery.add(change.template);
    } else if (change.op === 'remove') {
      this.#gallery.remove(change.templateId, this.modelId);
    } else {
      this.#gallery.removePerson(change.personId, this.modelId);
    }
    this.#unsaved = true;
  }

  async #check(): Promise<InStepCheck> {
    const store = await this.#store.templates.checksum(this.modelId);
    const gallery = this.#gallery.checksum(this.modelId);
    this.#lastCheck = { at: Date.now(), inStep: this.#gallery.isInStep(this.modelId, store), store, gallery };
    return this.#lastCheck;
  }

  /** Rebuilds from the store: note the log head, stream every template, then apply what changed meanwhile. */
  async #rebuild(reason: string): Promise<void> {
    const started = Date.now();
    const seq = await this.#store.galleryChanges.latestSeq();
    const expectedCount = (await this.#store.templates.countByModel()).find((c) => c.modelId === this.modelId)?.count ?? 0;
    if (this.#gallery.models().some((m) => m !== this.modelId)) this.#gallery = new Gallery(this.#galleryOptions());
    await this.#gallery.rebuild(this.modelId, this.#store.templates.streamAll(this.modelId), { expectedCount });
    this.#seenSeq = seq;
    await this.#catchUp();
    this.#unsaved = true;
    this.#rebuildReason = reason;
    const check = await this.#check();
    const note = check.inStep ? '' : '; still differs from the store (another writer is active), the next check will catch up';
    this.#log(`gallery: rebuilt the ${this.modelId} index from the store (${reason}): ${this.size} templates in ${Date.now() - started} ms${note}`);
  }

  /** Applies gallery changes after #seenSeq; an add reads its vector from the store. Idempotent. */
  async #catchUp(): Promise<number> {
    let read = 0;
    for (;;) {
      const changes = await this.#store.galleryChanges.since(this.#seenSeq, { limit: CHANGE_PAGE, modelId: this.modelId });
      for (const change of changes) {
        if (change.op === 'remove') {
          if (this.#gallery.has(change.templateId, this.modelId)) this.#apply({ op: 'remove', templateId: change.templateId });
        } else if (!this.#gallery.has(change.templateId, this.modelId)) {
          // Templates never change once written, so one already held needs no read; one deleted
          // since reads as null here and has a later 'remove' change.
          const template = await this.#store.templates.get(change.templateId);
          if (template) this.#apply({ op: 'add', template });
        }
        this.#seenSeq = change.seq;
        read++;
      }
      if (changes.length < CHANGE_PAGE) return read;
    }
  }
}
