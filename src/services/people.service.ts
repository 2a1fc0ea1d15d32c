import { AppError } from '../domain/errors.ts';
import { checkDuplicate } from '../domain/identity.ts';
import type { HeadPose } from '../domain/types.ts';
import {
  PersonNotFoundError,
  type FaceTemplate,
  type NewPerson,
  type Page,
  type Person,
  type PersonListQuery,
  type Repositories,
  type PersonPatch,
  type Store,
  type TemplateSource,
} from '../store/index.ts';
import type { AnalyzedFace, AnalyzeOptions, AnalyzeResult } from '../vision/analysis.ts';
import type { GalleryService } from './gallery.service.ts';

/*
 * People and their face templates. A face becomes a template only when its photo shows exactly
 * one usable face of good quality that is not already someone else's: the duplicate check
 * searches the whole gallery inside the same unit of work that saves the template, so two
 * requests cannot both slip the same face in under two names.
 */

/** One image offered as a face: its bytes, or a URL to fetch them from. */
export type FaceImageInput = { bytes: Uint8Array } | { url: string };

export const FACE_REFUSAL_REASONS = [
  'no_face',
  'several_faces',
  'low_quality',
  'duplicate',
  'invalid_image',
  'image_too_large',
  'url_invalid',
  'url_not_allowed',
  'url_fetch_failed',
  'url_timeout',
  'url_too_large',
  'unsupported_media_type',
] as const;
export type FaceRefusalReason = (typeof FACE_REFUSAL_REASONS)[number];

/** What the photo showed, for the caller to act on (retake, crop…). */
export interface FaceSummary {
  box: { x: number; y: number; width: number; height: number };
  pose: HeadPose;
  quality: { score: number; pass: boolean; reasons: string[] };
  liveness: number | null;
}

export type FaceAddResult =
  | {
      status: 'added';
      template: FaceTemplate;
      face: FaceSummary;
      /** Set when an admin overrode the duplicate check: whom the face also matched. */
      overriddenDuplicateOf?: { personId: string; similarity: number };
    }
  | {
      status: 'refused';
      reason: FaceRefusalReason;
      message: string;
      /** reason 'duplicate': the person the face already belongs to, and how similar it is. */
      duplicateOf?: string;
      similarity?: number;
      /** reason 'several_faces' / 'no_face': how many usable faces were found. */
      faceCount?: number;
      face?: FaceSummary;
    };

/** One face already embedded (by enrollment or import), to become a template. */
export interface NewFace {
  embedding: { vector: Float32Array; modelId: string };
  /** The pose label (front, left … or a scan bin's) and the angles the face was seen at. */
  pose: { label: string | null; yawDeg: number; pitchDeg: number; rollDeg: number };
  quality: number;
  thumbnail?: Uint8Array | null;
}

export interface CreateWithFacesOptions {
  source: TemplateSource;
  /** Save even when a face matches another person (admins only: the caller checks the scope). */
  allowDuplicate?: boolean;
}

export type CreateWithFacesResult =
  | {
      status: 'saved';
      person: Person;
      /** False when the faces were added to an existing person. */
      created: boolean;
      templates: FaceTemplate[];
      /** Set when an admin overrode the duplicate check: whom the faces also matched. */
      overriddenDuplicateOf?: { personId: string; similarity: number };
    }
  | { status: 'refused'; reason: 'duplicate'; message: string; duplicateOf: string; similarity: number; faceIndex: number };

export interface AddFacesOptions {
  /** Save even when the face matches another person (admins only: the caller checks the scope). */
  allowDuplicate?: boolean;
  source: TemplateSource;
}

/** What people need from the vision pool. */
export interface FaceAnalyzer {
  analyze(bytes: Uint8Array, options: AnalyzeOptions): Promise<AnalyzeResult>;
}

/** Fetches an image by URL (with SSRF protection); errors are AppErrors with url_* codes. */
export type ImageFetcher = (url: string) => Promise<Uint8Array>;

export interface PeopleServiceDeps {
  store: Store;
  gallery: GalleryService;
  vision: FaceAnalyzer;
  /** Absent = `{ url }` images are refused as url_not_allowed. */
  fetchImage?: ImageFetcher;
  /** Cosine similarity at which a face counts as someone else's (the search threshold). */
  duplicateThreshold: number;
  /** Templates retrieved per duplicate search before widening (identity.searchK). */
  searchK: number;
  /** privacy.storeImages: keep the aligned face thumbnail with each template. */
  storeThumbnails: boolean;
  /** Smallest usable face, shorter box side in pixels: smaller faces are background, not "several faces". */
  minFaceSizePx: number;
}

/** Both within this many degrees counts as frontal. */
const FRONTAL_WITHIN_DEG = 15;

/**
 * The pose label stored with a template, from the subject's point of view (src/domain/types.ts):
 * 'frontal', else the larger of yaw and pitch names it: 'left' (turned to their own left, yaw > 0),
 * 'right', 'up' (pitch > 0), 'down'.
 */
export function poseLabel(pose: Pick<HeadPose, 'yawDeg' | 'pitchDeg'>): 'frontal' | 'left' | 'right' | 'up' | 'down' {
  const yaw = Math.abs(pose.yawDeg);
  const pitch = Math.abs(pose.pitchDeg);
  if (yaw < FRONTAL_WITHIN_DEG && pitch < FRONTAL_WITHIN_DEG) return 'frontal';
  if (yaw >= pitch) return pose.yawDeg > 0 ? 'left' : 'right';
  return pose.pitchDeg > 0 ? 'up' : 'down';
}

const round = (value: number, digits: number): number => Number(value.toFixed(digits));

/** The refusal of a face that already belongs to someone else (one wording for single adds and whole enrollments). */
function duplicateRefusal(personId: string, similarity: number) {
  return {
    status: 'refused' as const,
    reason: 'duplicate' as const,
    message: `this face already belongs to person ${personId} (similarity ${similarity.toFixed(3)})`,
    duplicateOf: personId,
    similarity: round(similarity, 4),
  };
}

export function summarizeFace(face: AnalyzedFace): FaceSummary {
  return {
    box: { x: round(face.box.x, 1), y: round(face.box.y, 1), width: round(face.box.width, 1), height: round(face.box.height, 1) },
    pose: { yawDeg: round(face.pose.yawDeg, 1), pitchDeg: round(face.pose.pitchDeg, 1), rollDeg: round(face.pose.rollDeg, 1) },
    quality: {
      score: round(face.quality.score, 3),
      pass: face.quality.pass,
      reasons: face.quality.checks.filter((c) => !c.pass).map((c) => c.reason ?? c.name),
    },
    liveness: face.liveness === undefined ? null : round(face.liveness, 3),
  };
}

/** Image and URL failures that are the image's fault: a refusal of that image, not a failed request. */
function refusalFor(err: unknown): FaceAddResult | undefined {
  if (err instanceof AppError && (FACE_REFUSAL_REASONS as readonly string[]).includes(err.code)) {
    return { status: 'refused', reason: err.code as FaceRefusalReason, message: err.message };
  }
  return undefined;
}

export class PeopleService {
  constructor(private readonly deps: PeopleServiceDeps) {}

  /** Creates a person (no faces yet); 409 duplicate_external_id when the external id is taken. */
  create(input: NewPerson): Promise<Person> {
    return this.deps.store.people.create(input);
  }

  /** The person, or 404 person_not_found. */
  async get(id: string): Promise<Person> {
    const person = await this.deps.store.people.get(id);
    if (!person) throw new PersonNotFoundError(id);
    return person;
  }

  list(query: PersonListQuery): Promise<Page<Person>> {
    return this.deps.store.people.list(query);
  }

  async update(id: string, patch: PersonPatch): Promise<Person> {
    const person = await this.deps.store.people.update(id, patch);
    if (!person) throw new PersonNotFoundError(id);
    return person;
  }

  /** Erases the person with every template, thumbnail and index entry, in one unit of work; returns the templates removed. */
  async delete(id: string): Promise<{ removedTemplates: number }> {
    const removed = await this.deps.gallery.commit((tx) => tx.people.delete(id));
    if (!removed) throw new PersonNotFoundError(id);
    await this.deps.gallery.flushErasure();
    return { removedTemplates: removed.length };
  }

  /** The person's templates, oldest first (of every model: a model switch shows what would need re-enrolling). */
  async listFaces(personId: string): Promise<FaceTemplate[]> {
    await this.get(personId);
    return this.deps.store.templates.listByPerson(personId);
  }

  async getFace(personId: string, faceId: string): Promise<FaceTemplate> {
    const template = await this.deps.store.templates.get(faceId);
    if (!template || template.personId !== personId) throw faceNotFound(personId, faceId);
    return template;
  }

  /** The stored aligned-face JPEG, or 404 (none stored, or privacy.storeImages is off). */
  async getThumbnail(personId: string, faceId: string): Promise<Uint8Array> {
    await this.getFace(personId, faceId);
    const thumbnail = await this.deps.store.templates.getThumbnail(faceId);
    if (!thumbnail) throw new AppError('thumbnail_not_found', 404, `face ${faceId} has no stored thumbnail`, { personId, faceId });
    return thumbnail;
  }

  /** Deletes one template and its index entry in one unit of work. */
  async deleteFace(personId: string, faceId: string): Promise<void> {
    await this.deps.gallery.commit(async (tx) => {
      const template = await tx.templates.get(faceId);
      if (!template || template.personId !== personId) throw faceNotFound(personId, faceId);
      await tx.templates.delete(faceId);
    });
    await this.deps.gallery.flushErasure();
  }

  /**
   * Saves a new person (or takes an existing one) and all of its faces in ONE unit of work: the
   * person row, every template and every index entry commit together or not at all, so a crash
   * or a refusal mid-way leaves nothing behind. Before anything is written every face is searched
   * against the whole gallery; a match to someone else refuses the lot with 'duplicate' and that
   * person's id (unless allowDuplicate). Throws 404 person_not_found for a missing existing person,
   * 409 duplicate_external_id, 400 no_faces for an empty list.
   */
  async createWithFaces(target: { person: NewPerson } | { personId: string }, faces: readonly NewFace[], options: CreateWithFacesOptions): Promise<CreateWithFacesResult> {
    if (faces.length === 0) throw new AppError('no_faces', 400, 'a person is saved with at least one face');
    const ownPersonId = 'personId' in target ? target.personId : undefined;
    return this.deps.gallery.commit(async (tx): Promise<CreateWithFacesResult> => {
      let worst: { personId: string; similarity: number; faceIndex: number } | undefined;
      faces.forEach((face, faceIndex) => {
        const others = this.deps.gallery.searchOthers(face.embedding, this.deps.duplicateThreshold, ownPersonId, this.deps.searchK);
        const duplicate = checkDuplicate({ matches: others, searchThreshold: this.deps.duplicateThreshold, ...(ownPersonId ? { ownPersonId } : {}) });
        if (duplicate.duplicate && (!worst || duplicate.similarity > worst.similarity)) worst = { personId: duplicate.personId, similarity: duplicate.similarity, faceIndex };
      });
      if (worst && options.allowDuplicate !== true) {
        return { ...duplicateRefusal(worst.personId, worst.similarity), faceIndex: worst.faceIndex };
      }
      let person: Person;
      if ('personId' in target) {
        const existing = await tx.people.get(target.personId);
        if (!existing) throw new PersonNotFoundError(target.personId);
        person = existing;
      } else person = await tx.people.create(target.person);
      const templates: FaceTemplate[] = [];
      for (const face of faces) {
        templates.push(
          await tx.templates.add({
            personId: person.id,
            modelId: face.embedding.modelId,
            embedding: face.embedding.vector,
            pose: face.pose,
            quality: face.quality,
            source: options.source,
            thumbnail: this.deps.storeThumbnails ? (face.thumbnail ?? null) : null,
          }),
        );
      }
      const saved: CreateWithFacesResult = { status: 'saved', person, created: !('personId' in target), templates };
      if (worst) saved.overriddenDuplicateOf = { personId: worst.personId, similarity: round(worst.similarity, 4) };
      return saved;
    });
  }

  /**
   * Adds faces to a person, one image at a time in order (each later image sees the templates the
   * earlier ones added). Per image: a template, or a refusal with its reason. Throws only for the
   * request as a whole: 404 when the person does not exist, 503 when the face engine is down.
   */
  async addFaces(personId: string, images: readonly FaceImageInput[], options: AddFacesOptions): Promise<FaceAddResult[]> {
    await this.get(personId);
    const results: FaceAddResult[] = [];
    for (const image of images) {
      let analysis: AnalyzeResult;
      try {
        const bytes = 'url' in image ? await this.#fetch(image.url) : image.bytes;
        analysis = await this.deps.vision.analyze(bytes, {
          embed: 'all',
          liveness: true,
          findSmallFaces: true,
          alignedThumbnails: this.deps.storeThumbnails,
        });
      } catch (err) {
        const refusal = refusalFor(err);
        if (!refusal) throw err;
        results.push(refusal);
        continue;
      }
      results.push(await this.addAnalyzedFace(personId, analysis.faces, options));
    }
    return results;
  }

  /**
   * Adds the one usable face among `faces` (the analysis of one photo, embedded) to the person,
   * or refuses it: for callers that analysed the image themselves (enrollment, import).
   */
  async addAnalyzedFace(personId: string, faces: readonly AnalyzedFace[], options: AddFacesOptions): Promise<FaceAddResult> {
    const checked = this.#usableFace(faces);
    if ('status' in checked) return checked;
    return this.deps.gallery.commit((tx) => this.#addInTx(tx, personId, checked, options));
  }

  /**
   * Creates a person together with the usable face of each photo, in one unit of work: the person
   * and at least one template are committed together, or nothing is (a crash in between, or every
   * face refused, leaves no person without faces). person is null when nothing was stored.
   */
  async createWithAnalyzedFaces(
    input: NewPerson,
    photos: ReadonlyArray<readonly AnalyzedFace[]>,
    options: AddFacesOptions,
  ): Promise<{ person: Person | null; results: FaceAddResult[] }> {
    const checked = photos.map((faces) => this.#usableFace(faces));
    if (!checked.some((c) => !('status' in c))) return { person: null, results: checked as FaceAddResult[] };
    try {
      return await this.deps.gallery.commit(async (tx) => {
        const person = await tx.people.create(input);
        const results: FaceAddResult[] = [];
        for (const c of checked) results.push('status' in c ? c : await this.#addInTx(tx, person.id, c, options));
        if (!results.some((r) => r.status === 'added')) throw new NothingAdded(results);
        return { person, results };
      });
    } catch (err) {
      if (err instanceof NothingAdded) return { person: null, results: err.results };
      throw err;
    }
  }

  /** The one usable face of a photo's analysis, or the refusal. */
  #usableFace(faces: readonly AnalyzedFace[]): FaceAddResult | UsableFace {
    const usable = faces.filter((f) => f.quality.sizePx >= this.deps.minFaceSizePx);
    if (usable.length === 0) {
      if (faces.length > 0) {
        const largest = faces.reduce((a, b) => (b.quality.sizePx > a.quality.sizePx ? b : a));
        return {
          status: 'refused',
          reason: 'low_quality',
          message: `the face is too small (${Math.round(largest.quality.sizePx)} px; at least ${this.deps.minFaceSizePx} px needed)`,
          faceCount: 0,
          face: summarizeFace(largest),
        };
      }
      return { status: 'refused', reason: 'no_face', message: 'no face was found in the image', faceCount: 0 };
    }
    if (usable.length > 1) {
      return {
        status: 'refused',
        reason: 'several_faces',
        message: `the image shows ${usable.length} faces; a face photo must show exactly one`,
        faceCount: usable.length,
      };
    }
    const face = usable[0]!;
    const summary = summarizeFace(face);
    if (!face.quality.pass) {
      return { status: 'refused', reason: 'low_quality', message: `the face is not good enough: ${summary.quality.reasons.join('; ')}`, face: summary };
    }
    const embedding = face.embedding;
    if (!embedding) throw new AppError('vision_internal_error', 500, 'the face engine returned a face without an embedding');
    return { face, summary, embedding };
  }

  /** Adds a checked face to a person inside the caller's unit of work (duplicate check against the index). */
  async #addInTx(tx: Repositories, personId: string, checked: UsableFace, options: AddFacesOptions): Promise<FaceAddResult> {
    const { face, summary, embedding } = checked;
    const others = this.deps.gallery.searchOthers(embedding, this.deps.duplicateThreshold, personId, this.deps.searchK);
    const duplicate = checkDuplicate({
      matches: others,
      searchThreshold: this.deps.duplicateThreshold,
      ownPersonId: personId,
      override: options.allowDuplicate === true,
    });
    if (duplicate.duplicate && !duplicate.overridden) {
      return { ...duplicateRefusal(duplicate.personId, duplicate.similarity), face: summary };
    }
    const template = await tx.templates.add({
      personId,
      modelId: embedding.modelId,
      embedding: embedding.vector,
      pose: { label: poseLabel(face.pose), yawDeg: face.pose.yawDeg, pitchDeg: face.pose.pitchDeg, rollDeg: face.pose.rollDeg },
      quality: face.quality.score,
      source: options.source,
      thumbnail: this.deps.storeThumbnails ? (face.alignedJpeg ?? null) : null,
    });
    const added: FaceAddResult = { status: 'added', template, face: summary };
    if (duplicate.duplicate) added.overriddenDuplicateOf = { personId: duplicate.personId, similarity: round(duplicate.similarity, 4) };
    return added;
  }

  async #fetch(url: string): Promise<Uint8Array> {
    if (!this.deps.fetchImage) throw new AppError('url_not_allowed', 422, 'fetching images by URL is not available on this server');
    return this.deps.fetchImage(url);
  }
}

function faceNotFound(personId: string, faceId: string): AppError {
  return new AppError('face_not_found', 404, `person ${personId} has no face ${faceId}`, { personId, faceId });
}

/** The face of a photo that passed the checks, ready to be stored. */
interface UsableFace {
  face: AnalyzedFace;
  summary: ReturnType<typeof summarizeFace>;
  embedding: NonNullable<AnalyzedFace['embedding']>;
}

/** Thrown inside a unit of work to roll it back when no face was added. */
class NothingAdded extends Error {
  constructor(readonly results: FaceAddResult[]) {
    super('no face was added');
  }
}
