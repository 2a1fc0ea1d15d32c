import { describe, expect, it } from 'vitest';
import { bytesToEmbedding, embeddingToBytes } from './embedding-bytes.ts';

describe('embedding bytes', () => {
  it('writes Float32 little-endian without copying and reads back bit-exactly', () => {
    const v = new Float32Array([1, -0, 1e-45, -2.5, 3.4028234663852886e38, Number.NaN]);
    const bytes = embeddingToBytes(v);
    expect(bytes.buffer).toBe(v.buffer);
    expect(bytes.byteLength).toBe(24);
    expect(bytes.readFloatLE(12)).toBe(-2.5);
    const back = bytesToEmbedding(bytes);
    expect(Array.from(new Uint32Array(back.buffer))).toEqual(Array.from(new Uint32Array(v.buffer)));
    back[0] = 7;
    expect(v[0]).toBe(1);
  });

  it('reads from an unaligned slice of a larger buffer', () => {
    const v = new Float32Array([0.25, -0.5, 0.75]);
    const pool = Buffer.alloc(32);
    embeddingToBytes(v).copy(pool, 5);
    expect(Array.from(bytesToEmbedding(pool.subarray(5, 17)))).toEqual([0.25, -0.5, 0.75]);
  });

  it('rejects a byte length that is not a whole number of floats', () => {
    expect(() => bytesToEmbedding(new Uint8Array(6))).toThrow(RangeError);
  });
});
