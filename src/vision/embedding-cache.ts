import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

/**
 * A persistent cache of "largest face embedding of this image", so that re-running an evaluation
 * does not run the face engine again. One append-only JSONL file per cache key; each line carries a
 * CRC, and a line that does not parse or check (a run killed mid-write, a damaged disk block) is
 * skipped, never fatal. Vectors are stored as base64 little-endian float32.
 */

/** Default folder of the cache, relative to the working directory (gitignored). */
export const DEFAULT_EMBEDDING_CACHE_DIR = '.cache/embeddings';

/** What produced the cached results: a result is reused only under the same key. */
export interface EmbeddingCacheKey {
  /** Engine name ('onnx', 'human', …). */
  engine: string;
  /**
   * Embedding model id. Empty when not known before the engine runs: entries then record the model
   * id they were made with and the caller checks it against fresh results.
   */
  modelId: string;
  /** Version of the pre-processing and any settings that change the result (detector threshold, image limits). */
  pipelineVersion: string;
}

/** The cached analysis of one image file. */
export type CachedAnalysis = { face: false } | { face: true; modelId: string; vector: Float32Array };

interface Line {
  sha256: string;
  face: boolean;
  modelId?: string;
  vector?: string;
  crc: number;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Hex sha256 of a file's bytes: the cache identifies images by content, not by path. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function lineChecksum(sha256: string, face: boolean, modelId: string, vector: string): number {
  return crc32(`${sha256}|${face ? 1 : 0}|${modelId}|${vector}`);
}

function encodeVector(vector: Float32Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');
}

function decodeVector(base64: string): Float32Array | undefined {
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.byteLength === 0 || bytes.byteLength % 4 !== 0) return undefined;
  // Copy into an aligned buffer of its own: the decoded Buffer may sit at any offset of a shared pool.
  const vector = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(vector.buffer).set(bytes);
  for (let i = 0; i < vector.length; i++) if (!Number.isFinite(vector[i]!)) return undefined;
  return vector;
}

function parseLine(text: string, key: EmbeddingCacheKey): [string, CachedAnalysis] | undefined {
  let line: Line;
  try {
    line = JSON.parse(text) as Line;
  } catch {
    return undefined;
  }
  if (typeof line !== 'object' || line === null || typeof line.sha256 !== 'string' || !SHA256_HEX.test(line.sha256)) return undefined;
  const modelId = typeof line.modelId === 'string' ? line.modelId : '';
  const vectorText = typeof line.vector === 'string' ? line.vector : '';
  if (line.crc !== lineChecksum(line.sha256, line.face === true, modelId, vectorText)) return undefined;
  if (line.face !== true) return [line.sha256, { face: false }];
  if (!modelId || (key.modelId && modelId !== key.modelId)) return undefined;
  const vector = decodeVector(vectorText);
  return vector ? [line.sha256, { face: true, modelId, vector }] : undefined;
}

function formatLine(sha256: string, value: CachedAnalysis): string {
  const modelId = value.face ? value.modelId : '';
  const vector = value.face ? encodeVector(value.vector) : '';
  const line: Line = value.face
    ? { sha256, face: true, modelId, vector, crc: lineChecksum(sha256, true, modelId, vector) }
    : { sha256, face: false, crc: lineChecksum(sha256, false, '', '') };
  return `${JSON.stringify(line)}\n`;
}

/** The cache file's name: readable parts plus a hash of the exact key, so sanitising can never merge two keys. */
export function cacheFileName(key: EmbeddingCacheKey): string {
  const clean = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 40) || 'none';
  const digest = createHash('sha256').update(JSON.stringify([key.engine, key.modelId, key.pipelineVersion])).digest('hex').slice(0, 12);
  return `${clean(key.engine)}__${clean(key.modelId || 'any-model')}__${clean(key.pipelineVersion)}__${digest}.jsonl`;
}

export class EmbeddingCache {
  private constructor(
    readonly path: string,
    readonly key: EmbeddingCacheKey,
    private readonly entries: Map<string, CachedAnalysis>,
    /** Lines skipped on load because they were damaged or of another model. */
    readonly skippedLines: number,
  ) {}

  /**
   * Opens (creating the folder if needed) the cache for key under dir and loads it. When the file
   * holds damaged lines or superseded duplicates, it is rewritten without them (write + rename, so
   * a crash leaves either the old file or the new one).
   */
  static async open(dir: string, key: EmbeddingCacheKey): Promise<EmbeddingCache> {
    await mkdir(dir, { recursive: true });
    const path = join(dir, cacheFileName(key));
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const entries = new Map<string, CachedAnalysis>();
    let skipped = 0;
    let lines = 0;
    for (const raw of text.split('\n')) {
      if (!raw.trim()) continue;
      lines++;
      const parsed = parseLine(raw, key);
      if (parsed) entries.set(parsed[0], parsed[1]);
      else skipped++;
    }
    const cache = new EmbeddingCache(path, key, entries, skipped);
    if (lines > entries.size) await cache.compact();
    return cache;
  }

  get size(): number {
    return this.entries.size;
  }

  get(sha256: string): CachedAnalysis | undefined {
    return this.entries.get(sha256);
  }

  /**
   * Records a result: one appended line, written with a single call so concurrent appends do not
   * interleave. A later line for the same image supersedes an earlier one.
   */
  async put(sha256: string, value: CachedAnalysis): Promise<void> {
    if (!SHA256_HEX.test(sha256)) throw new RangeError(`not a sha256 hex digest: ${sha256}`);
    this.entries.set(sha256, value);
    await appendFile(this.path, formatLine(sha256, value), 'utf8');
  }

  private async compact(): Promise<void> {
    const tmp = `${this.path}.${process.pid}.${Date.now()}.tmp`;
    const text = Array.from(this.entries, ([sha, value]) => formatLine(sha, value)).join('');
    await writeFile(tmp, text, 'utf8');
    await rename(tmp, this.path);
  }
}
