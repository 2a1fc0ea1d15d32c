import type { Config } from '../config/config.ts';
import { AppError } from '../domain/errors.ts';
import { decideIdentity, type IdentityDecision, type IdentityPolicy, type TemplateMatch, type UnknownReason } from '../domain/identity.ts';
import { dot } from '../domain/metrics.ts';
import { PersonNotFoundError, type Person, type RecognitionLogEntry, type RecognitionLogQuery, type Store } from '../store/index.ts';
import type { AnalyzedFace } from '../vision/analysis.ts';
import type { Embedding } from '../vision/face-engine.ts';
import type { GalleryService } from './gallery.service.ts';
import { summarizeFace, type FaceAnalyzer, type FaceSummary } from './people.service.ts';

/*
 * Who is in this image? Every face gets its box, pose, quality, liveness and an identity decision
 * (a person with similarity and margin, or unknown with a reason), and every decision is written
 * to the recognition log. Scoring people for a probe is behind IdentityScorer: the cosine gallery
 * search by default; a trained classifier (identity.classifier = "svm") plugs in there.
 */

/** The evidence a scorer gives for one probe face: candidate people with scores, on the scorer's own scale. */
export interface IdentityCandidates {
  /** Candidate templates or people; decideIdentity groups them per person under policy.scoring. */
  matches: TemplateMatch[];
  /** The score below which candidates were not returned (see IdentityEvidence.candidateFloor); unset = all were. */
  candidateFloor?: number;
}

/**
 * Scores gallery people for a probe embedding. The default is the cosine search of the gallery;
 * another scorer (an SVM over the gallery) returns one match per person with its own score and
 * supplies thresholds on that scale through `policy`.
 */
export interface IdentityScorer {
  /** 'cosine', 'svm', …: reported with every answer. */
  readonly name: string;
  candidates(probe: Embedding): IdentityCandidates | Promise<IdentityCandidates>;
  /** Threshold, margin and scoring on this scorer's scale; unset fields keep the configured cosine policy. */
  readonly policy?: Partial<Pick<IdentityPolicy, 'searchThreshold' | 'minMargin' | 'scoring'>>;
}

/** The default scorer: nearest templates in the gallery by cosine similarity. */
export class CosineGalleryScorer implements IdentityScorer {
  readonly name = 'cosine';
  constructor(
    private readonly gallery: GalleryService,
    private readonly searchK: number,
  ) {}

  candidates(probe: Embedding): IdentityCandidates {
    const { matches, candidateFloor } = this.gallery.search(probe, this.searchK);
    return candidateFloor === undefined ? { matches } : { matches, candidateFloor };
  }
}

export interface PersonSummary {
  id: string;
  name: string;
  externalId: string | null;
  active: boolean;
}

export interface RecognizedFace extends FaceSummary {
  decision: 'match' | 'unknown';
  /** Why not a match: no_face, low_quality, spoof_suspected, below_threshold, ambiguous. */
  reason: UnknownReason | null;
  person: PersonSummary | null;
  /** The best person's score (cosine similarity for the default scorer); null when the face was not searched. */
  similarity: number | null;
  /** The best person's lead over the runner-up; null when the face was not searched. */
  margin: number | null;
}

export interface RecognizeResult {
  width: number;
  height: number;
  modelId: string;
  scorer: string;
  faces: RecognizedFace[];
  /** 'no_face' when the image holds no face at all. */
  reason: 'no_face' | null;
}

export interface RecognizeOptions {
  /** Camera or source, for the log; default "api". */
  cameraId?: string;
  trackId?: string;
  /** Look harder for small faces (uploaded photos: yes; camera frames: no). Default true. */
  findSmallFaces?: boolean;
}

export type VerifyProbe = { image: Uint8Array } | { personId: string };

export interface VerifyResult {
  /** Same person at the verification threshold; null when it could not be judged (see reason). */
  same: boolean | null;
  similarity: number | null;
  threshold: number;
  modelId: string;
  /** no_face: an image has no face (see which); no_templates: the person has no face of this model. */
  reason: 'no_face' | 'no_templates' | null;
  detail: string | null;
  /** The largest face of each image compared (b is null when comparing with a person). */
  faces: { a: FaceSummary | null; b: FaceSummary | null };
  person: PersonSummary | null;
  /** The person's template that matched best. */
  templateId: string | null;
}

/** One embedded face, as decideEmbedding takes it. */
export interface EmbeddingEvidence {
  embedding: Embedding;
  /** Whether the face passed the quality checks; a failing face is not searched (low_quality). */
  qualityPass: boolean;
  /** 0..1 when measured; below the policy's minimum the face is not searched (spoof_suspected). */
  liveness?: number;
}

export interface EmbeddingDecision {
  decision: IdentityDecision;
  /** The matched person (null unless decision is a match, or when they were deleted meanwhile). */
  person: PersonSummary | null;
  scorer: string;
}

export interface RecognitionServiceDeps {
  store: Store;
  vision: FaceAnalyzer;
  scorer: IdentityScorer;
  modelId: string;
  /** The cosine policy in force (search threshold, margin, scoring, minimum liveness when required). */
  policy: IdentityPolicy;
  verifyThreshold: number;
  /** Corrections ("this was not X", from revoked check-ins); compared on the cosine scale only. */
  negatives?: { similarities(probe: Embedding): TemplateMatch[] };
}

/** The identity policy the config asks for, with the search threshold in force for the model. */
export function identityPolicyFor(config: Pick<Config, 'identity' | 'vision'>, searchThreshold: number): IdentityPolicy {
  const { identity } = config;
  return {
    searchThreshold,
    minMargin: identity.minMargin,
    scoring: identity.scoring === 'mean-top-k' ? { strategy: 'mean-top-k', k: identity.topK } : { strategy: 'best' },
    ...(identity.requireLiveness ? { minLiveness: config.vision.livenessThreshold } : {}),
  };
}

const round = (value: number, digits = 4): number => Number(value.toFixed(digits));

function summarizePerson(person: Person): PersonSummary {
  return { id: person.id, name: person.name, externalId: person.externalId, active: person.active };
}

export class RecognitionService {
  constructor(private readonly deps: RecognitionServiceDeps) {}

  /** Every face of the image with its identity decision; each decision is appended to the recognition log. */
  async recognize(bytes: Uint8Array, options: RecognizeOptions = {}): Promise<RecognizeResult> {
    const analysis = await this.deps.vision.analyze(bytes, { embed: 'all', liveness: true, findSmallFaces: options.findSmallFaces ?? true });
    const { scorer } = this.deps;
    const policy: IdentityPolicy = { ...this.deps.policy, ...scorer.policy };
    const faces: RecognizedFace[] = [];
    for (const face of analysis.faces) {
      const searched = face.quality.pass && face.embedding !== undefined && !this.#spoof(face, policy);
      const candidates: IdentityCandidates = searched ? await scorer.candidates(this.#embedding(face)) : { matches: [] };
      const decision = decideIdentity(
        {
          faceFound: true,
          qualityPass: face.quality.pass,
          ...(face.liveness === undefined ? {} : { livenessScore: face.liveness }),
          matches: candidates.matches,
          ...(candidates.candidateFloor === undefined ? {} : { candidateFloor: candidates.candidateFloor }),
          ...(searched ? this.#negatives(this.#embedding(face)) : {}),
        },
        policy,
      );
      const person = decision.decision === 'match' ? await this.deps.store.people.get(decision.personId) : null;
      const recognized: RecognizedFace = {
        ...summarizeFace(face),
        decision: decision.decision,
        reason: decision.decision === 'unknown' ? decision.reason : null,
        person: person ? summarizePerson(person) : null,
        similarity: decision.similarity === undefined ? null : round(decision.similarity),
        margin: decision.margin === undefined ? null : round(decision.margin),
      };
      faces.push(recognized);
      await this.deps.store.recognitionLog.append({
        cameraId: options.cameraId ?? 'api',
        trackId: options.trackId ?? null,
        personId: person?.id ?? null,
        modelId: face.embedding?.modelId ?? null,
        similarity: recognized.similarity,
        margin: recognized.margin,
        quality: recognized.quality.score,
        liveness: recognized.liveness,
        decision: recognized.decision,
        reason: recognized.reason,
      });
    }
    return {
      width: analysis.width,
      height: analysis.height,
      modelId: this.deps.modelId,
      scorer: scorer.name,
      faces,
      reason: faces.length === 0 ? 'no_face' : null,
    };
  }

  /**
   * The identity decision for one face already embedded (a camera pipeline embeds only the faces
   * its tracker asks for): the same scorer and policy as recognize(), without analysing an image
   * and without writing the log (the caller logs once per track decision, not per frame).
   */
  async decideEmbedding(input: EmbeddingEvidence): Promise<EmbeddingDecision> {
    const { scorer } = this.deps;
    const policy: IdentityPolicy = { ...this.deps.policy, ...scorer.policy };
    if (input.embedding.modelId !== this.deps.modelId) {
      throw new AppError('model_mismatch', 500, `the face engine made a ${input.embedding.modelId} embedding; the gallery holds ${this.deps.modelId}`);
    }
    const spoof = policy.minLiveness !== undefined && input.liveness !== undefined && input.liveness < policy.minLiveness;
    const searched = input.qualityPass && !spoof;
    const candidates: IdentityCandidates = searched ? await scorer.candidates(input.embedding) : { matches: [] };
    const decision = decideIdentity(
      {
        faceFound: true,
        qualityPass: input.qualityPass,
        ...(input.liveness === undefined ? {} : { livenessScore: input.liveness }),
        matches: candidates.matches,
        ...(candidates.candidateFloor === undefined ? {} : { candidateFloor: candidates.candidateFloor }),
        ...(searched ? this.#negatives(input.embedding) : {}),
      },
      policy,
    );
    const person = decision.decision === 'match' ? await this.deps.store.people.get(decision.personId) : null;
    return { decision, person: person ? summarizePerson(person) : null, scorer: scorer.name };
  }

  /**
   * One-to-one: is the largest face of `a` the same person as the largest face of `b`, or as the
   * person (compared with their best template)? Same = similarity ≥ the verification threshold.
   */
  async verify(a: Uint8Array, b: VerifyProbe): Promise<VerifyResult> {
    const person = 'personId' in b ? await this.deps.store.people.get(b.personId) : null;
    if ('personId' in b && !person) throw new PersonNotFoundError(b.personId);
    const options = { embed: 'largest', liveness: true } as const;
    const [ra, rb] = await Promise.all([this.deps.vision.analyze(a, options), 'image' in b ? this.deps.vision.analyze(b.image, options) : undefined]);
    const faceA = ra.faces.find((f) => f.embedding);
    const faceB = rb?.faces.find((f) => f.embedding);
    const result: VerifyResult = {
      same: null,
      similarity: null,
      threshold: this.deps.verifyThreshold,
      modelId: this.deps.modelId,
      reason: null,
      detail: null,
      faces: { a: faceA ? summarizeFace(faceA) : null, b: faceB ? summarizeFace(faceB) : null },
      person: person ? summarizePerson(person) : null,
      templateId: null,
    };
    const missing = [!faceA ? 'a' : undefined, rb && !faceB ? 'b' : undefined].filter((x): x is string => x !== undefined);
    if (missing.length > 0) return { ...result, reason: 'no_face', detail: `no face was found in image ${missing.join(' and ')}` };
    const probe = this.#embedding(faceA!);

    let similarity: number;
    if (faceB) {
      similarity = dot(probe.vector, this.#embedding(faceB).vector);
    } else {
      const templates = await this.deps.store.templates.listByPerson(person!.id, { modelId: this.deps.modelId });
      if (templates.length === 0) {
        return { ...result, reason: 'no_templates', detail: `person ${person!.id} has no face of model ${this.deps.modelId}` };
      }
      let best = -Infinity;
      for (const t of templates) {
        const s = dot(probe.vector, t.embedding);
        if (s > best) {
          best = s;
          result.templateId = t.id;
        }
      }
      similarity = best;
    }
    return { ...result, same: similarity >= this.deps.verifyThreshold, similarity: round(similarity) };
  }

  /** Recognition log entries, newest first. */
  log(query: RecognitionLogQuery = {}): Promise<RecognitionLogEntry[]> {
    return this.deps.store.recognitionLog.list(query);
  }

  /** Negative examples apply to cosine scores: another scorer's scale (SVM) is not comparable with them. */
  #negatives(probe: Embedding): { negatives?: TemplateMatch[] } {
    if (!this.deps.negatives || this.deps.scorer.name !== 'cosine') return {};
    const negatives = this.deps.negatives.similarities(probe);
    return negatives.length > 0 ? { negatives } : {};
  }

  #spoof(face: AnalyzedFace, policy: IdentityPolicy): boolean {
    return policy.minLiveness !== undefined && face.liveness !== undefined && face.liveness < policy.minLiveness;
  }

  #embedding(face: AnalyzedFace): Embedding {
    const embedding = face.embedding!;
    if (embedding.modelId !== this.deps.modelId) {
      throw new AppError('model_mismatch', 500, `the face engine made a ${embedding.modelId} embedding; the gallery holds ${this.deps.modelId}`);
    }
    return embedding;
  }
}
