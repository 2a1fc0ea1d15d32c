/**
 * The records the store keeps, as the rest of the server sees them: camelCase, booleans,
 * Float32Array embeddings, epoch-millisecond times. Pure data, no I/O; the repositories map
 * rows to and from these.
 */

/** Free-form JSON object attached to a person (imported fields, HR attributes). */
export type Metadata = Record<string, unknown>;

export interface Person {
  /** Text UUID: safe to create on any node. */
  id: string;
  /** Employee code, roll number…; unique when present. */
  externalId: string | null;
  name: string;
  email: string | null;
  department: string | null;
  /** Free label: employee, student, visitor… */
  type: string | null;
  active: boolean;
  metadata: Metadata;
  createdAt: number;
  updatedAt: number;
}

export interface NewPerson {
  /** Given only when importing or syncing a person that already has an id elsewhere. */
  id?: string;
  externalId?: string | null;
  name: string;
  email?: string | null;
  department?: string | null;
  type?: string | null;
  active?: boolean;
  metadata?: Metadata;
}

/** Fields to change; absent fields keep their value, null clears a nullable one. */
export type PersonPatch = Partial<Omit<NewPerson, 'id'>>;

export interface PersonListQuery {
  /** Words that must all appear (case- and accent-insensitive) in name, external id, email or department. */
  search?: string;
  active?: boolean;
  type?: string;
  department?: string;
  /** Page size; default 50, at most 1000. */
  limit?: number;
  offset?: number;
}

export interface Page<T> {
  items: T[];
  /** Rows matching the query, ignoring limit and offset. */
  total: number;
  limit: number;
  offset: number;
}

export const TEMPLATE_SOURCES = ['upload', 'url', 'enrollment', 'import'] as const;
export type TemplateSource = (typeof TEMPLATE_SOURCES)[number];

/** The head pose a template was captured at; angles follow src/domain/types.ts HeadPose. */
export interface TemplatePose {
  /** Enrollment step name such as 'frontal', 'left', 'up'; null when unknown. */
  label: string | null;
  yawDeg: number | null;
  pitchDeg: number | null;
  rollDeg: number | null;
}

export interface FaceTemplate {
  id: string;
  personId: string;
  /** The embedding model; vectors of different models are never compared. */
  modelId: string;
  /** L2-normalised embedding, bit-exact as stored. */
  embedding: Float32Array;
  pose: TemplatePose;
  quality: number | null;
  source: TemplateSource;
  /** Whether an aligned face thumbnail is stored (read it with templates.getThumbnail). */
  hasThumbnail: boolean;
  createdAt: number;
}

export interface NewFaceTemplate {
  id?: string;
  personId: string;
  modelId: string;
  embedding: Float32Array;
  pose?: Partial<TemplatePose>;
  quality?: number | null;
  source: TemplateSource;
  /** Encoded (JPEG) aligned face; dropped by the store when privacy.storeImages is false. */
  thumbnail?: Uint8Array | null;
}

/** What the identifying template was, for gallery bookkeeping after a delete. */
export interface TemplateRef {
  id: string;
  personId: string;
  modelId: string;
}

/** The part of a template the vector index needs. */
export interface GalleryVector {
  id: string;
  personId: string;
  embedding: Float32Array;
}

/**
 * A fingerprint of one model's template set: an IdSetFingerprint of src/domain/id-checksum.ts
 * (count, and the XOR of templateIdHash over the ids, 16 hex digits), which the gallery keeps
 * incrementally, plus the gallery change log's head read in the same snapshot.
 */
export interface GalleryChecksum {
  modelId: string;
  count: number;
  idHashXor: string;
  latestSeq: number;
}

export type GalleryOp = 'add' | 'remove';

export interface GalleryChange {
  /** Strictly increasing; on every backend, a reader that has seen seq n has seen every change before it. */
  seq: number;
  templateId: string;
  personId: string;
  modelId: string;
  op: GalleryOp;
  at: number;
}

export interface RecognitionLogEntry {
  id: number;
  at: number;
  /** Camera or source the face came from. */
  cameraId: string;
  trackId: string | null;
  /** The person named, or null for an unknown face. */
  personId: string | null;
  modelId: string | null;
  similarity: number | null;
  /** Best similarity minus the runner-up's (another person). */
  margin: number | null;
  quality: number | null;
  liveness: number | null;
  /** What the identifier decided, e.g. 'match', 'unknown', 'rejected'. */
  decision: string;
  /** Why, for anything but a clear match, e.g. 'below_threshold', 'low_margin', 'spoof'. */
  reason: string | null;
}

export type NewRecognitionLogEntry = Pick<RecognitionLogEntry, 'cameraId' | 'decision'> &
  Partial<Omit<RecognitionLogEntry, 'id' | 'cameraId' | 'decision'>>;

export interface RecognitionLogQuery {
  personId?: string;
  cameraId?: string;
  decision?: string;
  /** Entries at or after this time (epoch ms). */
  sinceMs?: number;
  /** Entries before this time (epoch ms). */
  untilMs?: number;
  /** Cursor: entries with an id below this one (pass the last id of the previous page). */
  beforeId?: number;
  /** Page size; default 100, at most 1000. */
  limit?: number;
}

export const API_KEY_SCOPES = ['admin', 'operator', 'device'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

export interface ApiKey {
  id: string;
  name: string;
  /** The first characters of the key, shown to people so they can tell keys apart. */
  prefix: string;
  scopes: ApiKeyScope[];
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

/** An API key with its stored hash, for verifying a presented key. */
export interface ApiKeyRecord extends ApiKey {
  keyHash: string;
}

export interface NewApiKey {
  id?: string;
  name: string;
  prefix: string;
  /** hashApiKey(key): the key itself is never stored. */
  keyHash: string;
  scopes: ApiKeyScope[];
}
