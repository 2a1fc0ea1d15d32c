/*
 * One interface over the gallery's two indexes: ExactIndex (brute force, exact, best below a few
 * tens of thousands of templates) and HnswIndex (usearch HNSW, approximate, for large galleries).
 * An index holds the vectors of ONE embedding model; the Gallery keeps one index per model id.
 * Ids are text (template UUIDs). Vectors are compared by cosine similarity; indexes normalise what
 * they are given, so callers may pass any non-zero vector.
 */

export type VectorIndexKind = 'exact' | 'hnsw';

export interface IndexMatch {
  id: string;
  /** Cosine similarity to the query, -1..1. */
  similarity: number;
}

export interface VectorIndex {
  readonly kind: VectorIndexKind;
  readonly dims: number;
  /** Number of vectors held. */
  readonly size: number;
  /** Adds a vector under id; an id already held has its vector replaced (so replaying an add is harmless). */
  add(id: string, vector: Float32Array): void;
  /** Adds many: ids[i] ↔ rows i of a row-major n × dims matrix. The HNSW index builds on several threads. */
  addMany(ids: readonly string[], vectors: Float32Array): void;
  /** Removes id; false when it was not held. */
  remove(id: string): boolean;
  has(id: string): boolean;
  /** Every id held, in no particular order. */
  ids(): IterableIterator<string>;
  /** The k most similar vectors, most similar first (fewer when the index holds fewer). */
  search(query: Float32Array, k: number): IndexMatch[];
  /** Writes the index to a directory, atomically (a crash leaves the old copy or none, never half). */
  save(dir: string): Promise<void>;
  /** Bytes of memory the index holds (native and JS), estimated from its layout. */
  memoryBytes(): number;
}

/** Thrown when a vector's length is not the index's dimension count. */
export class DimensionMismatchError extends RangeError {
  override name = 'DimensionMismatchError';
  constructor(expected: number, actual: number) {
    super(`vector has ${actual} dimensions, the index holds ${expected}`);
  }
}

/** Thrown when a saved index cannot be read back (missing, damaged, or of another kind or version). */
export class IndexLoadError extends Error {
  override name = 'IndexLoadError';
}

/*
 * A rough price of one id in JS memory: the string (~56 bytes for a 36-char UUID), a Map entry
 * and an array slot. Measured RSS per template is reported by bench/gallery.ts.
 */
export const JS_BYTES_PER_ID = 120;
