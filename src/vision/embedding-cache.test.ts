import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheFileName, EmbeddingCache, sha256Hex, type EmbeddingCacheKey } from './embedding-cache.ts';

const KEY: EmbeddingCacheKey = { engine: 'onnx', modelId: 'fr_feature', pipelineVersion: 'v1' };
const SHA_A = sha256Hex(new TextEncoder().encode('image a'));
const SHA_B = sha256Hex(new TextEncoder().encode('image b'));
const SHA_C = sha256Hex(new TextEncoder().encode('image c'));

describe('EmbeddingCache', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'facegate-cache-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('hashes bytes with sha256', () => {
    expect(sha256Hex(new Uint8Array())).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('keeps vectors and no-face results across reopening, bit for bit', async () => {
    const vector = new Float32Array([0.1, -0.25, Math.PI, 1e-30]);
    const cache = await EmbeddingCache.open(dir, KEY);
    expect(cache.size).toBe(0);
    await cache.put(SHA_A, { face: true, modelId: 'fr_feature', vector });
    await cache.put(SHA_B, { face: false });
    const reopened = await EmbeddingCache.open(dir, KEY);
    expect(reopened.size).toBe(2);
    expect(reopened.skippedLines).toBe(0);
    const a = reopened.get(SHA_A);
    expect(a?.face).toBe(true);
    expect(a?.face && Array.from(a.vector)).toEqual(Array.from(vector));
    expect(reopened.get(SHA_B)).toEqual({ face: false });
    expect(reopened.get(SHA_C)).toBeUndefined();
  });

  it('keeps separate files per key', async () => {
    const cache = await EmbeddingCache.open(dir, KEY);
    await cache.put(SHA_A, { face: false });
    const other = await EmbeddingCache.open(dir, { ...KEY, pipelineVersion: 'v2' });
    expect(other.get(SHA_A)).toBeUndefined();
    await other.put(SHA_B, { face: false });
    expect((await EmbeddingCache.open(dir, KEY)).get(SHA_B)).toBeUndefined();
    expect(cacheFileName(KEY)).not.toBe(cacheFileName({ ...KEY, engine: 'human' }));
    // sanitising "a/b" and "a-b" to the same text must not merge their files
    expect(cacheFileName({ ...KEY, modelId: 'a/b' })).not.toBe(cacheFileName({ ...KEY, modelId: 'a-b' }));
    expect(await readdir(dir)).toHaveLength(2);
  });

  it('skips damaged lines instead of failing, and rewrites the file without them', async () => {
    const cache = await EmbeddingCache.open(dir, KEY);
    await cache.put(SHA_A, { face: true, modelId: 'fr_feature', vector: new Float32Array([1, 0]) });
    await cache.put(SHA_B, { face: true, modelId: 'fr_feature', vector: new Float32Array([0, 1]) });
    const text = await readFile(cache.path, 'utf8');
    const [lineA, lineB] = text.trim().split('\n') as [string, string];
    // line B with one vector character changed (the CRC catches it), a cut-off line, and rubbish
    const damagedB = lineB.replace(/"vector":"(.)/, (_, c: string) => `"vector":"${c === 'A' ? 'B' : 'A'}`);
    await writeFile(cache.path, `${lineA}\n${damagedB}\nnot json\n${lineA.slice(0, 40)}`);
    const reopened = await EmbeddingCache.open(dir, KEY);
    expect(reopened.skippedLines).toBe(3);
    expect(reopened.size).toBe(1);
    expect(reopened.get(SHA_B)).toBeUndefined();
    expect((await readFile(cache.path, 'utf8')).trim().split('\n')).toEqual([lineA]);
    expect((await EmbeddingCache.open(dir, KEY)).skippedLines).toBe(0);
  });

  it('lets a later line supersede an earlier one', async () => {
    const cache = await EmbeddingCache.open(dir, KEY);
    await cache.put(SHA_A, { face: false });
    await cache.put(SHA_A, { face: true, modelId: 'fr_feature', vector: new Float32Array([1]) });
    const reopened = await EmbeddingCache.open(dir, KEY);
    expect(reopened.get(SHA_A)?.face).toBe(true);
    expect((await readFile(cache.path, 'utf8')).trim().split('\n')).toHaveLength(1);
  });

  it('ignores vectors of another model when the key names one', async () => {
    const cache = await EmbeddingCache.open(dir, { ...KEY, modelId: '' });
    await cache.put(SHA_A, { face: true, modelId: 'm1', vector: new Float32Array([1]) });
    expect((await EmbeddingCache.open(dir, { ...KEY, modelId: '' })).get(SHA_A)).toMatchObject({ modelId: 'm1' });
    const path = cache.path;
    const keyed = await EmbeddingCache.open(dir, KEY);
    await writeFile(keyed.path, await readFile(path, 'utf8'));
    const reopened = await EmbeddingCache.open(dir, KEY);
    expect(reopened.get(SHA_A)).toBeUndefined();
    expect(reopened.skippedLines).toBe(1);
  });

  it('refuses a key that is not a sha256', async () => {
    const cache = await EmbeddingCache.open(dir, KEY);
    await expect(cache.put('abc', { face: false })).rejects.toThrow(RangeError);
  });
});
