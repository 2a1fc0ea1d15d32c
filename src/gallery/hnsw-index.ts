import { availableParallelism } from 'node:os';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceDirAtomically, syncFile, writeFileSynced } from './atomic-dir.ts';
import { usearch, type UsearchIndex } from './usearch.ts';
import { DimensionMismatchError, IndexLoadError, JS_BYTES_PER_ID, type IndexMatch, type VectorIndex } from './vector-index.ts';
import { projectInto, type Subspace } from './subspace.ts';
import { normalized, normalizeInto, quantizeI8Into } from './vector-math.ts';

/*
 * Approximate nearest-neighbour search: usearch's HNSW graph over quantised vectors.
 *
 * usearch keys are 64-bit integers; template ids are text, so the index keeps a two-way map and
 * recycles the keys of removed vectors. usearch's remove marks the graph node as deleted (it
 * stays as a stepping stone for searches) and its slot is reused by the next add, so churn does
 * not grow memory.
 *
 * Quantisation: 'i8' stores each vector as int8 with its own scale (127 / max |component|),
 * computed here, because usearch's own f32→i8 cast (127/|x|, truncated) is far too coarse for
 * 512-d unit vectors. 'f16' lets usearch cast. Which one, and the graph parameters, come from
 * bench/gallery.ts.
 *
 * Subspace (optional, see subspace.ts): the index stores each unit vector's coordinates in a
 * low-rank subspace learnt from the gallery instead of its full components; cosine between them
 * equals the full cosine for vectors in the subspace. Vectors added later that lie farther from
 * it than OUTSIDE_SUBSPACE are counted (subspaceStatus), so the gallery can rebuild with a new one.
 */

export type HnswQuantization = 'f32' | 'f16' | 'i8';

export interface HnswParams {
  quantization: HnswQuantization;
  /** Graph degree M (neighbours per node above level 0; 2M at level 0). */
  connectivity: number;
  /** Candidate list size while inserting (efConstruction). */
  expansionAdd: number;
  /** Candidate list size while searching (ef); a search for k > ef uses k. */
  expansionSearch: number;
}

/**
 * Chosen with bench/gallery.ts (synthetic people made from real fr_feature embeddings). float16:
 * int8 reorders near-ties between one person's templates (at 100k, recall@1 0.92 against f16's
 * 0.96 at ef 128, the same person found about as often), and over the subspace a float16 template
 * takes ≈840 bytes — less than a whole int8 one (≈990). M 32 keeps a whole float16 template
 * (models that are not low-rank) inside 1.5 KiB; M 48 lifts recall@1 by ≈0.01 for ≈130 bytes more.
 * A build expansion of 384 instead of 128 lifts recall (0.990 → 0.997 at ef 128 on the earlier
 * isotropic data) for ≈2× the insert cost. Recall falls with size: raise expansionSearch
 * (gallery.hnswExpansionSearch) for galleries of several hundred thousand templates (see the
 * README's gallery section).
 */
export const DEFAULT_HNSW_PARAMS: HnswParams = {
  quantization: 'f16',
  connectivity: 32,
  expansionAdd: 384,
  expansionSearch: 128,
};

export interface HnswIndexOptions extends Partial<HnswParams> {
  /**
   * Threads for addMany (default 1). usearch 2.25's concurrent add() can leave nodes that no
   * search reaches (unum-cloud/USearch issue #735, fix pending in PR #772); here a 2-thread
   * build missed stored vectors searched by their own value. Raise only with a fixed usearch.
   */
  buildThreads?: number;
  /** Store vectors as coordinates in this subspace (of R^dims); none: whole vectors. */
  subspace?: Subspace | null;
}

/**
 * A vector farther than this (unit length) from the index's subspace is counted as outside: its
 * cosines to others are off by up to ≈ its square (0.0025), and a share of such vectors means the
 * subspace no longer fits the gallery.
 */
export const OUTSIDE_SUBSPACE = 0.05;

const FORMAT = 'facegate-hnsw-index';
/** 1: whole vectors; 2: adds the optional subspace (subspace.f32 beside the graph). */
const FORMAT_VERSION = 2;

interface HnswMeta {
  format: typeof FORMAT;
  version: number;
  dims: number;
  params: HnswParams;
  count: number;
  /** Byte length of graph.usearch, to catch a graph file from another save. */
  graphBytes: number;
  ids: string[];
  keys: number[];
  /** Rank of the subspace saved in subspace.f32 (version 2), absent for whole vectors. */
  subspaceRank?: number;
  outsideSubspace?: number;
}

const SCALAR_KIND = {
  f32: usearch.ScalarKind.F32,
  f16: usearch.ScalarKind.F16,
  i8: usearch.ScalarKind.I8,
} as const satisfies Record<HnswQuantization, unknown>;

const BYTES_PER_SCALAR: Record<HnswQuantization, number> = { f32: 4, f16: 2, i8: 1 };

export class HnswIndex implements VectorIndex {
  readonly kind = 'hnsw' as const;
  readonly dims: number;
  readonly params: HnswParams;
  readonly #native: UsearchIndex;
  readonly #buildThreads: number;
  readonly #subspace: Subspace | null;
  /** Dimensions of what the native index stores: the subspace's rank, or dims. */
  readonly #storedDims: number;
  #outsideSubspace = 0;
  /** Key → id; undefined for a free key. */
  #idOfKey: (string | undefined)[] = [];
  #keyOf = new Map<string, number>();
  #freeKeys: number[] = [];

  constructor(dims: number, options: HnswIndexOptions = {}) {
    if (!Number.isInteger(dims) || dims < 1) throw new RangeError(`dims must be a positive integer, got ${dims}`);
    this.dims = dims;
    this.params = {
      quantization: options.quantization ?? DEFAULT_HNSW_PARAMS.quantization,
      connectivity: options.connectivity ?? DEFAULT_HNSW_PARAMS.connectivity,
      expansionAdd: options.expansionAdd ?? DEFAULT_HNSW_PARAMS.expansionAdd,
      expansionSearch: options.expansionSearch ?? DEFAULT_HNSW_PARAMS.expansionSearch,
    };
    // Not above the core count: usearch sizes its thread contexts at load by the hardware count.
    this.#buildThreads = Math.max(1, Math.min(options.buildThreads ?? 1, availableParallelism()));
    const subspace = options.subspace ?? null;
    if (subspace && subspace.dims !== dims) throw new DimensionMismatchError(dims, subspace.dims);
    this.#subspace = subspace;
    this.#storedDims = subspace ? subspace.rank : dims;
    this.#native = new usearch.Index({
      dimensions: this.#storedDims,
      metric: usearch.MetricKind.Cos,
      quantization: SCALAR_KIND[this.params.quantization],
      connectivity: this.params.connectivity,
      expansion_add: this.params.expansionAdd,
      expansion_search: this.params.expansionSearch,
      multi: false,
    });
  }

  get size(): number {
    return this.#keyOf.size;
  }

  /** The subspace the index stores coordinates in, and how many vectors lie outside it; null without one. */
  subspaceStatus(): { rank: number; outside: number } | null {
    return this.#subspace ? { rank: this.#subspace.rank, outside: this.#outsideSubspace } : null;
  }

  has(id: string): boolean {
    return this.#keyOf.has(id);
  }

  ids(): IterableIterator<string> {
    return this.#keyOf.keys();
  }

  add(id: string, vector: Float32Array): void {
    if (vector.length !== this.dims) throw new DimensionMismatchError(this.dims, vector.length);
    const encoded = this.#encode(vector, 1, true); // throws on a zero vector before anything changes
    this.remove(id);
    const key = this.#takeKey(id);
    try {
      // Always the same thread count: usearch sizes its per-thread contexts at its growth steps from
      // the count of the add that triggered them, and a later add with more threads would fail.
      this.#native.add(BigUint64Array.of(BigInt(key)), encoded, this.#buildThreads);
    } catch (error) {
      this.#releaseKey(id, key);
      throw error;
    }
  }

  addMany(ids: readonly string[], vectors: Float32Array): void {
    const n = ids.length;
    if (vectors.length !== n * this.dims) throw new DimensionMismatchError(this.dims, vectors.length / Math.max(1, n));
    if (n === 0) return;
    // Replaced and repeated ids go through add(), one at a time; the rest in one threaded batch.
    const seen = new Set<string>();
    const batchRows: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = ids[i]!;
      if (this.#keyOf.has(id) || seen.has(id)) continue;
      seen.add(id);
      batchRows.push(i);
    }
    const d = this.dims;
    const batch = new Float32Array(batchRows.length * d);
    batchRows.forEach((row, i) => batch.set(vectors.subarray(row * d, (row + 1) * d), i * d));
    const encoded = this.#encode(batch, batchRows.length, true);
    const keys = new BigUint64Array(batchRows.length);
    batchRows.forEach((row, i) => (keys[i] = BigInt(this.#takeKey(ids[row]!))));
    try {
      this.#native.add(keys, encoded, this.#buildThreads);
    } catch (error) {
      // usearch may have inserted part of the batch: take those out again so maps and graph agree.
      for (let i = 0; i < batchRows.length; i++) {
        const id = ids[batchRows[i]!]!;
        this.#native.remove(keys[i]!);
        this.#releaseKey(id, Number(keys[i]));
      }
      throw error;
    }
    const batchSet = new Set(batchRows);
    for (let i = 0; i < n; i++) if (!batchSet.has(i)) this.add(ids[i]!, vectors.subarray(i * d, (i + 1) * d));
  }

  remove(id: string): boolean {
    const key = this.#keyOf.get(id);
    if (key === undefined) return false;
    this.#native.remove(BigInt(key));
    this.#releaseKey(id, key);
    return true;
  }

  search(query: Float32Array, k: number): IndexMatch[] {
    if (query.length !== this.dims) throw new DimensionMismatchError(this.dims, query.length);
    const wanted = Math.min(Math.floor(k), this.size);
    if (wanted <= 0) return [];
    const result = this.#native.search(this.#encode(query, 1), wanted, 1);
    const matches: IndexMatch[] = [];
    for (let i = 0; i < result.keys.length; i++) {
      const id = this.#idOfKey[Number(result.keys[i])];
      if (id !== undefined) matches.push({ id, similarity: 1 - result.distances[i]! });
    }
    return matches;
  }

  /**
   * Estimated from usearch's layout (index.hpp / index_dense.hpp): per vector, the quantised vector,
   * the graph node (key + level + 2M level-0 neighbours + M per upper level, 1/(M−1) upper levels
   * on average) and its allocator entry; per capacity slot (a power of two ≥ size), the node and
   * vector pointers and the key→slot hash entry; plus the id maps here.
   */
  memoryBytes(): number {
    const m = this.params.connectivity;
    const size = this.#native.size();
    const capacity = this.#native.capacity();
    const vectorBytes = this.#storedDims * BYTES_PER_SCALAR[this.params.quantization];
    const nodeBytes = 10 + (4 + 8 * m) + (4 + 4 * m) / (m - 1) + 8;
    const perSlot = 8 + 8 + 24;
    const subspaceBytes = this.#subspace ? this.#subspace.basis.byteLength : 0;
    return size * (vectorBytes + nodeBytes) + capacity * perSlot + this.#idOfKey.length * 8 + this.size * JS_BYTES_PER_ID + subspaceBytes;
  }

  async save(dir: string): Promise<void> {
    const ids: string[] = [];
    const keys: number[] = [];
    for (const [id, key] of this.#keyOf) {
      ids.push(id);
      keys.push(key);
    }
    await replaceDirAtomically(dir, async (tmp) => {
      const graphPath = join(tmp, 'graph.usearch');
      this.#native.save(graphPath);
      await syncFile(graphPath);
      if (this.#subspace) {
        const basis = this.#subspace.basis;
        await writeFileSynced(join(tmp, 'subspace.f32'), new Uint8Array(basis.buffer, basis.byteOffset, basis.byteLength));
      }
      const meta: HnswMeta = {
        format: FORMAT,
        version: FORMAT_VERSION,
        dims: this.dims,
        params: this.params,
        count: ids.length,
        graphBytes: (await stat(graphPath)).size,
        ids,
        keys,
        ...(this.#subspace ? { subspaceRank: this.#subspace.rank, outsideSubspace: this.#outsideSubspace } : {}),
      };
      await writeFileSynced(join(tmp, 'meta.json'), JSON.stringify(meta));
    });
  }

  /** Reads an index that save() wrote; IndexLoadError when it is missing or does not check. */
  static async load(dir: string, options: Pick<HnswIndexOptions, 'buildThreads' | 'expansionSearch'> = {}): Promise<HnswIndex> {
    let meta: HnswMeta;
    const graphPath = join(dir, 'graph.usearch');
    let graphBytes: number;
    try {
      meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as HnswMeta;
      graphBytes = (await stat(graphPath)).size;
    } catch (error) {
      throw new IndexLoadError(`cannot read HNSW index at ${dir}: ${(error as Error).message}`);
    }
    if (meta.format !== FORMAT || !(meta.version === 1 || meta.version === FORMAT_VERSION)) throw new IndexLoadError(`${dir} is not a version-${FORMAT_VERSION} HNSW index`);
    if (graphBytes !== meta.graphBytes || meta.ids.length !== meta.count || meta.keys.length !== meta.count) {
      throw new IndexLoadError(`HNSW index at ${dir} is damaged: the graph file or the id map does not match`);
    }
    let subspace: Subspace | null = null;
    if (meta.subspaceRank !== undefined) {
      const rank = meta.subspaceRank;
      let bytes: Buffer;
      try {
        bytes = await readFile(join(dir, 'subspace.f32'));
      } catch (error) {
        throw new IndexLoadError(`cannot read the subspace of the HNSW index at ${dir}: ${(error as Error).message}`);
      }
      if (!Number.isInteger(rank) || rank < 1 || bytes.byteLength !== rank * meta.dims * 4) throw new IndexLoadError(`HNSW index at ${dir}: subspace.f32 does not hold ${rank} × ${meta.dims} values`);
      const basis = new Float32Array(rank * meta.dims);
      new Uint8Array(basis.buffer).set(bytes);
      subspace = { dims: meta.dims, rank, basis };
    }
    // The search expansion is not part of the graph: a caller may change it at load.
    const index = new HnswIndex(meta.dims, { ...meta.params, ...options, subspace });
    index.#outsideSubspace = meta.outsideSubspace ?? 0;
    try {
      index.#native.load(graphPath);
    } catch (error) {
      throw new IndexLoadError(`usearch cannot load ${graphPath}: ${(error as Error).message}`);
    }
    if (index.#native.size() !== meta.count || index.#native.dimensions() !== index.#storedDims) {
      throw new IndexLoadError(`HNSW index at ${dir} holds ${index.#native.size()} vectors, its id map ${meta.count}`);
    }
    for (let i = 0; i < meta.count; i++) {
      const id = meta.ids[i]!;
      const key = meta.keys[i]!;
      if (index.#keyOf.has(id) || index.#idOfKey[key] !== undefined) throw new IndexLoadError(`HNSW index at ${dir} repeats an id or key`);
      index.#keyOf.set(id, key);
      index.#idOfKey[key] = id;
    }
    const present = index.#native.contains(BigUint64Array.from(meta.keys, (k) => BigInt(k))) as boolean[];
    if (meta.count > 0 && present.some((p) => !p)) throw new IndexLoadError(`HNSW index at ${dir}: the id map names keys the graph lacks`);
    for (let key = 0; key < index.#idOfKey.length; key++) if (index.#idOfKey[key] === undefined) index.#freeKeys.push(key);
    return index;
  }

  #takeKey(id: string): number {
    const key = this.#freeKeys.pop() ?? this.#idOfKey.length;
    this.#idOfKey[key] = id;
    this.#keyOf.set(id, key);
    return key;
  }

  #releaseKey(id: string, key: number): void {
    this.#idOfKey[key] = undefined;
    this.#keyOf.delete(id);
    this.#freeKeys.push(key);
  }

  /**
   * Unit vectors in the form the native index stores: float32 (usearch casts to f16) or our int8,
   * of the whole vector or of its subspace coordinates. `counting` counts vectors outside the subspace (adds, not searches).
   */
  #encode(vectors: Float32Array, count: number, counting = false): Float32Array | Int8Array {
    const d = this.dims;
    const subspace = this.#subspace;
    if (!subspace && this.params.quantization !== 'i8') {
      if (count === 1) return normalized(vectors);
      const out = new Float32Array(count * d);
      for (let i = 0; i < count; i++) normalizeInto(vectors.subarray(i * d, (i + 1) * d), out, i * d);
      return out;
    }
    const stored = this.#storedDims;
    const unit = new Float32Array(d);
    const coordinates = subspace ? new Float32Array(count * stored) : null;
    const out = this.params.quantization === 'i8' ? new Int8Array(count * stored) : null;
    for (let i = 0; i < count; i++) {
      normalizeInto(vectors.subarray(i * d, (i + 1) * d), unit);
      let source = unit;
      let sourceOffset = 0;
      if (subspace) {
        const outside = projectInto(subspace, unit, coordinates!, i * stored);
        if (counting && outside > OUTSIDE_SUBSPACE ** 2) this.#outsideSubspace++;
        source = coordinates!;
        sourceOffset = i * stored;
      }
      if (out) quantizeI8Into(source, sourceOffset, stored, out, i * stored);
    }
    return out ?? coordinates!;
  }
}
