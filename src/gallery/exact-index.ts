import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceDirAtomically, writeFileSynced } from './atomic-dir.ts';
import { usearch } from './usearch.ts';
import { DimensionMismatchError, IndexLoadError, JS_BYTES_PER_ID, type IndexMatch, type VectorIndex } from './vector-index.ts';
import { dotRow, normalized, normalizeInto, quantizeI8Into } from './vector-math.ts';

/*
 * Exact nearest-neighbour search by brute force over contiguous matrices.
 *
 * A float32 scan of 100k × 512 reads 200 MB per query and is bound by memory bandwidth (9–20 ms
 * here, plain JS 70–95 ms). So each vector is also kept as int8 (its own scale, 1 byte a
 * component), which usearch's SIMD exactSearch scans 4× faster; the best few hundred of that scan
 * are re-scored in float32, and a bound on the int8 error proves that nothing outside them can
 * reach the top k. When the bound cannot prove it (a crowd of near-equal scores), the query falls
 * back to the full float32 scan. Either way the answer is exact.
 */

export interface ExactIndexOptions {
  /** Threads for one search's scan (1 keeps searches off the other cores the vision workers use). */
  threads?: number;
  /** Up to this many vectors, scan float32 directly: the two-step search does not pay off. */
  directScanMax?: number;
}

const FORMAT = 'facegate-exact-index';
const FORMAT_VERSION = 1;
/** Rounding slack on top of the int8 error bound (usearch's int8 cosine is float32: ~2e-7 off). */
const BOUND_SLACK = 1e-5;

interface ExactMeta {
  format: typeof FORMAT;
  version: number;
  dims: number;
  count: number;
  ids: string[];
}

export class ExactIndex implements VectorIndex {
  readonly kind = 'exact' as const;
  readonly dims: number;
  #count = 0;
  #capacity = 0;
  #vectors = new Float32Array(0);
  #codes = new Int8Array(0);
  #codeErrors = new Float32Array(0);
  /** Never lowered on remove: a stale, larger value only makes the bound more cautious. */
  #maxCodeError = 0;
  #rowIds: string[] = [];
  #rowOf = new Map<string, number>();
  readonly #threads: number;
  readonly #directScanMax: number;
  /** How many searches needed the full float32 scan (for the benchmark). */
  fallbackScans = 0;

  constructor(dims: number, options: ExactIndexOptions = {}) {
    if (!Number.isInteger(dims) || dims < 1) throw new RangeError(`dims must be a positive integer, got ${dims}`);
    this.dims = dims;
    this.#threads = options.threads ?? 1;
    this.#directScanMax = options.directScanMax ?? 2048;
  }

  get size(): number {
    return this.#count;
  }

  has(id: string): boolean {
    return this.#rowOf.has(id);
  }

  ids(): IterableIterator<string> {
    return this.#rowOf.keys();
  }

  /** A copy of the unit vector stored under id. */
  vectorOf(id: string): Float32Array | undefined {
    const row = this.#rowOf.get(id);
    if (row === undefined) return undefined;
    return this.#vectors.slice(row * this.dims, (row + 1) * this.dims);
  }

  add(id: string, vector: Float32Array): void {
    if (vector.length !== this.dims) throw new DimensionMismatchError(this.dims, vector.length);
    let row = this.#rowOf.get(id);
    if (row === undefined) {
      this.#reserve(this.#count + 1);
      row = this.#count;
      normalizeInto(vector, this.#vectors, row * this.dims);
      this.#count++;
      this.#rowIds.push(id);
      this.#rowOf.set(id, row);
    } else {
      normalizeInto(vector, this.#vectors, row * this.dims);
    }
    const error = quantizeI8Into(this.#vectors, row * this.dims, this.dims, this.#codes, row * this.dims);
    this.#codeErrors[row] = error;
    if (error > this.#maxCodeError) this.#maxCodeError = error;
  }

  addMany(ids: readonly string[], vectors: Float32Array): void {
    if (vectors.length !== ids.length * this.dims) throw new DimensionMismatchError(this.dims, vectors.length / Math.max(1, ids.length));
    this.#reserve(this.#count + ids.length);
    for (let i = 0; i < ids.length; i++) this.add(ids[i]!, vectors.subarray(i * this.dims, (i + 1) * this.dims));
  }

  remove(id: string): boolean {
    const row = this.#rowOf.get(id);
    if (row === undefined) return false;
    const last = this.#count - 1;
    if (row !== last) {
      // Swap-remove: the last row moves into the hole, so the matrices stay contiguous.
      const d = this.dims;
      this.#vectors.copyWithin(row * d, last * d, (last + 1) * d);
      this.#codes.copyWithin(row * d, last * d, (last + 1) * d);
      this.#codeErrors[row] = this.#codeErrors[last]!;
      const movedId = this.#rowIds[last]!;
      this.#rowIds[row] = movedId;
      this.#rowOf.set(movedId, row);
    }
    this.#rowIds.pop();
    this.#rowOf.delete(id);
    this.#count--;
    return true;
  }

  search(query: Float32Array, k: number): IndexMatch[] {
    if (query.length !== this.dims) throw new DimensionMismatchError(this.dims, query.length);
    const n = this.#count;
    const wanted = Math.min(Math.floor(k), n);
    if (wanted <= 0) return [];
    const q = normalized(query);
    if (n <= this.#directScanMax) return this.#fullScan(q, wanted);

    const d = this.dims;
    const candidates = Math.min(n, Math.max(2 * wanted, wanted + 128));
    const qCode = new Int8Array(d);
    const qError = quantizeI8Into(q, 0, d, qCode, 0);
    const coarse = usearch.exactSearch(this.#codes.subarray(0, n * d), qCode, d, candidates, usearch.MetricKind.Cos, this.#threads);
    const rows = coarse.keys;
    const found = rows.length;
    const exact: IndexMatch[] = new Array(found);
    for (let i = 0; i < found; i++) {
      const row = Number(rows[i]);
      exact[i] = { id: this.#rowIds[row]!, similarity: dotRow(this.#vectors, row, d, q) };
    }
    exact.sort((a, b) => b.similarity - a.similarity);
    if (found === n) return exact.slice(0, wanted);
    // Anything outside the candidates scored at most the last candidate in int8, so at most this in float32.
    const outsideCeiling = 1 - coarse.distances[found - 1]! + this.#maxCodeError + qError + BOUND_SLACK;
    if (outsideCeiling < exact[wanted - 1]!.similarity) return exact.slice(0, wanted);
    this.fallbackScans++;
    return this.#fullScan(q, wanted);
  }

  #fullScan(q: Float32Array, wanted: number): IndexMatch[] {
    const n = this.#count;
    const d = this.dims;
    const result = usearch.exactSearch(this.#vectors.subarray(0, n * d), q, d, wanted, usearch.MetricKind.IP, this.#threads);
    const matches: IndexMatch[] = new Array(result.keys.length);
    for (let i = 0; i < result.keys.length; i++) {
      const row = Number(result.keys[i]);
      // Re-score in JS (float64 sums): the SIMD float32 distance can be off in the 7th digit, and
      // equal vectors must score equal whichever path found them.
      matches[i] = { id: this.#rowIds[row]!, similarity: dotRow(this.#vectors, row, d, q) };
    }
    return matches.sort((a, b) => b.similarity - a.similarity);
  }

  /** Allocates room for `capacity` vectors up front (a rebuild knows the count), saving the regrowth copies. */
  reserve(capacity: number): void {
    this.#reserve(capacity, true);
  }

  #reserve(needed: number, exactly = false): void {
    if (needed <= this.#capacity) return;
    const capacity = exactly ? needed : Math.max(needed, Math.ceil(this.#capacity * 1.5), 1024);
    const d = this.dims;
    const vectors = new Float32Array(capacity * d);
    vectors.set(this.#vectors.subarray(0, this.#count * d));
    const codes = new Int8Array(capacity * d);
    codes.set(this.#codes.subarray(0, this.#count * d));
    const codeErrors = new Float32Array(capacity);
    codeErrors.set(this.#codeErrors.subarray(0, this.#count));
    this.#vectors = vectors;
    this.#codes = codes;
    this.#codeErrors = codeErrors;
    this.#capacity = capacity;
  }

  memoryBytes(): number {
    return this.#capacity * (this.dims * 5 + 4) + this.#count * JS_BYTES_PER_ID;
  }

  async save(dir: string): Promise<void> {
    const n = this.#count;
    const meta: ExactMeta = { format: FORMAT, version: FORMAT_VERSION, dims: this.dims, count: n, ids: this.#rowIds.slice(0, n) };
    const bytes = new Uint8Array(this.#vectors.buffer, 0, n * this.dims * 4).slice();
    await replaceDirAtomically(dir, async (tmp) => {
      await writeFileSynced(join(tmp, 'vectors.f32'), bytes);
      await writeFileSynced(join(tmp, 'meta.json'), JSON.stringify(meta));
    });
  }

  /** Reads an index that save() wrote; IndexLoadError when it is missing or does not check. */
  static async load(dir: string, options: ExactIndexOptions = {}): Promise<ExactIndex> {
    let meta: ExactMeta;
    let bytes: Buffer;
    try {
      meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as ExactMeta;
      bytes = await readFile(join(dir, 'vectors.f32'));
    } catch (error) {
      throw new IndexLoadError(`cannot read exact index at ${dir}: ${(error as Error).message}`);
    }
    if (meta.format !== FORMAT || meta.version !== FORMAT_VERSION) throw new IndexLoadError(`${dir} is not a version-${FORMAT_VERSION} exact index`);
    if (!Array.isArray(meta.ids) || meta.ids.length !== meta.count || bytes.byteLength !== meta.count * meta.dims * 4) {
      throw new IndexLoadError(`exact index at ${dir} is damaged: ${meta.ids?.length} ids, ${bytes.byteLength} bytes for ${meta.count} × ${meta.dims}`);
    }
    const vectors = new Float32Array(meta.count * meta.dims);
    new Uint8Array(vectors.buffer).set(bytes);
    const index = new ExactIndex(meta.dims, options);
    index.addMany(meta.ids, vectors);
    if (index.size !== meta.count) throw new IndexLoadError(`exact index at ${dir} holds duplicate ids`);
    return index;
  }
}
