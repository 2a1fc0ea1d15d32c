import { AppError } from '../domain/errors.ts';
import { DuplicateExternalIdError, type NewPerson, type Person, type Store } from '../store/index.ts';
import type { AnalyzedFace, AnalyzeResult } from '../vision/analysis.ts';
import type { FaceAddResult, FaceAnalyzer, ImageFetcher, PeopleService } from './people.service.ts';

/*
 * Bulk import of people with their face photos (an HR export, a class list, a folder of photos).
 * One row is one person and one unit of work: the row's photos are loaded and analysed first; the
 * person is created only when some photo shows a face, then each face goes through the people
 * service's own checks (one usable face, quality, not someone else's face); a row that ends with
 * no face added leaves no person behind. Rows are analysed a few at a time but committed strictly
 * in row order, so a later row's duplicate check sees every earlier row's faces.
 */

/**
 * One photo of a row: a URL (fetched with the service's fetchImage), or a label to report it by
 * (a file path) with a loader that throws an AppError (file_*, invalid_image…) when the photo
 * cannot be had: a refusal of that photo, not of the row.
 */
export type ImportPhoto = { url: string } | { label: string; load(): Promise<Uint8Array> };

const photoLabel = (photo: ImportPhoto): string => ('url' in photo ? photo.url : photo.label);

export interface ImportRowInput {
  externalId?: string | null;
  /** Default: the external id. */
  name?: string | null;
  email?: string | null;
  department?: string | null;
  type?: string | null;
  photos: readonly ImportPhoto[];
}

/**
 * What to do with a row whose external id already exists: 'skip' it (the default: re-running an
 * import changes nothing), or 'add_faces' (its photos are added to that person).
 */
export type OnExisting = 'skip' | 'add_faces';

export interface ImportOptions {
  onExisting?: OnExisting;
  /** Rows being loaded and analysed at once (default 4). */
  concurrency?: number;
  /** Called as each row is settled, in row order (progress bars). */
  onRow?: (result: ImportRowResult) => void;
}

export type ImportPhotoResult =
  | { photo: string; status: 'added'; templateId: string }
  | { photo: string; status: 'refused'; reason: string; message: string; duplicateOf?: string; similarity?: number }
  /** The row was settled before this photo was looked at (an existing person that is skipped). */
  | { photo: string; status: 'not_tried' };

export const IMPORT_ROW_REASONS = ['external_id_exists', 'duplicate_face', 'no_photos', 'no_usable_face', 'name_required', 'internal_error'] as const;
export type ImportRowReason = (typeof IMPORT_ROW_REASONS)[number];

export interface ImportRowResult {
  /** 0-based position of the row in the input. */
  index: number;
  externalId: string | null;
  name: string | null;
  /** added: a new person; updated: faces added to an existing one; skipped: nothing done by design; failed: nothing could be done. */
  status: 'added' | 'updated' | 'skipped' | 'failed';
  /** The new or existing person (skipped: the person the row collided with). */
  personId: string | null;
  templatesAdded: number;
  reason: ImportRowReason | null;
  message: string;
  photos: ImportPhotoResult[];
}

export interface ImportSummary {
  rows: number;
  added: number;
  updated: number;
  skipped: number;
  failed: number;
  templatesAdded: number;
}

export interface ImportResult {
  summary: ImportSummary;
  rows: ImportRowResult[];
}

export interface ImportServiceDeps {
  store: Pick<Store, 'people'>;
  people: Pick<PeopleService, 'create' | 'addAnalyzedFace' | 'createWithAnalyzedFaces' | 'delete'>;
  vision: FaceAnalyzer;
  /** Fetches a photo URL (with SSRF protection); absent = URL photos are refused as url_not_allowed. */
  fetchImage?: ImageFetcher;
  /** privacy.storeImages: ask the engine for the aligned thumbnail the template keeps. */
  storeThumbnails: boolean;
  /** Unexpected errors of one row (logged; the row is reported failed and the import goes on). */
  log?: (message: string) => void;
}

type Analysed = { photo: ImportPhoto; analysis: AnalyzeResult } | { photo: ImportPhoto; refusal: ImportPhotoResult };

type Prepared =
  | { kind: 'settled'; result: ImportRowResult }
  | { kind: 'analysed'; row: ImportRowInput; photos: Analysed[]; existing: Person | null };

const clean = (s: string | null | undefined): string | null => {
  const t = s?.trim();
  return t ? t : null;
};

export function summarize(rows: readonly ImportRowResult[]): ImportSummary {
  const count = (status: ImportRowResult['status']): number => rows.filter((r) => r.status === status).length;
  return {
    rows: rows.length,
    added: count('added'),
    updated: count('updated'),
    skipped: count('skipped'),
    failed: count('failed'),
    templatesAdded: rows.reduce((sum, r) => sum + r.templatesAdded, 0),
  };
}

export class ImportService {
  constructor(private readonly deps: ImportServiceDeps) {}

  /** Imports the rows; every row is answered (added, updated, skipped or failed, with reasons). */
  async importRows(rows: readonly ImportRowInput[], options: ImportOptions = {}): Promise<ImportResult> {
    const onExisting = options.onExisting ?? 'skip';
    const concurrency = Math.max(1, options.concurrency ?? 4);
    const limit = limiter(concurrency);
    // Rows are prepared a few at a time, in row order, while earlier rows are committed.
    const prepared = rows.map((row, index) => limit(() => this.#prepare(row, index, onExisting)));

    const results: ImportRowResult[] = [];
    for (let index = 0; index < rows.length; index++) {
      const ready = await prepared[index]!;
      let result: ImportRowResult;
      try {
        result = ready.kind === 'settled' ? ready.result : await this.#commit(ready, index, onExisting);
      } catch (err) {
        result = this.#unexpected(rows[index]!, index, err);
      }
      results.push(result);
      options.onRow?.(result);
    }
    return { summary: summarize(results), rows: results };
  }

  /** Loads and analyses a row's photos (no writes). */
  async #prepare(row: ImportRowInput, index: number, onExisting: OnExisting): Promise<Prepared> {
    try {
      const externalId = clean(row.externalId);
      const name = clean(row.name) ?? externalId;
      const base = { index, externalId, name };
      if (!name) {
        return { kind: 'settled', result: { ...base, status: 'failed', personId: null, templatesAdded: 0, reason: 'name_required', message: 'the row has neither a name nor an external id', photos: notTried(row) } };
      }
      const existing = externalId ? await this.deps.store.people.getByExternalId(externalId) : null;
      if (existing && onExisting === 'skip') return { kind: 'settled', result: skippedExisting(base, existing, row) };
      if (row.photos.length === 0) {
        return { kind: 'settled', result: { ...base, status: 'failed', personId: null, templatesAdded: 0, reason: 'no_photos', message: 'the row has no photo', photos: [] } };
      }
      const photos: Analysed[] = [];
      for (const photo of row.photos) photos.push(await this.#analyse(photo));
      return { kind: 'analysed', row, photos, existing };
    } catch (err) {
      return { kind: 'settled', result: this.#unexpected(row, index, err) };
    }
  }

  async #analyse(photo: ImportPhoto): Promise<Analysed> {
    const refused = (err: AppError): Analysed => ({ photo, refusal: { photo: photoLabel(photo), status: 'refused', reason: err.code, message: err.message } });
    let bytes: Uint8Array;
    try {
      bytes = 'url' in photo ? await this.#fetch(photo.url) : await photo.load();
    } catch (err) {
      // Whatever keeps a photo from being had (unreachable, refused URL, unreadable file) refuses that photo.
      if (err instanceof AppError) return refused(err);
      throw err;
    }
    try {
      const analysis = await this.deps.vision.analyze(bytes, { embed: 'all', liveness: true, findSmallFaces: true, alignedThumbnails: this.deps.storeThumbnails });
      return { photo, analysis };
    } catch (err) {
      // The image's own fault (not an image, too large) refuses the photo; the engine being down
      // (5xx) fails the row through #unexpected.
      if (err instanceof AppError && err.status < 500) return refused(err);
      throw err;
    }
  }

  #fetch(url: string): Promise<Uint8Array> {
    if (!this.deps.fetchImage) throw new AppError('url_not_allowed', 422, 'fetching images by URL is not available here');
    return this.deps.fetchImage(url);
  }

  /** Creates the person (or takes the existing one) and adds the analysed faces, in row order. */
  async #commit(ready: Extract<Prepared, { kind: 'analysed' }>, index: number, onExisting: OnExisting): Promise<ImportRowResult> {
    const { row, photos } = ready;
    const externalId = clean(row.externalId);
    const name = clean(row.name) ?? externalId!;
    const base = { index, externalId, name };
    // An earlier row of this import may have taken the external id since the row was prepared.
    let person = externalId ? await this.deps.store.people.getByExternalId(externalId) : null;
    if (person && onExisting === 'skip') return skippedExisting(base, person, row);
    const photoResults: ImportPhotoResult[] = photos.map((p) => ('refusal' in p ? p.refusal : { photo: photoLabel(p.photo), status: 'not_tried' }));

    const withFaces = photos.filter((p): p is Extract<Analysed, { analysis: AnalyzeResult }> => 'analysis' in p && p.analysis.faces.length > 0);
    for (const p of photos) {
      if ('analysis' in p && p.analysis.faces.length === 0) {
        photoResults[photos.indexOf(p)] = { photo: photoLabel(p.photo), status: 'refused', reason: 'no_face', message: 'no face was found in the image' };
      }
    }
    if (withFaces.length === 0) return failedNoFace(base, person, photoResults);

    // A new person is created together with their faces in one unit of work: a crash (or a refusal
    // of every face) leaves no person without faces behind.
    let created = false;
    let outcomes: FaceAddResult[];
    const faceSets = withFaces.map((p) => p.analysis.faces);
    if (!person) {
      const input: NewPerson = { externalId, name, email: clean(row.email), department: clean(row.department), type: clean(row.type) };
      try {
        const made = await this.deps.people.createWithAnalyzedFaces(input, faceSets, { source: 'import' });
        outcomes = made.results;
        if (made.person) {
          person = made.person;
          created = true;
        }
      } catch (err) {
        if (!(err instanceof DuplicateExternalIdError)) throw err;
        // Taken by another writer between the check and the insert.
        const taken = await this.deps.store.people.getByExternalId(err.externalId);
        if (!taken) throw err;
        if (onExisting === 'skip') return skippedExisting(base, taken, row);
        person = taken;
        outcomes = await this.#addEach(taken.id, faceSets);
      }
    } else {
      outcomes = await this.#addEach(person.id, faceSets);
    }

    let templatesAdded = 0;
    let duplicateOf: string | undefined;
    withFaces.forEach((p, i) => {
      const outcome = outcomes[i]!;
      const at = photos.indexOf(p);
      if (outcome.status === 'added') {
        templatesAdded++;
        photoResults[at] = { photo: photoLabel(p.photo), status: 'added', templateId: outcome.template.id };
      } else {
        const refused: ImportPhotoResult = { photo: photoLabel(p.photo), status: 'refused', reason: outcome.reason, message: outcome.message };
        if (outcome.duplicateOf !== undefined) {
          refused.duplicateOf = outcome.duplicateOf;
          duplicateOf ??= outcome.duplicateOf;
        }
        if (outcome.similarity !== undefined) refused.similarity = outcome.similarity;
        photoResults[at] = refused;
      }
    });

    if (templatesAdded === 0 || !person) {
      if (duplicateOf !== undefined) {
        return {
          ...base,
          status: 'skipped',
          personId: duplicateOf,
          templatesAdded: 0,
          reason: 'duplicate_face',
          message: `the face already belongs to person ${duplicateOf}`,
          photos: photoResults,
        };
      }
      return failedNoFace(base, created ? null : person, photoResults);
    }
    const refusedCount = photoResults.filter((p) => p.status === 'refused').length;
    return {
      ...base,
      status: created ? 'added' : 'updated',
      personId: person.id,
      templatesAdded,
      reason: null,
      message: `${templatesAdded} face${templatesAdded === 1 ? '' : 's'} added${refusedCount > 0 ? `, ${refusedCount} photo${refusedCount === 1 ? '' : 's'} refused` : ''}`,
      photos: photoResults,
    };
  }

  /** Adds each photo's face to an existing person, in order (each sees the ones before). */
  async #addEach(personId: string, faceSets: ReadonlyArray<readonly AnalyzedFace[]>): Promise<FaceAddResult[]> {
    const outcomes: FaceAddResult[] = [];
    for (const faces of faceSets) outcomes.push(await this.deps.people.addAnalyzedFace(personId, faces, { source: 'import' }));
    return outcomes;
  }

  #unexpected(row: ImportRowInput, index: number, err: unknown): ImportRowResult {
    const externalId = clean(row.externalId);
    const base = { index, externalId, name: clean(row.name) ?? externalId };
    if (err instanceof AppError) {
      return { ...base, status: 'failed', personId: null, templatesAdded: 0, reason: 'internal_error', message: `${err.code}: ${err.message}`, photos: notTried(row) };
    }
    this.deps.log?.(`import: row ${index} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return { ...base, status: 'failed', personId: null, templatesAdded: 0, reason: 'internal_error', message: 'an internal error occurred; it has been logged', photos: notTried(row) };
  }
}

/** Runs the functions given to it with at most `concurrency` running, in the order given. */
function limiter(concurrency: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  const release = (): void => {
    running--;
    waiting.shift()?.();
  };
  return <T>(fn: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const start = (): void => {
        running++;
        fn().then(resolve, reject).finally(release);
      };
      if (running < concurrency) start();
      else waiting.push(start);
    });
}

function notTried(row: ImportRowInput): ImportPhotoResult[] {
  return row.photos.map((p) => ({ photo: photoLabel(p), status: 'not_tried' }));
}

function skippedExisting(base: Pick<ImportRowResult, 'index' | 'externalId' | 'name'>, existing: Person, row: ImportRowInput): ImportRowResult {
  return {
    ...base,
    status: 'skipped',
    personId: existing.id,
    templatesAdded: 0,
    reason: 'external_id_exists',
    message: `a person with external id "${existing.externalId}" already exists`,
    photos: notTried(row),
  };
}

function failedNoFace(base: Pick<ImportRowResult, 'index' | 'externalId' | 'name'>, existing: Person | null, photos: ImportPhotoResult[]): ImportRowResult {
  const reasons = [...new Set(photos.flatMap((p) => (p.status === 'refused' ? [p.reason] : [])))];
  return {
    ...base,
    status: 'failed',
    personId: existing?.id ?? null,
    templatesAdded: 0,
    reason: 'no_usable_face',
    message: `no photo gave a usable face${reasons.length > 0 ? ` (${reasons.join(', ')})` : ''}`,
    photos,
  };
}
